"""The policy pack (policies/) run as the Pulumi CLI runs it, on what the real stack program declares.

The pack starts in its own virtualenv and prints its Analyzer port; the real ``__main__.py`` runs
under mocks as in ``pulumi preview`` (values computed by other resources stay unknown); every
registered resource goes to the pack over gRPC (``Analyze`` per resource, ``AnalyzeStack`` once)
with the policy config the CLI would compute from the pack's schema and a config file.
"""

from __future__ import annotations

import copy
import json
import runpy

import pytest
import yaml
from pulumi.runtime import rpc

from harness.policy_pack import PACK_DIR, PolicyConfigError, PolicyPackServer, declare_stack
from harness.provider_server import PROJECT_ROOT
from harness.pulumi_program import config_values

POLICY_NAMES = [
    "gateway-hard-stop",
    "gateway-cap-ceilings",
    "grants-to-groups",
    "grants-keep-manager",
    "serverless-cost-tags",
    "account-budget-notifies",
    "gateway-budget-tracking",
]
CEILINGS = {"gateway-cap-ceilings": {"teamCeilingUsd": 5000, "orgCeilingUsd": 20000}}

COMPLIANT = {
    "ml-budgets:teams": [
        {
            "name": "search",
            "serverless": {
                "customTags": {"cost-center": "4711"},
                "users": ["groups/search-engineers"],
                "managers": ["users/search-lead@example.com", "groups/search-leads"],
                "authoritativeGrants": True,
                "monthlyLimitUsd": 3000,
                "alertThresholds": [80],
                "notify": ["finops@example.com"],
            },
            "databricksGateway": {
                "monthlyLimitUsd": 1000,
                "alertThresholds": [50],
                "notify": ["search-lead@example.com"],
            },
            "gateway": {
                "limitUsd": 2000,
                "scope": "ENDPOINT",
                "target": "search-chat",
                "alertThresholds": [50, 80],
                "hardStop": True,
            },
        },
        {
            "name": "recsys",
            "serverless": {
                "customTags": {"cost-center": "4712"},
                "users": ["servicePrincipals/9f0c6a52-3c2e-4f5b-8a43-0a6d9e2b1c7d"],
            },
            "gateway": {
                "limitUsd": 100,
                "window": "daily",
                "scope": "USER",
                "target": "recsys-batch@example.com",
                "alertThresholds": [80],
                "hardStop": True,
            },
        },
    ],
    "ml-budgets:gatewayBudgets": [
        {
            "name": "org-wide-cap",
            "limitUsd": 15000,
            "alertThresholds": [90],
            "hardStop": True,
            "webhook": {"url": "https://hooks.slack.com/services/T0/B0/ml-budgets"},
        },
    ],
}


def run_stack_program():
    runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")


def declared(config: dict, secret_keys=None):
    return declare_stack(run_stack_program, config_values(config), secret_keys=secret_keys)


def variant(change) -> dict:
    config = copy.deepcopy(COMPLIANT)
    change(config)
    return config


def team(config: dict, name: str) -> dict:
    return next(t for t in config["ml-budgets:teams"] if t["name"] == name)


@pytest.fixture(scope="module")
def pack(policy_pack_python):
    server = PolicyPackServer(policy_pack_python)
    yield server
    server.close()


def test_the_pack_announces_its_policies_with_schemas_and_levels(pack):
    info = pack.info()
    assert info.name == "ml-budgets-guardrails"
    assert [p.name for p in info.policies] == POLICY_NAMES
    config = pack.configure()
    assert {name: level for name, (level, _) in config.items()} == dict.fromkeys(POLICY_NAMES, "mandatory")
    assert config["serverless-cost-tags"][1] == {"requiredTagKeys": ["cost-center"]}
    assert config["grants-to-groups"][1] == {"allowUserManagers": True}


def test_compliant_stack_passes_every_policy(pack):
    stack = declared(COMPLIANT)
    assert {
        "pulumi-python:dynamic/mlbudgets:GatewayBudgetPolicy",
        "pulumi-python:dynamic/mlbudgets:BudgetPolicyGrants",
        "pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy",
        "pulumi-python:dynamic/mlbudgets:AccountBudget",
        "ml-budgets:index:TeamBudget",
    } <= stack.types()
    # As in `pulumi preview`, the grants' policy_id (an output of the policy) is not known yet.
    grants = next(r for r in stack.inputs if r.type.endswith(":BudgetPolicyGrants"))
    assert grants.properties["policy_id"] == rpc.UNKNOWN
    pack.configure(CEILINGS)
    assert pack.analyze(stack) == []  # not even "can't run policy during preview"


def _no_hard_stop(config):
    team(config, "search")["gateway"]["hardStop"] = False


def _alert_above_hard_stop(config):
    # Two budgets on one endpoint: a $100 hard stop, and alerts of a $500 budget at $250.
    config["ml-budgets:gatewayBudgets"] += [
        {
            "name": "chat-cap",
            "limitUsd": 100,
            "scope": "ENDPOINT",
            "target": "chat",
            "alertThresholds": [],
            "hardStop": True,
        },
        {
            "name": "chat-alerts",
            "limitUsd": 500,
            "scope": "ENDPOINT",
            "target": "chat",
            "alertThresholds": [50],
            "hardStop": False,
        },
    ]


def _team_over_ceiling(config):
    team(config, "recsys")["gateway"]["limitUsd"] = 200  # daily: $6,000 per 30 days


def _cap_over_org_ceiling(config):
    config["ml-budgets:gatewayBudgets"][0]["limitUsd"] = 25000


def _teams_together_over_org_ceiling(config):
    team(config, "search")["gateway"]["limitUsd"] = 3900  # + the $1,000 Databricks AI Gateway cap
    config["ml-budgets:teams"] += [
        {
            "name": f"team-{i}",
            "gateway": {
                "limitUsd": 4900,
                "scope": "ENDPOINT",
                "target": f"chat-{i}",
                "alertThresholds": [],
                "hardStop": True,
            },
        }
        for i in range(3)
    ]


def _databricks_gateway_without_hard_stop(config):
    team(config, "search")["databricksGateway"]["hardStop"] = False


def _databricks_gateway_over_team_ceiling(config):
    team(config, "search")["databricksGateway"]["monthlyLimitUsd"] = 3500  # + the $2,000 MLflow cap


def _budget_that_tells_no_one(config):
    team(config, "search")["databricksGateway"].update(notify=[], alertThresholds=[])


def _user_granted_use(config):
    team(config, "recsys")["serverless"]["users"].append("users/alice@example.com")


def _authoritative_without_manager(config):
    team(config, "search")["serverless"]["managers"] = []


def _missing_cost_tag(config):
    del team(config, "recsys")["serverless"]["customTags"]


VIOLATIONS = {
    "no hard stop": (
        _no_hard_stop,
        "gateway-hard-stop",
        "ENDPOINT 'search-chat' has alert tiers ($1,000.00 per month, $1,600.00 per month) but no hard stop",
    ),
    "alert above hard stop": (
        _alert_above_hard_stop,
        "gateway-hard-stop",
        "the alert tier at $250.00 per month is above the hard stop at $100.00 per month",
    ),
    "an AI Gateway account budget without a hard stop": (
        _databricks_gateway_without_hard_stop,
        "gateway-hard-stop",
        "account budget 'search AI Gateway' has alert tiers ($500.00 per month, $1,000.00 per month) but no hard stop",
    ),
    "an AI Gateway account budget over the team ceiling": (
        _databricks_gateway_over_team_ceiling,
        "gateway-cap-ceilings",
        "team 'search' caps $5,500.00 per 30 days (search-gateway-hard-stop: $2,000.00 per month; "
        "search-databricks-gateway-budget: $3,500.00 per month), above the team ceiling of $5,000.00",
    ),
    "an account budget that tells no one": (
        _budget_that_tells_no_one,
        "account-budget-notifies",
        "account budget 'search AI Gateway' notifies no one, so usage is blocked with nobody told",
    ),
    "team over its ceiling": (
        _team_over_ceiling,
        "gateway-cap-ceilings",
        "team 'recsys' caps $6,000.00 per 30 days (recsys-gateway-hard-stop: $200.00 per day), "
        "above the team ceiling of $5,000.00",
    ),
    "cap over the org ceiling": (
        _cap_over_org_ceiling,
        "gateway-cap-ceilings",
        "GLOBAL is capped at $25,000.00 per month ($25,000.00 per 30 days), above the org-wide ceiling of $20,000.00",
    ),
    "teams together over the org ceiling": (
        _teams_together_over_org_ceiling,
        "gateway-cap-ceilings",
        "the teams' caps add up to $22,600.00 per 30 days",
    ),
    "a user granted use": (
        _user_granted_use,
        "grants-to-groups",
        "recsys-serverless-grants grants User to users/alice@example.com: grant it to a group",
    ),
    "authoritative grants without a manager": (
        _authoritative_without_manager,
        "grants-keep-manager",
        "search-serverless-grants is authoritative and names no Manager",
    ),
    "a policy without the cost tag": (
        _missing_cost_tag,
        "serverless-cost-tags",
        "serverless budget policy 'recsys' lacks the cost-attribution tag(s) cost-center",
    ),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_each_violating_stack_gets_exactly_its_violation_at_the_configured_level(pack, case):
    change, policy, message = VIOLATIONS[case]
    pack.configure(CEILINGS)
    violations = pack.analyze(declared(variant(change)))
    assert [(v.policy, v.level) for v in violations] == [(policy, "mandatory")], violations
    assert message in violations[0].message
    assert violations[0].message.startswith(pack_description(pack, policy))


def pack_description(pack, policy: str) -> str:
    return next(p.description for p in pack.info().policies if p.name == policy)


def test_violations_name_the_resource_they_are_about(pack):
    pack.configure(CEILINGS)
    (violation,) = pack.analyze(declared(variant(_no_hard_stop)))
    assert violation.urn.endswith("::search-gateway-alert-50pct")
    (violation,) = pack.analyze(declared(variant(_team_over_ceiling)))
    assert violation.urn.endswith("ml-budgets:index:TeamBudget::recsys")


def test_a_configured_level_changes_how_a_violation_is_reported(pack):
    stack = declared(variant(_user_granted_use))
    pack.configure({**CEILINGS, "grants-to-groups": "advisory"})
    assert [(v.policy, v.level) for v in pack.analyze(stack)] == [("grants-to-groups", "advisory")]
    pack.configure({**CEILINGS, "grants-to-groups": {"enforcementLevel": "disabled"}})
    assert pack.analyze(stack) == []
    pack.configure({**CEILINGS, "all": "advisory"})
    assert [(v.policy, v.level) for v in pack.analyze(stack)] == [("grants-to-groups", "advisory")]


def test_parameters_change_what_a_policy_requires(pack):
    stack = declared(COMPLIANT)
    pack.configure({**CEILINGS, "grants-to-groups": {"allowUserManagers": False}})
    assert [(v.policy, v.message.splitlines()[-1]) for v in pack.analyze(stack)] == [
        (
            "grants-to-groups",
            "search-serverless-grants grants Manager to users/search-lead@example.com: grant it to a "
            "group (groups/<name>) or a service principal (servicePrincipals/<application id>), so "
            "access follows team membership.",
        )
    ]
    pack.configure({**CEILINGS, "serverless-cost-tags": {"requiredTagKeys": ["cost-center", "business-unit"]}})
    assert sorted(v.message.splitlines()[-1] for v in pack.analyze(stack)) == [
        f"serverless budget policy {name!r} lacks the cost-attribution tag(s) business-unit: add them under "
        "customTags, so its spend is attributed in system.billing.usage."
        for name in ("recsys", "search")
    ]
    pack.configure({**CEILINGS, "gateway-hard-stop": {"scopes": ["ENDPOINT", "GLOBAL"]}})
    stack = declared(variant(lambda c: c["ml-budgets:gatewayBudgets"][0].update(hardStop=False)))
    assert [v.policy for v in pack.analyze(stack)] == ["gateway-hard-stop"]


def test_an_endpoint_reviewed_as_alert_only_is_exempt(pack):
    stack = declared(variant(_no_hard_stop))
    pack.configure({**CEILINGS, "gateway-hard-stop": {"alertOnlyTargets": ["search-chat"]}})
    assert pack.analyze(stack) == []


def test_caps_without_any_configured_ceiling_are_reported_not_silently_passed(pack):
    pack.configure({})
    violations = pack.analyze(declared(COMPLIANT))
    assert [(v.policy, v.level) for v in violations] == [("gateway-cap-ceilings", "mandatory")]
    assert "no ceiling is configured, so no cap is checked" in violations[0].message


def test_policy_config_that_does_not_fit_the_schema_is_refused(pack):
    with pytest.raises(PolicyConfigError, match="gateway-cap-ceilings: 'lots' is not of type 'number'"):
        pack.configure({"gateway-cap-ceilings": {"teamCeilingUsd": "lots"}})
    with pytest.raises(PolicyConfigError, match="'loud' is not a valid enforcement level"):
        pack.configure({"grants-to-groups": "loud"})


def test_the_prod_example_passes_with_its_policy_config_and_fails_without(pack):
    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    # Set in the real stack with `pulumi config set --secret --path`, as the stack file says.
    for i, team in enumerate(config["ml-budgets:teams"]):
        team["gateway"]["webhook"]["secret"] = f"whsec-{i}"
    config["ml-budgets:gatewayBudgets"][0]["webhook"]["secret"] = "whsec-platform"
    stack = declared(config, secret_keys=["ml-budgets:teams", "ml-budgets:gatewayBudgets"])
    pack.configure(json.loads((PACK_DIR / "config.prod.json").read_text()))
    assert pack.analyze(stack) == []
    pack.configure({})
    assert sorted(v.policy for v in pack.analyze(stack)) == ["gateway-cap-ceilings", "gateway-hard-stop"]


def test_the_local_example_passes_its_own_guardrails(pack):
    # The stack the quickstart deploys must not teach a contradiction the pack forbids, such as an
    # alert tier above a hard stop in the same window and scope (an alert that can never fire).
    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.local.yaml").read_text())["config"]
    stack = declared(config, secret_keys=["ml-budgets:teams", "ml-budgets:gatewayBudgets"])
    for policy_config in ("config.local.json", "config.prod.json"):
        pack.configure(json.loads((PACK_DIR / policy_config).read_text()))
        assert pack.analyze(stack) == [], policy_config


def test_every_stack_the_workflows_preview_has_a_policy_config_that_fits_the_schema(pack):
    for workflow in ("preview.yml", "up.yml"):
        jobs = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / workflow).read_text())["jobs"]
        for job in jobs.values():
            steps = [s for s in job["steps"] if "pulumi/actions" in s.get("uses", "")]
            for stack in job.get("strategy", {}).get("matrix", {}).get("stack", []) if steps else []:
                assert steps[0]["with"]["policyPacks"] == "policies"
                pack.configure(json.loads((PACK_DIR / f"config.{stack}.json").read_text()))


# ---- gateway-budget-tracking: how the MLflow server counts spend (ml-budgets:mlflowServer) ----

HARD_STOPS = ["org-wide-cap-hard-stop", "recsys-gateway-hard-stop", "search-gateway-hard-stop"]


def with_server(**server) -> dict:
    return variant(lambda config: config.update({"ml-budgets:mlflowServer": server}))


def tracking_violations(pack, stack, settings=None) -> list:
    pack.configure({**CEILINGS, **({"gateway-budget-tracking": settings} if settings else {})})
    return [v for v in pack.analyze(stack) if v.policy == "gateway-budget-tracking"]


def test_hard_stops_on_a_server_that_counts_spend_per_worker_fail_the_mandatory_check(pack):
    violations = tracking_violations(pack, declared(with_server(workers=4, budgetTracker="in-memory")))
    named = sorted(name for v in violations for name in HARD_STOPS if f"the hard stop {name} " in v.message)
    assert named == HARD_STOPS and len(violations) == len(HARD_STOPS)  # one per cap; alerts are not caps
    assert {v.level for v in violations} == {"mandatory"}
    assert "lets through up to 4x its amount" in violations[0].message
    assert "MLFLOW_GATEWAY_BUDGET_REDIS_URL" in violations[0].message


@pytest.mark.parametrize(
    "server", [{"workers": 4, "budgetTracker": "redis"}, {"workers": 1, "budgetTracker": "in-memory"}, None]
)
def test_servers_that_share_spend_or_are_undeclared_pass_by_default(pack, server):
    config = with_server(**server) if server else COMPLIANT
    assert tracking_violations(pack, declared(config)) == []


def test_the_pack_can_require_a_declared_server_and_a_short_refresh_interval(pack):
    settings = {"requireDeclaredServer": True, "maxRefreshIntervalSeconds": 60}
    undeclared = tracking_violations(pack, declared(COMPLIANT), settings)
    messages = sorted(v.message for v in undeclared)
    assert len(messages) == 2 * len(HARD_STOPS)
    assert sum("does not say how its MLflow server tracks budgets" in m for m in messages) == len(HARD_STOPS)
    assert sum("600 s (MLflow's default: none declared), longer than the 60 s allowed" in m for m in messages) == 3
    declared_server = with_server(workers=4, budgetTracker="redis", budgetRefreshIntervalSeconds=30)
    assert tracking_violations(pack, declared(declared_server), settings) == []
    # One worker holds every counter itself: which tracker it uses does not matter, so saying so is enough.
    one_worker = with_server(workers=1, budgetRefreshIntervalSeconds=30)
    assert tracking_violations(pack, declared(one_worker), settings) == []
    four_workers = with_server(workers=4, budgetRefreshIntervalSeconds=30)
    assert len(tracking_violations(pack, declared(four_workers), settings)) == len(HARD_STOPS)
