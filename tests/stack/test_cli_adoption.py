"""Adopting objects made by hand, through the real Pulumi CLI and engine.

``adopt_id`` on a budget policy, an account budget, a gateway budget policy and a webhook: the
first ``pulumi up`` creates nothing, updates what differs and keeps the objects' ids; an id that
does not exist fails the update; Pulumi's own ``import_`` fails on the real engine (its import
step reads by id alone, and the dynamic provider has nothing to read with).  The CLI comes from
``harness/pulumi_cli.py``.
"""

from __future__ import annotations

import contextlib

import pulumi
import pytest

from harness.mlflow_server import gateway_env
from harness.project_copy import copy_project
from harness.pulumi_cli import cli_stack
from providers import AccountBudget, BudgetAlertWebhook, GatewayBudgetPolicy, ServerlessBudgetPolicy
from tests.providers.test_adoption import MISSING_POLICY_ID, _account_budget_made_by_hand, _policy_made_by_hand


@pytest.fixture
def made_by_hand(databricks_emulator, mlflow_server, monkeypatch):
    """One object of each adoptable kind, made with the vendors' own clients."""
    from mlflow.entities.webhook import WebhookEvent
    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

    from providers.gateway_budget_policy import budget_arguments

    for name, value in gateway_env().items():  # this process writes the webhook
        monkeypatch.setenv(name, value)
    store = tracking_store(mlflow_server.tracking_uri)
    registry = registry_store(mlflow_server.tracking_uri)
    made = {
        "policy": _policy_made_by_hand(databricks_emulator, "adopt-me").policy_id,
        "budget": _account_budget_made_by_hand(databricks_emulator.account_client()).budget_configuration_id,
        # A GLOBAL ALERT far above any spend: inert for the other tests sharing the server.
        "gateway": store.create_budget_policy(
            **budget_arguments(
                {
                    "amount_usd": 123_456_789,
                    "window": {"unit": "MONTHS", "value": 1},
                    "action": "ALERT",
                    "scope": "GLOBAL",
                },
                None,
            )
        ).budget_policy_id,
        "webhook": registry.create_webhook(
            name="adopt-me", url="http://127.0.0.1:9/old", events=[WebhookEvent.from_str("budget_policy.exceeded")]
        ).webhook_id,
    }
    yield made, store, registry
    with contextlib.suppress(Exception):  # deleted by the test's destroy, unless it failed before
        store.delete_budget_policy(made["gateway"])


def adopting_program(made: dict[str, str]):
    def program() -> None:
        ServerlessBudgetPolicy(
            "policy", policy_name="adopt-me", custom_tags={"team": "search"}, adopt_id=made["policy"]
        )
        AccountBudget(
            "budget",
            display_name="finance made this",
            tags={"team": ["recsys"]},
            alerts=[{"threshold_usd": 450, "notify": ["finance@example.com"]}],
            adopt_id=made["budget"],
        )
        GatewayBudgetPolicy(
            "gateway", amount_usd=234_567_890, window="monthly", action="ALERT", adopt_id=made["gateway"]
        )
        BudgetAlertWebhook(
            "webhook", webhook_name="adopt-me", url="http://127.0.0.1:9/new", secret="s3", adopt_id=made["webhook"]
        )

    return program


def test_adoption_through_the_cli(
    tmp_path, pulumi_cli, databricks_emulator, mlflow_server, made_by_hand, remove_stacks
):
    from pulumi import automation as auto

    made, store, registry = made_by_hand
    work_dir = copy_project(tmp_path / "project")
    config = {**databricks_emulator.config(), "mlflow:trackingUri": mlflow_server.tracking_uri}
    account = databricks_emulator.account_client()

    def stack_of(name: str, program):
        stack = cli_stack(pulumi_cli, tmp_path, work_dir, name, program, env=gateway_env())
        remove_stacks.append(stack)
        for key, value in config.items():
            stack.set_config(key, auto.ConfigValue(value))
        return stack

    stack = stack_of("adopt", adopting_program(made))
    assert stack.preview().change_summary == {"create": 5}  # 4 resources and the stack
    databricks_emulator.reset_requests()
    up = stack.up()
    assert up.summary.resource_changes == {"create": 5}
    assert databricks_emulator.count("POST") == 0, "adopting creates nothing"

    ids = {r["urn"].rsplit("::", 1)[-1]: r["id"] for r in stack.export_stack().deployment["resources"] if "id" in r}
    assert {name: ids[name] for name in made} == made
    (policy,) = account.budget_policy.list()
    assert {(t.key, t.value) for t in policy.custom_tags} == {("team", "search")}
    (budget,) = account.budgets.list()
    assert [float(a.quantity_threshold) for a in budget.alert_configurations] == [450.0]
    assert store.get_budget_policy(made["gateway"]).budget_amount == 234_567_890
    assert registry.get_webhook(made["webhook"]).url == "http://127.0.0.1:9/new"
    assert [w.webhook_id for w in registry.list_webhooks() if w.name == "adopt-me"] == [made["webhook"]]
    assert stack.preview().change_summary == {"same": 5}

    # An id that names nothing: the update fails, saying so, and creates nothing.
    def ghost() -> None:
        ServerlessBudgetPolicy("ghost", policy_name="ghost", adopt_id=MISSING_POLICY_ID)

    with pytest.raises(auto.CommandError) as refused:
        stack_of("ghost", ghost).up()
    assert f"Unable to adopt budget policy '{MISSING_POLICY_ID}': no budget policy has this id" in str(refused.value)
    assert [p.policy_id for p in account.budget_policy.list()] == [made["policy"]]

    # Pulumi's import_ on the real engine: Read gets the id only, and the dynamic provider fails.
    def imported() -> None:
        ServerlessBudgetPolicy("imported", policy_name="adopt-me", opts=pulumi.ResourceOptions(import_=made["policy"]))

    with pytest.raises(auto.CommandError) as failed:
        stack_of("import", imported).up()
    assert "__provider" in str(failed.value)

    # Adopted objects are the stack's own: destroy deletes them.
    assert stack.destroy().summary.resource_changes == {"delete": 5}
    assert list(account.budget_policy.list()) == [] and list(account.budgets.list()) == []
    assert made["gateway"] not in {p.budget_policy_id for p in store.list_budget_policies()}
    assert made["webhook"] not in {w.webhook_id for w in registry.list_webhooks()}
