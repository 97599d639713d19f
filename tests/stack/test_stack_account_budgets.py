"""The real ``__main__.py`` with dollar budgets: a team's serverless budget with a monthly limit
and a Databricks AI Gateway budget, through up → no-op up → update → refresh → destroy.

The program runs under ``set_mocks``; every resource goes to the SDK's real provider server over
gRPC (``harness/engine.py``) against the Databricks account emulator, which counts writes.
"""

from __future__ import annotations

import pytest

from harness.engine import LocalEngine
from stack_config import StackConfigError

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def teams(limit: float = 1000.0) -> list[dict]:
    return [
        {
            "name": "search",
            "serverless": {
                "customTags": {"cost-center": "4711"},
                "monthlyLimitUsd": limit,
                "alertThresholds": [50, 80, 100],
                "notify": ["search-lead@example.com", "finops@example.com"],
            },
            "databricksGateway": {
                "monthlyLimitUsd": 400,
                "alertThresholds": [75],
                "notify": ["search-lead@example.com"],
                "perUserLimitUsd": 25,
                "overrides": {"70010001": 100},
            },
        },
        {"name": "recsys", "serverless": {"users": ["groups/recsys"]}},
    ]


@pytest.fixture
def stack(databricks_emulator, provider_server_factory):
    provider = provider_server_factory(config=databricks_emulator.config())
    return LocalEngine(provider), databricks_emulator.config()


def writes(emulator) -> int:
    return sum(emulator.count(m) for m in WRITES)


def tag_filter(budget) -> dict:
    return {t.key: sorted(t.value.values) for t in (budget.filter.tags if budget.filter else None) or []}


def test_serverless_dollar_limit_and_gateway_budget_up_noop_update_destroy(stack, databricks_emulator):
    engine, base = stack
    account = databricks_emulator.account_client()
    config = {**base, "ml-budgets:teams": teams()}

    created = engine.up(config)
    # search: policy, its account budget, its AI Gateway budget; recsys: policy and grants.
    assert created.summary() == {"create": 5}
    exports = created.exports["teams"]
    search = exports["search"]
    policy = account.budget_policy.get(search["policy_id"])
    policy_tags = {t.key: t.value for t in policy.custom_tags}
    assert policy_tags == {"team": "search", "cost-center": "4711"}

    # The dollar budget counts exactly the usage the team's policy tags.
    budget = account.budgets.get(search["budget_id"]).budget
    assert budget.display_name == "search"
    assert tag_filter(budget) == {key: [value] for key, value in policy_tags.items()}
    assert budget.resource_type.value == "BUDGET_RESOURCE_TYPE_ALL_RESOURCES"
    assert sorted(a.quantity_threshold for a in budget.alert_configurations) == ["1000", "500", "800"]
    for alert in budget.alert_configurations:
        assert {(a.action_type.value, a.target) for a in alert.action_configurations} == {
            ("EMAIL_NOTIFICATION", "search-lead@example.com"),
            ("EMAIL_NOTIFICATION", "finops@example.com"),
        }
    assert "budget_id" not in exports["recsys"]

    gateway = account.budgets.get(search["databricks_gateway_budget_id"]).budget
    assert gateway.resource_type.value == "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY"
    assert tag_filter(gateway) == {"team": ["search"]}
    shared = {
        a.quantity_threshold: {x.action_type.value for x in a.action_configurations}
        for a in gateway.alert_configurations
        if a.scope_type.value.endswith("SHARED")
    }
    assert shared == {"300": {"EMAIL_NOTIFICATION"}, "400": {"EMAIL_NOTIFICATION", "BLOCK_USAGE"}}
    per_user = next(a for a in gateway.alert_configurations if a.scope_type.value.endswith("PER_USER"))
    assert per_user.quantity_threshold == "25"
    assert [(o.principal_id, o.override_threshold) for o in per_user.principal_overrides] == [(70010001, "100")]

    # A no-op up writes nothing, even after the server reordered every list it keeps.
    for budget_id in (search["budget_id"], search["databricks_gateway_budget_id"]):
        databricks_emulator.state.budgets.reorder(budget_id)
    databricks_emulator.reset_requests()
    again = engine.up(config)
    assert again.summary() == {"same": 5}
    assert writes(databricks_emulator) == 0

    # A new limit updates the budget in place (one GET + one PUT), nothing else.
    databricks_emulator.reset_requests()
    changed = engine.up({**base, "ml-budgets:teams": teams(limit=2000.0)})
    assert changed.summary() == {"update": 1, "same": 4}
    assert writes(databricks_emulator) == 1
    assert sorted(
        a.quantity_threshold for a in account.budgets.get(search["budget_id"]).budget.alert_configurations
    ) == ["1000", "1600", "2000"]

    # An edit in the console is seen by refresh and undone by the next up.
    from databricks.sdk.service import billing

    edited = account.budgets.get(search["budget_id"]).budget
    account.budgets.update(
        search["budget_id"],
        billing.UpdateBudgetConfigurationBudget(
            budget_configuration_id=edited.budget_configuration_id,
            display_name="search (edited)",
            filter=edited.filter,
            alert_configurations=edited.alert_configurations,
            resource_type=edited.resource_type,
        ),
    )
    assert engine.refresh().count("refresh-changed") == 1
    assert engine.up({**base, "ml-budgets:teams": teams(limit=2000.0)}).summary() == {"update": 1, "same": 4}
    assert account.budgets.get(search["budget_id"]).budget.display_name == "search"

    engine.destroy()
    assert list(account.budgets.list()) == []


def test_preview_of_a_new_dollar_limit_writes_nothing(stack, databricks_emulator):
    engine, base = stack
    databricks_emulator.reset_requests()
    preview = engine.preview({**base, "ml-budgets:teams": teams()})
    assert preview.count("create") == 5
    assert writes(databricks_emulator) == 0


def test_bad_budget_config_fails_before_anything_is_written(stack, databricks_emulator):
    engine, base = stack
    bad = teams()
    bad[0]["serverless"]["notify"] = ["search-lead(at)example.com"]
    bad[0]["databricksGateway"]["alertThresholds"] = [25, 50, 75, 90]
    databricks_emulator.reset_requests()
    with pytest.raises(StackConfigError) as error:
        engine.up({**base, "ml-budgets:teams": bad})
    message = str(error.value)
    assert "ml-budgets:teams[0].serverless.notify: 'search-lead(at)example.com' is not an email address" in message
    assert "ml-budgets:teams[0].databricksGateway.alertThresholds: has 5 alerts" in message
    assert engine.state == {} and databricks_emulator.requests == []
