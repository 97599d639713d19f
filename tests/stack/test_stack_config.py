"""Stack config: parsing, errors naming the config path, and what the program declares from it."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import textwrap

import pytest
import yaml
from pulumi.runtime import rpc

from contracts import COST_PER_1K_TOKENS_TAG, ON_EXCEED_TAG, TOKEN_BUDGET_TAG
from harness.provider_server import PROJECT_ROOT
from harness.pulumi_program import RecordingMocks, config_values, run_program
from stack_config import StackConfigError, parse_stack_config


def stack_file(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / f"Pulumi.{name}.yaml").read_text())["config"]


def parse(teams=None, gateway_budgets=None):
    return parse_stack_config(teams, gateway_budgets)


def problems_of(teams=None, gateway_budgets=None) -> str:
    with pytest.raises(StackConfigError) as error:
        parse(teams, gateway_budgets)
    return str(error.value)


def test_local_stack_parses():
    config = stack_file("local")
    parsed = parse_stack_config(
        config["ml-budgets:teams"], config["ml-budgets:gatewayBudgets"], config["ml-budgets:alertRelay"]
    )
    search = parsed.teams[0]
    assert search.name == "search"
    assert search.serverless.custom_tags == {"cost-center": "4711", "team": "search"}
    assert search.serverless.policy_name == "search"
    assert search.gateway.window == {"unit": "MONTHS", "value": 1}
    assert search.gateway.alert_thresholds == [50.0, 80.0]
    assert list(parsed.gateway_budgets) == ["global-cap"]
    assert (
        search.gateway.webhook.relay.url == "http://127.0.0.1:8486" and search.gateway.webhook.relay.route == "search"
    )


def test_prod_example_parses_once_its_webhook_secrets_are_set():
    config = stack_file("prod")
    teams, budgets, relay = (
        config["ml-budgets:teams"],
        config["ml-budgets:gatewayBudgets"],
        config["ml-budgets:alertRelay"],
    )
    # The signing secrets are set with `pulumi config set --secret --path`, as the file says.
    problems = problems_of_config(teams, budgets, relay)
    for path in ("teams[0].gateway", "teams[1].gateway", "teams[2].gateway", "gatewayBudgets[0]"):
        assert f"ml-budgets:{path}.webhook.secret: is required with `route`" in problems
    for i, team in enumerate(teams):
        team["gateway"]["webhook"]["secret"] = f"whsec-{i}"
    budgets[0]["webhook"]["secret"] = "whsec-platform"
    parsed = parse_stack_config(teams, budgets, relay)
    assert [t.name for t in parsed.teams] == ["search", "recsys", "support-bot"]
    assert parsed.teams[2].gateway.window == {"unit": "DAYS", "value": 7}
    routes = [t.gateway.webhook.relay for t in parsed.teams] + [parsed.gateway_budgets["org-wide-cap"].webhook.relay]
    assert [(r.url, r.route) for r in routes] == [
        ("https://alert-relay.internal.example.com", name) for name in ("search", "recsys", "support-bot", "platform")
    ]
    assert not any(t.gateway.webhook.url for t in parsed.teams), "prod must not point MLflow at Slack or PagerDuty"


def problems_of_config(teams, budgets, relay) -> str:
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(teams, budgets, relay)
    return str(error.value)


@pytest.mark.parametrize(
    "teams, expected",
    [
        (
            [{"name": "Search Team", "gateway": {"limitUsd": 5, "hardStop": True, "alertThresholds": []}}],
            "ml-budgets:teams[0].name: must be 1-40 lowercase",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 0, "alertThresholds": []}}],
            "ml-budgets:teams[0].gateway.limitUsd: must be between 0.01 and 1e+09",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 1e308, "alertThresholds": []}}],
            "ml-budgets:teams[0].gateway.limitUsd: must be between 0.01 and 1e+09",
        ),
        (
            [
                {
                    "name": "a",
                    "gateway": {"limitUsd": 5, "window": {"unit": "DAYS", "value": 1e18}, "alertThresholds": []},
                }
            ],
            "ml-budgets:teams[0].gateway.window: at most one year: DAYS value must be <= 366",
        ),
        (
            [
                {
                    "name": "a",
                    "gateway": {
                        "limitUsd": 0.015,
                        "alertThresholds": [50],
                        "webhook": {"url": "https://x.example.com"},
                    },
                }
            ],
            "ml-budgets:teams[0].gateway.alertThresholds[0]: 50% of limitUsd must be between 0.01 and 1e+09",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 5, "alertThresholds": [], "allowUntracked": "yes"}}],
            "ml-budgets:teams[0].gateway.allowUntracked: must be true or false",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": "ten", "alertThresholds": []}}],
            "ml-budgets:teams[0].gateway.limitUsd: must be the cap in US dollars",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 5, "window": "fortnightly", "alertThresholds": []}}],
            "ml-budgets:teams[0].gateway.window: unknown window 'fortnightly'",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 5, "scope": "ENDPOINT", "alertThresholds": []}}],
            "ml-budgets:teams[0].gateway.target: scope ENDPOINT needs target",
        ),
        (
            [
                {
                    "name": "a",
                    "gateway": {
                        "limitUsd": 5,
                        "alertThresholds": [50, 150],
                        "webhook": {"url": "https://x.example.com"},
                    },
                }
            ],
            "ml-budgets:teams[0].gateway.alertThresholds[1]: must be a percentage in (0, 100]",
        ),
        (
            [{"name": "a", "gateway": {"limitUsd": 5, "alertThresholds": [50]}}],
            "ml-budgets:teams[0].gateway.webhook: is required: alertThresholds fire",
        ),
        (
            [{"name": "a", "serverless": {"users": ["alice@example.com"]}}],
            "ml-budgets:teams[0].serverless.users: 'alice@example.com' is not a principal",
        ),
        (
            [{"name": "a", "serverless": {"customTags": {"budget-policy-id": "x"}}}],
            "ml-budgets:teams[0].serverless.customTags: tag key 'budget-policy-id' is reserved",
        ),
        (
            [{"name": "a", "serverless": {"workspaceIds": ["prod"]}}],
            "ml-budgets:teams[0].serverless.workspaceIds: 'prod' is not a workspace id",
        ),
        (
            [{"name": "a", "serverless": {"evalTokenBudget": -1, "experiments": ["1"]}}],
            "ml-budgets:teams[0].serverless.evalTokenBudget: must be a whole number of tokens > 0",
        ),
        (
            [{"name": "a", "evaluation": {"maxTokens": 0, "experiments": ["1"]}}],
            "ml-budgets:teams[0].evaluation.maxTokens: must be a whole number of tokens > 0",
        ),
        (
            [{"name": "a", "evaluation": {"experiments": ["1"]}}],
            "ml-budgets:teams[0].evaluation.maxTokens: is required",
        ),
        ([{"name": "a", "evaluation": {"maxTokens": 5}}], "ml-budgets:teams[0].evaluation.experiments: is required"),
        (
            [{"name": "a", "evaluation": {"maxTokens": 5, "experiments": ["1"], "onExceed": "explode"}}],
            "ml-budgets:teams[0].evaluation.onExceed: must be 'raise' or 'warn'",
        ),
        (
            [{"name": "a", "evaluation": {"maxTokens": 5, "experiments": ["1"], "pricePer1kTokens": -1}}],
            "ml-budgets:teams[0].evaluation.pricePer1kTokens: must be US dollars per 1,000 tokens, zero or more",
        ),
        (
            [{"name": "a", "serverless": {"evalTokenBudget": 5, "experiments": ["1"]}, "evaluation": {"maxTokens": 5}}],
            "ml-budgets:teams[0].serverless.evalTokenBudget: is replaced by ml-budgets:teams[0].evaluation.maxTokens",
        ),
        (
            [
                {"name": "a", "evaluation": {"maxTokens": 5, "experiments": ["1"]}},
                {"name": "b", "evaluation": {"maxTokens": 9, "experiments": ["1"]}},
            ],
            "ml-budgets:teams[1].evaluation.experiments[0]: '1' already has a token budget from teams[0]",
        ),
        (
            [{"name": "a", "serverless": {"policyname": "x"}}],
            "ml-budgets:teams[0].serverless.policyname: unknown field; valid fields: policyName",
        ),
        ([{"name": "a"}, {"name": "a", "serverless": {}}], "ml-budgets:teams[1].name: 'a' is already taken"),
        (
            [{"name": "a"}],
            "ml-budgets:teams[0]: declares none of `serverless`, `gateway`, `databricksGateway`, `evaluation`",
        ),
        ("search", "ml-budgets:teams: must be a list of teams"),
        (
            [{"name": "a", "gateway": {"limitUsd": 5, "webhook": {"url": "ftp://hooks.example.com/x"}}}],
            "ml-budgets:teams[0].gateway.webhook.url:",
        ),
        (
            [
                {
                    "name": "a",
                    "gateway": {
                        "limitUsd": 5,
                        "webhook": {"url": "https://h.example.com/x", "events": ["budget.spent"]},
                    },
                }
            ],
            "ml-budgets:teams[0].gateway.webhook.events:",
        ),
        (
            [
                {"name": "a", "serverless": {"policyName": "shared"}},
                {"name": "b", "serverless": {"policyName": "shared"}},
            ],
            "ml-budgets:teams[1].serverless.policyName: 'shared' is also the policy of teams[0]",
        ),
        (
            [{"name": "a", "serverless": {"experiments": ["7", "7"]}}],
            "ml-budgets:teams[0].serverless.experiments[1]: '7' is already listed by this team",
        ),
        (
            [{"name": "a", "serverless": {"experiments": ["7"]}}, {"name": "b", "serverless": {"experiments": ["7"]}}],
            "ml-budgets:teams[1].serverless.experiments[0]: '7' is already listed by teams[0]",
        ),
        (
            [{"name": "a", "serverless": {"notify": ["a@example.com"]}}],
            "ml-budgets:teams[0].serverless.notify: needs `monthlyLimitUsd`",
        ),
        (
            [{"name": "a", "serverless": {"monthlyLimitUsd": 0, "notify": ["a@example.com"]}}],
            "ml-budgets:teams[0].serverless.monthlyLimitUsd: must be monthly list-price US dollars, a number > 0",
        ),
        (
            [{"name": "a", "serverless": {"monthlyLimitUsd": 100}}],
            "ml-budgets:teams[0].serverless.notify: is empty and block_usage is false",
        ),
        (
            [{"name": "a", "serverless": {"monthlyLimitUsd": 100, "notify": ["ops"]}}],
            "ml-budgets:teams[0].serverless.notify: 'ops' is not an email address",
        ),
        (
            [
                {
                    "name": "a",
                    "serverless": {
                        "monthlyLimitUsd": 100,
                        "notify": ["o@example.com"],
                        "alertThresholds": [10, 20, 30, 40, 50],
                    },
                }
            ],
            "ml-budgets:teams[0].serverless.alertThresholds: has 5 alerts; Databricks allows at most 4",
        ),
        (
            [{"name": "a", "databricksGateway": {"notify": ["o@example.com"]}}],
            "ml-budgets:teams[0].databricksGateway.monthlyLimitUsd: is required",
        ),
        (
            [
                {
                    "name": "a",
                    "databricksGateway": {"monthlyLimitUsd": 9, "notify": ["o@example.com"], "alertThresholds": [0]},
                }
            ],
            "ml-budgets:teams[0].databricksGateway.alertThresholds[0]: must be a percentage in (0, 100]",
        ),
        (
            [
                {
                    "name": "a",
                    "databricksGateway": {
                        "monthlyLimitUsd": 9,
                        "notify": ["o@example.com"],
                        "perUserLimitUsd": 1,
                        "overrides": {"ml-eng": 5},
                    },
                }
            ],
            "ml-budgets:teams[0].databricksGateway.overrides: 'ml-eng' is not an account principal id",
        ),
        (
            [
                {
                    "name": "a",
                    "databricksGateway": {"monthlyLimitUsd": 9, "notify": ["o@example.com"], "overrides": {"12": 5}},
                }
            ],
            "ml-budgets:teams[0].databricksGateway.overrides: needs `perUserLimitUsd`",
        ),
        (
            [{"name": "a", "databricksGateway": {"monthlyLimitUsd": 9, "hardStop": False}}],
            "ml-budgets:teams[0].databricksGateway.notify: is empty and block_usage is false",
        ),
        (
            [
                {
                    "name": "a",
                    "databricksGateway": {"monthlyLimitUsd": 9, "notify": ["o@example.com"], "tags": {"env": "prod"}},
                }
            ],
            "ml-budgets:teams[0].databricksGateway.tags: tag 'env': values must be a non-empty list of strings",
        ),
    ],
)
def test_bad_config_names_the_field_and_what_is_valid(teams, expected):
    assert expected in problems_of(teams)


def test_a_standalone_gateway_budget_cannot_take_a_teams_component_name():
    teams = [
        {
            "name": "search",
            "gateway": {"limitUsd": 5, "alertThresholds": [50], "webhook": {"url": "https://x.example.com/h"}},
        }
    ]
    message = problems_of(teams, [{"name": "search-gateway", "limitUsd": 9, "alertThresholds": []}])
    assert "ml-budgets:gatewayBudgets[0].name: 'search-gateway' is already taken" in message
    assert (
        parse(teams, [{"name": "search", "limitUsd": 9, "alertThresholds": []}]).gateway_budgets["search"].limit_usd
        == 9
    )


def test_one_webhook_in_the_stack_serves_every_alert():
    teams = [{"name": "a", "gateway": {"limitUsd": 5, "alertThresholds": [50]}}]
    shared = [
        {"name": "shared", "limitUsd": 100, "alertThresholds": [90], "webhook": {"url": "https://x.example.com/h"}}
    ]
    parsed = parse(teams, shared)
    assert parsed.teams[0].gateway.webhook is None and parsed.gateway_budgets["shared"].webhook is not None


def test_every_problem_is_reported_at_once():
    message = problems_of(
        [
            {"name": "a", "gateway": {"limitUsd": -1, "scope": "PLANET", "alertThresholds": []}},
            {"name": "b", "serverless": {"managers": ["bob"]}},
        ]
    )
    for path in ("teams[0].gateway.limitUsd", "teams[0].gateway.scope", "teams[1].serverless.managers"):
        assert f"ml-budgets:{path}" in message


def test_bad_config_declares_nothing():
    mocks = RecordingMocks()
    config = config_values(
        {"ml-budgets:teams": [{"name": "ok", "serverless": {}}, {"name": "bad", "gateway": {"limitUsd": 0}}]}
    )
    with pytest.raises(StackConfigError):
        run_program(
            lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__"), mocks, config=config
        )
    assert mocks.registrations == []


def test_program_declares_components_with_children_named_after_them():
    config = config_values(stack_file("local"))
    mocks = run_program(lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__"), config=config)
    names = {(r.type.rsplit(":", 1)[-1], r.name) for r in mocks.registrations}
    assert {
        ("TeamBudget", "search"),
        ("ServerlessBudget", "search-serverless"),
        ("GatewayBudget", "search-gateway"),
        ("ServerlessBudgetPolicy", "search-serverless-policy"),
        ("BudgetPolicyGrants", "search-serverless-grants"),
        ("ExperimentPolicyTag", "search-serverless-experiment-0"),
        ("EvaluationBudget", "search-evaluation"),
        ("ExperimentTag", "search-evaluation-max-tokens-0"),
        ("ExperimentTag", "search-evaluation-on-exceed-0"),
        ("ExperimentTag", "search-evaluation-cost-per-1k-tokens-0"),
        ("GatewayBudgetPolicy", "search-gateway-alert-50pct"),
        ("GatewayBudgetPolicy", "search-gateway-alert-80pct"),
        ("GatewayBudgetPolicy", "search-gateway-hard-stop"),
        ("GatewayBudgetPolicy", "search-gateway-hard-stop-alert"),
        ("BudgetAlertWebhook", "search-gateway-webhook"),
        ("BudgetAlertWebhook", "global-cap-webhook"),
        ("ServerlessBudgetPolicy", "recsys-serverless-policy"),
        ("GatewayBudget", "global-cap"),
        ("GatewayBudgetPolicy", "global-cap-alert-90pct"),
    } <= names
    assert ("GatewayBudgetPolicy", "global-cap-hard-stop") not in names
    alert_50 = next(r for r in mocks.registrations if r.name == "search-gateway-alert-50pct")
    assert alert_50.inputs["amount_usd"] == 250 and alert_50.inputs["action"] == "ALERT"
    written = {
        r.inputs["key"]: r.inputs["value"] for r in mocks.registrations if r.name.startswith("search-evaluation-")
    }
    assert written == {TOKEN_BUDGET_TAG: "2000000", ON_EXCEED_TAG: "warn", COST_PER_1K_TOKENS_TAG: "0.6"}
    webhook = next(r for r in mocks.registrations if r.name == "global-cap-webhook")
    assert rpc.is_rpc_secret(webhook.inputs["url"]), "webhook URLs carry tokens: always secret"
    stop_alert = next(r for r in mocks.registrations if r.name == "search-gateway-hard-stop-alert")
    assert stop_alert.inputs["amount_usd"] == 500 and stop_alert.inputs["action"] == "ALERT"


def test_local_stack_declares_dollar_budgets_on_the_teams_policy_tags():
    config = config_values(stack_file("local"))
    mocks = run_program(lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__"), config=config)
    budgets = {r.name: r.inputs for r in mocks.registrations if r.type.endswith(":AccountBudget")}
    assert set(budgets) == {"search-serverless-budget", "search-databricks-gateway-budget"}
    serverless = budgets["search-serverless-budget"]
    assert serverless["tags"] == {"team": ["search"], "cost-center": ["4711"]}
    assert [(a["threshold_usd"], a["notify"]) for a in serverless["alerts"]] == [
        (750, ["search-lead@example.com"]),
        (1200, ["search-lead@example.com"]),
        (1500, ["search-lead@example.com"]),
    ]
    gateway = budgets["search-databricks-gateway-budget"]
    assert gateway["resource_type"] == "AI_GATEWAY" and gateway["tags"] == {"team": ["search"]}
    assert [(a["threshold_usd"], a["block_usage"]) for a in gateway["alerts"]] == [(600, False), (800, True)]
    assert gateway["per_user_alert"]["overrides"] == {"1234567890123": 150}


def test_the_old_eval_token_budget_key_still_works_with_a_deprecation_warning(monkeypatch):
    warnings = []
    monkeypatch.setattr("pulumi.log.warn", lambda message, *args, **kwargs: warnings.append(message))
    team = parse([{"name": "a", "serverless": {"experiments": ["7"], "evalTokenBudget": 1200}}]).teams[0]
    assert (team.evaluation.experiments, team.evaluation.max_tokens, team.evaluation.on_exceed) == (
        ["7"],
        1200,
        "raise",
    )
    assert warnings == [
        "ml-budgets:teams[0].serverless.evalTokenBudget is deprecated and will be removed: "
        "set ml-budgets:teams[0].evaluation.maxTokens instead (same value)"
    ]


def test_an_evaluation_block_defaults_to_the_serverless_experiments_and_may_stand_alone():
    team = parse([{"name": "a", "serverless": {"experiments": ["7", "8"]}, "evaluation": {"maxTokens": 10}}]).teams[0]
    assert team.evaluation.experiments == ["7", "8"] and team.evaluation.price_per_1k_tokens is None
    alone = parse([{"name": "b", "evaluation": {"maxTokens": 10, "experiments": ["9"], "pricePer1kTokens": 2}}]).teams[
        0
    ]
    assert alone.serverless is None and alone.evaluation.price_per_1k_tokens == 2.0


def test_token_ceilings_set_by_the_old_key_keep_their_tags_through_an_alias(monkeypatch):
    # Deployed before EvaluationBudget, the ceiling was an ExperimentPolicyTag of the serverless
    # budget.  Without an alias, `pulumi up` would set the new tag and then delete the old one:
    # the same experiment tag, so the ceiling would vanish.
    from pulumi.runtime.mocks import MockMonitor

    aliases = {}
    register = MockMonitor.RegisterResource

    def recording(self, request):
        aliases[request.name] = list(request.aliases)
        return register(self, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
    monkeypatch.setattr("pulumi.log.warn", lambda *args, **kwargs: None)
    teams = [{"name": "search", "serverless": {"experiments": ["0"], "evalTokenBudget": 100}}]
    mocks = run_program(
        lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__"),
        config=config_values({"ml-budgets:teams": teams}),
    )
    assert {r.name for r in mocks.registrations} >= {"search-evaluation-max-tokens-0", "search-evaluation-on-exceed-0"}
    [alias] = aliases["search-evaluation-max-tokens-0"]
    assert alias.spec.name == "search-serverless-token-budget-0"
    assert alias.spec.type == "pulumi-python:dynamic/mlbudgets:ExperimentPolicyTag"
    assert alias.spec.parentUrn.endswith(
        "ml-budgets:index:TeamBudget$ml-budgets:index:ServerlessBudget::search-serverless"
    )
    assert aliases["search-evaluation-on-exceed-0"] == []


def test_token_budget_tag_matches_the_evaluator():
    from evaluation import TOKEN_BUDGET_TAG as evaluator_tag

    assert evaluator_tag == TOKEN_BUDGET_TAG


def test_program_process_imports_neither_mlflow_nor_databricks_sdk():
    script = textwrap.dedent(
        """
        import json, runpy, sys
        from harness.pulumi_program import config_values, run_program
        import yaml
        config = config_values(yaml.safe_load(open("Pulumi.local.yaml"))["config"])
        run_program(lambda: runpy.run_path("__main__.py", run_name="__main__"), config=config)
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "databricks"))))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_project_copy_the_cli_tests_run_holds_everything_the_program_imports(tmp_path):
    # The CLI tests (skipped where there is no pulumi CLI) run a copy of the project: a module the
    # program imports but the copy lacks would fail only there.  Run that copy here, alone on sys.path.
    from harness.project_copy import copy_project

    work_dir = copy_project(tmp_path / "project", extra_files=("Pulumi.local.yaml",))
    script = textwrap.dedent(
        f"""
        import importlib.util, runpy, sys
        sys.path[:] = [p for p in sys.path if p not in ("", {str(PROJECT_ROOT)!r})]
        sys.path.insert(0, ".")
        spec = importlib.util.spec_from_file_location(
            "pulumi_program", {str(PROJECT_ROOT / "harness" / "pulumi_program.py")!r}
        )
        program = sys.modules["pulumi_program"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(program)
        import yaml
        config = program.config_values(yaml.safe_load(open("Pulumi.local.yaml"))["config"])
        mocks = program.run_program(lambda: runpy.run_path("__main__.py", run_name="__main__"), config=config)
        print(len(mocks.registrations))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work_dir,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 10


# --- how the MLflow server tracks gateway budgets (ml-budgets:mlflowServer) --------------------

A_HARD_STOP = [
    {"name": "cap", "limitUsd": 10, "alertThresholds": [], "webhook": {"url": "https://hooks.example.com/x"}}
]


def logged(monkeypatch) -> dict[str, list[str]]:
    messages: dict[str, list[str]] = {"warn": [], "info": []}
    for level in messages:
        monkeypatch.setattr(
            f"pulumi.log.{level}", lambda message, *a, _level=level, **k: messages[_level].append(message)
        )
    return messages


def test_a_multi_worker_server_without_redis_is_a_warning_at_preview(monkeypatch):
    messages = logged(monkeypatch)
    parse_stack_config(None, A_HARD_STOP, None, {"workers": 4, "budgetTracker": "in-memory"})
    [warning] = messages["warn"]
    assert warning.startswith("ml-budgets:mlflowServer: the MLflow server runs 4 workers with the in-memory")
    assert "MLFLOW_GATEWAY_BUDGET_REDIS_URL" in warning and "--workers 1" in warning
    [info] = messages["info"]
    assert "within 600 s" in info and "MLflow's default" in info


@pytest.mark.parametrize(
    "server", [{"workers": 4, "budgetTracker": "redis", "budgetRefreshIntervalSeconds": 30}, {"workers": 1}, None]
)
def test_servers_that_share_spend_or_are_not_declared_are_not_warned_about(monkeypatch, server):
    messages = logged(monkeypatch)
    parse_stack_config(None, A_HARD_STOP, None, server)
    assert messages["warn"] == []
    delay = {None: "within 600 s", 1: None}.get((server or {}).get("workers"), "within 30 s")
    assert (delay in messages["info"][0]) if delay else messages["info"] == []


@pytest.mark.parametrize(
    "server, message",
    [
        ({"workers": 0}, "ml-budgets:mlflowServer.workers: must be a whole number of worker processes from 1"),
        ({"budgetTracker": "memcached"}, "ml-budgets:mlflowServer.budgetTracker: must be one of in-memory, redis"),
        ({"budgetRefreshIntervalSeconds": -1}, "ml-budgets:mlflowServer.budgetRefreshIntervalSeconds: must be a whole"),
        ({"redisUrl": "redis://x"}, "ml-budgets:mlflowServer.redisUrl: unknown field"),
    ],
)
def test_a_bad_server_declaration_names_its_config_path(server, message):
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(None, A_HARD_STOP, None, server)
    assert message in str(error.value)


def test_the_server_declaration_reaches_every_gateway_policy(monkeypatch):
    logged(monkeypatch)
    server = {"workers": 2, "budgetTracker": "redis", "budgetRefreshIntervalSeconds": 45}
    config = config_values({"ml-budgets:gatewayBudgets": A_HARD_STOP, "ml-budgets:mlflowServer": server})
    mocks = run_program(lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__"), config=config)
    policies = [r for r in mocks.registrations if r.type.endswith(":GatewayBudgetPolicy")]
    assert policies
    for policy in policies:
        assert (
            policy.inputs["gateway_workers"],
            policy.inputs["budget_tracker"],
            policy.inputs["refresh_interval_seconds"],
        ) == (2, "redis", 45)


def test_alert_tiers_follow_one_rule_in_every_budget():
    """Percentages in (0, 100], each once, dollars to the cent; a 100 % tier of a budget that
    alerts at its cap anyway (Databricks AI Gateway) is that alert, not a second one."""
    from components.alert_tiers import tier_usd
    from components.databricks_gateway_budget import gateway_budget_props

    config = parse_stack_config(
        [
            {
                "name": "a",
                "databricksGateway": {
                    "monthlyLimitUsd": 333.34,
                    "notify": ["o@example.com"],
                    "alertThresholds": [50, 100],
                },
                "serverless": {"monthlyLimitUsd": 333.34, "notify": ["o@example.com"], "alertThresholds": [50, 100]},
            }
        ],
        [],
    )
    team = config.teams[0]
    assert team.databricks_gateway is not None and team.serverless is not None
    props = gateway_budget_props("a", team.databricks_gateway)
    assert [a["threshold_usd"] for a in props["alerts"]] == [166.67, 333.34]  # the cap alert once
    assert tier_usd(333.34, 50) == 166.67 and tier_usd(500, 80) == 400.0
    for section in ("databricksGateway", "serverless", "gateway"):
        budget = {"monthlyLimitUsd": 10, "notify": ["o@example.com"]} if section != "gateway" else {"limitUsd": 10}
        budget["alertThresholds"] = [50, 50]
        with pytest.raises(StackConfigError) as refused:
            parse_stack_config([{"name": "a", section: budget}], [])
        assert f"ml-budgets:teams[0].{section}.alertThresholds[1]: 50 % appears twice" in str(refused.value)


def test_budgets_written_into_a_database_wait_for_the_refresh_even_on_one_worker(monkeypatch):
    messages = logged(monkeypatch)
    parse_stack_config(None, A_HARD_STOP, None, {"workers": 1}, tracking_uri="https://mlflow.example.com")
    assert messages["info"] == []  # the one worker serves the write and reloads at once
    parse_stack_config(None, A_HARD_STOP, None, {"workers": 1}, tracking_uri="sqlite:///mlflow.db")
    [info] = messages["info"]
    assert "within 600 s" in info
