"""Adopting an object that already exists: ``adopt_id`` makes Create take it over.

The engine cannot import a dynamic resource (its import step calls Read with the id only, and the
provider server then has no ``__provider`` to call; pulumi/pulumi#16175), so Create, which gets
the inputs, reads the named object, updates what differs and takes its id.  These tests drive the
SDK's provider server as the engine does for a create; ``tests/stack/test_cli_adoption.py``
adopts through the real CLI.
"""

from __future__ import annotations

import pytest

from harness.mlflow_server import gateway_env
from harness.provider_server import ProviderError
from providers import AccountBudget, BudgetAlertWebhook, GatewayBudgetPolicy, ServerlessBudgetPolicy

MISSING_POLICY_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def databricks(databricks_emulator, provider_server_factory):
    return provider_server_factory(config=databricks_emulator.config())


def _policy_made_by_hand(emulator, name: str):
    from databricks.sdk.service.billing import BudgetPolicy
    from databricks.sdk.service.compute import CustomPolicyTag

    return emulator.account_client().budget_policy.create(
        policy=BudgetPolicy(policy_name=name, custom_tags=[CustomPolicyTag("team", "z")])
    )


def test_a_serverless_policy_is_adopted_updated_and_kept(databricks, databricks_emulator, deploy):
    existing = _policy_made_by_hand(databricks_emulator, "made-by-hand")
    policy = deploy(databricks, ServerlessBudgetPolicy)
    databricks_emulator.reset_requests()

    args = dict(policy_name="made-by-hand", custom_tags={"team": "search"}, adopt_id=existing.policy_id)
    assert policy.up(**args) == "create"

    assert policy.id == existing.policy_id
    assert databricks_emulator.count("POST", "/budget-policies") == 0, "adopting creates nothing"
    assert databricks_emulator.count("PATCH", "/budget-policies") == 1
    (only,) = databricks_emulator.account_client().budget_policy.list()
    assert {(t.key, t.value) for t in only.custom_tags} == {("team", "search")}
    # Once in state adopt_id is inert: removing it, or keeping it, changes nothing.
    assert policy.up(policy_name="made-by-hand", custom_tags={"team": "search"}) == "same"
    assert policy.up(**args) == "same"


def test_an_adoption_that_matches_writes_nothing(databricks, databricks_emulator, deploy):
    existing = _policy_made_by_hand(databricks_emulator, "already-right")
    databricks_emulator.reset_requests()
    policy = deploy(databricks, ServerlessBudgetPolicy)
    assert policy.up(policy_name="already-right", custom_tags={"team": "z"}, adopt_id=existing.policy_id) == "create"
    assert {r["method"] for r in databricks_emulator.requests} == {"GET"}


def test_adopting_what_does_not_exist_is_refused_and_creates_nothing(databricks, databricks_emulator, deploy):
    databricks_emulator.reset_requests()
    with pytest.raises(ProviderError) as error:
        deploy(databricks, ServerlessBudgetPolicy).up(policy_name="ghost", adopt_id=MISSING_POLICY_ID)
    assert f"Unable to adopt budget policy '{MISSING_POLICY_ID}': no budget policy has this id" in error.value.message
    assert "remove adopt_id to create a new one" in error.value.message
    assert databricks_emulator.count("POST") == 0
    assert list(databricks_emulator.account_client().budget_policy.list()) == []


def test_check_refuses_an_adopt_id_that_is_not_a_string(databricks):
    from harness.deployment import declare

    outcome = databricks.check(
        databricks.urn("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "p"),
        declare(ServerlessBudgetPolicy, "p", policy_name="p", adopt_id=42),
    )
    assert outcome.failed_properties() == {"adopt_id"}


def test_a_name_already_taken_points_at_adopt_id(databricks, databricks_emulator, deploy):
    existing = _policy_made_by_hand(databricks_emulator, "taken")
    with pytest.raises(ProviderError) as error:
        deploy(databricks, ServerlessBudgetPolicy).up(policy_name="taken")
    assert f'adopt_id="{existing.policy_id}"' in error.value.message
    assert "import_" not in error.value.message


def _account_budget_made_by_hand(client):
    from databricks.sdk.service import billing

    return client.budgets.create(
        billing.CreateBudgetConfigurationBudget(
            display_name="finance made this",
            filter=billing.BudgetConfigurationFilter(
                tags=[
                    billing.BudgetConfigurationFilterTagClause(
                        key="team",
                        value=billing.BudgetConfigurationFilterClause(
                            operator=billing.BudgetConfigurationFilterOperator.IN, values=["recsys"]
                        ),
                    )
                ]
            ),
            alert_configurations=[
                billing.CreateBudgetConfigurationBudgetAlertConfigurations(
                    quantity_threshold="300.00",
                    quantity_type=billing.AlertConfigurationQuantityType.LIST_PRICE_DOLLARS_USD,
                    time_period=billing.AlertConfigurationTimePeriod.MONTH,
                    trigger_type=billing.AlertConfigurationTriggerType.CUMULATIVE_SPENDING_EXCEEDED,
                    action_configurations=[
                        billing.CreateBudgetConfigurationBudgetActionConfigurations(
                            action_type=billing.ActionConfigurationType.EMAIL_NOTIFICATION, target="finance@example.com"
                        )
                    ],
                )
            ],
        )
    ).budget


def test_an_account_budget_is_adopted_with_its_alerts_updated(databricks, databricks_emulator, deploy):
    client = databricks_emulator.account_client()
    existing = _account_budget_made_by_hand(client)
    budget = deploy(databricks, AccountBudget)
    args = dict(
        display_name="finance made this",
        tags={"team": ["recsys"]},
        alerts=[{"threshold_usd": 450, "notify": ["finance@example.com"]}],
        adopt_id=existing.budget_configuration_id,
    )
    databricks_emulator.reset_requests()
    assert budget.up(**args) == "create"
    assert budget.id == existing.budget_configuration_id
    assert databricks_emulator.count("POST", "/budgets") == 0
    (only,) = client.budgets.list()
    assert [a.quantity_threshold for a in only.alert_configurations] == ["450"] or [
        float(a.quantity_threshold) for a in only.alert_configurations
    ] == [450.0]
    assert budget.up(**{k: v for k, v in args.items() if k != "adopt_id"}) == "same"


def test_an_account_budget_whose_immutable_fields_differ_is_not_adopted(databricks, databricks_emulator, deploy):
    client = databricks_emulator.account_client()
    existing = _account_budget_made_by_hand(client)
    with pytest.raises(ProviderError) as error:
        deploy(databricks, AccountBudget).up(
            display_name="finance made this",
            tags={"team": ["recsys"]},
            resource_type="AI_GATEWAY",
            alerts=[{"threshold_usd": 300, "notify": ["finance@example.com"]}],
            adopt_id=existing.budget_configuration_id,
        )
    assert "resource_type" in error.value.message and "cannot change in place" in error.value.message
    assert [b.budget_configuration_id for b in client.budgets.list()] == [existing.budget_configuration_id]


def test_a_gateway_budget_policy_is_adopted_with_its_amount_updated(mlflow_backend, deploy):
    from providers.gateway_budget_policy import budget_arguments

    store = mlflow_backend.tracking_store()
    made = {"amount_usd": 123_456, "window": {"unit": "MONTHS", "value": 1}, "action": "ALERT", "scope": "GLOBAL"}
    existing = store.create_budget_policy(**budget_arguments(made, None))
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    try:
        args = dict(amount_usd=234_567, window="monthly", action="ALERT", adopt_id=existing.budget_policy_id)
        assert policy.up(**args) == "create"
        assert policy.id == existing.budget_policy_id
        assert store.get_budget_policy(existing.budget_policy_id).budget_amount == 234_567
        ids = [p.budget_policy_id for p in store.list_budget_policies()]
        assert ids.count(existing.budget_policy_id) == 1 and len(ids) == len(set(ids))
        assert policy.up(amount_usd=234_567, window="monthly", action="ALERT") == "same"
    finally:
        policy.destroy()


def test_a_webhook_is_adopted_with_its_secret_set(mlflow_backend, deploy, monkeypatch):
    for name, value in gateway_env().items():  # this process writes the webhook made by hand
        monkeypatch.setenv(name, value)
    store = mlflow_backend.registry_store()
    from mlflow.entities.webhook import WebhookEvent

    existing = store.create_webhook(
        name="made-by-hand",
        url="http://127.0.0.1:9/old",
        events=[WebhookEvent.from_str("budget_policy.exceeded")],
    )
    hook = deploy(mlflow_backend.provider, BudgetAlertWebhook)
    try:
        args = dict(
            webhook_name="made-by-hand", url="http://127.0.0.1:9/new", secret="s3", adopt_id=existing.webhook_id
        )
        assert hook.up(**args) == "create"
        assert hook.id == existing.webhook_id
        stored = store.get_webhook(existing.webhook_id)
        assert stored.url == "http://127.0.0.1:9/new"
        assert hook.outputs["secret_hash"], "the declared secret was set, and its fingerprint kept"
        assert [w.webhook_id for w in store.list_webhooks() if w.name == "made-by-hand"] == [existing.webhook_id]
        assert hook.up(**{k: v for k, v in args.items() if k != "adopt_id"}) == "same"
    finally:
        hook.destroy()
