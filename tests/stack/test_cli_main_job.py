"""The main job through the real Pulumi CLI and engine, on the shipped local stack.

``Pulumi.local.yaml`` as shipped (only ``databricks:host`` and ``mlflow:trackingUri`` pointed at
the Databricks emulator and a real ``mlflow server`` on free ports), logged in to a file backend
in a temp folder, passphrase secrets: preview → up → preview (no changes) → one config change →
preview shows exactly that change → up → refresh (no drift) → destroy (nothing left, checked with
the vendors' own clients).  Step counts come from the engine's summaries; what they must be is
derived from what the program declares (run under mocks with the same config), so the test keeps
its meaning when the shipped stack grows.  The CLI comes from ``harness/pulumi_cli.py``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from emulator.server import EmulatorServer
from harness.mlflow_server import MlflowServer
from harness.project_copy import copy_project
from harness.provider_server import PROJECT_ROOT
from harness.pulumi_cli import Events, cli_stack, main_program, state_file
from harness.pulumi_program import RecordingMocks, config_values, run_program

SHIPPED = yaml.safe_load((PROJECT_ROOT / "Pulumi.local.yaml").read_text())["config"]
STACK_TYPE = "pulumi:pulumi:Stack"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret in state


def _type_of(urn: str) -> str:
    return urn.split("::")[-2].split("$")[-1]


def signing_keys() -> dict[str, str]:
    """The shipped stack's webhook signing keys, by their `pulumi config set --path` key."""
    keys = {}
    for i, team in enumerate(SHIPPED["ml-budgets:teams"]):
        if secret := ((team.get("gateway") or {}).get("webhook") or {}).get("secret"):
            keys[f"ml-budgets:teams[{i}].gateway.webhook.secret"] = secret
    for i, budget in enumerate(SHIPPED["ml-budgets:gatewayBudgets"]):
        if secret := (budget.get("webhook") or {}).get("secret"):
            keys[f"ml-budgets:gatewayBudgets[{i}].webhook.secret"] = secret
    return keys


def declared(work_dir, config: dict) -> RecordingMocks:
    """What the program registers with this stack config (the engine must step exactly these)."""
    mocks = run_program(main_program(work_dir), config=config_values(config), stack="local")
    assert isinstance(mocks, RecordingMocks)
    return mocks


def expected_types(mocks: RecordingMocks) -> Counter:
    return Counter([STACK_TYPE, *(r.type for r in mocks.registrations)])


@pytest.fixture
def servers(tmp_path):
    emulator = EmulatorServer(host="127.0.0.1", port=0, account_id=SHIPPED["databricks:accountId"]).start()
    mlflow = MlflowServer(tmp_path / "mlflow").start()
    yield emulator, mlflow
    mlflow.stop()
    emulator.stop()


def test_the_local_stack_through_preview_up_change_refresh_destroy(tmp_path, pulumi_cli, servers, remove_stacks):
    from mlflow import MlflowClient
    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store
    from pulumi import automation as auto

    emulator, mlflow = servers
    work_dir = copy_project(tmp_path / "project", extra_files=("Pulumi.local.yaml",))
    config = {**SHIPPED, "databricks:host": emulator.url, "mlflow:trackingUri": mlflow.tracking_uri}
    stack = cli_stack(pulumi_cli, tmp_path, work_dir, "local", main_program(work_dir), env=mlflow.env)
    remove_stacks.append(stack)
    stack.set_config("databricks:host", auto.ConfigValue(emulator.url))
    stack.set_config("mlflow:trackingUri", auto.ConfigValue(mlflow.tracking_uri))
    # The local stack keeps its token and signing keys inline, in plaintext (local-only); a real
    # stack sets them as secrets, as here. The engine stores the whole stack config in the state
    # (as the dynamic provider's configuration): only secret config is encrypted there.
    secrets = {"databricks:token": SHIPPED["databricks:token"], **signing_keys()}
    assert len(secrets) >= 3, secrets
    for key, value in secrets.items():
        stack.set_config(key, auto.ConfigValue(value, secret=True), path="[" in key)
    types = expected_types(declared(work_dir, config))
    total = sum(types.values())
    assert types["pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy"] == len(SHIPPED["ml-budgets:teams"])

    # preview: every resource a create, nothing written
    events = Events()
    preview = stack.preview(on_event=events)
    assert preview.change_summary == {"create": total}
    # The engine also steps the default provider of the dynamic resources (not in the summary).
    stepped = Counter(_type_of(urn) for urn in events.steps)
    assert stepped.pop("pulumi:providers:pulumi-python") == 1
    assert stepped == types
    assert emulator.count("POST") == 0
    assert tracking_store(mlflow.tracking_uri).list_budget_policies() == []

    # up
    baseline_tags = set(MlflowClient(mlflow.tracking_uri).get_experiment("0").tags)
    up = stack.up()
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes == {"create": total}
    policy_ids = {p.policy_id for p in emulator.account_client().budget_policy.list()}
    assert {team["policy_id"] for team in up.outputs["teams"].value.values()} == policy_ids
    webhooks = registry_store(mlflow.tracking_uri).list_webhooks()
    assert len(webhooks) == len(SHIPPED["ml-budgets:gatewayBudgets"]) + sum(
        1 for t in SHIPPED["ml-budgets:teams"] if t.get("gateway", {}).get("webhook")
    )
    assert set(MlflowClient(mlflow.tracking_uri).get_experiment("0").tags) > baseline_tags

    # no secret in plaintext in the state file; the secrets are there, encrypted
    state = state_file(tmp_path, "local").read_text()
    for secret in secrets.values():
        assert secret not in state
    resources = json.loads(state)["checkpoint"]["latest"]["resources"]
    hooks = [r for r in resources if r["type"].endswith(":BudgetAlertWebhook")]
    assert hooks and all(r["inputs"]["secret"].get(SECRET_SIG) for r in hooks)
    assert all(r["outputs"]["url"].get(SECRET_SIG) for r in hooks), "webhook URLs hold tokens: kept secret"

    # preview again: nothing to do
    again = stack.preview()
    assert again.change_summary == {"same": total}

    # one config change: the first gateway budget's limit
    budget = SHIPPED["ml-budgets:gatewayBudgets"][0]
    new_limit = int(budget["limitUsd"]) * 6 // 5
    changed = json.loads(json.dumps(SHIPPED["ml-budgets:gatewayBudgets"]))
    changed[0]["limitUsd"] = new_limit
    stack.set_config("ml-budgets:gatewayBudgets[0].limitUsd", auto.ConfigValue(str(new_limit)), path=True)
    before = {(r.type, r.name): r.inputs for r in declared(work_dir, config).registrations}
    after = {
        (r.type, r.name): r.inputs
        for r in declared(work_dir, {**config, "ml-budgets:gatewayBudgets": changed}).registrations
    }
    differing = {key for key in before if before[key] != after[key] and not key[0].startswith("ml-budgets:index:")}
    assert differing, "the change must change some resource"

    alert = f"{budget['name']}-alert-{budget['alertThresholds'][0]}pct"
    assert {name for _, name in differing} == {alert}, "exactly one resource declares something new"
    events = Events()
    preview = stack.preview(on_event=events)
    # The preview also shows the budget's webhook: its URL carries the alert policy's id, and an
    # updated resource's outputs are unknown during preview (the dynamic provider cannot preview,
    # so the engine answers with the inputs). `up` then finds the webhook unchanged.
    assert preview.change_summary == {"same": total - 2, "update": 2}
    by_name = {urn.rsplit("::", 1)[-1]: op for urn, op in events.changed().items()}
    assert by_name == {alert: "update", f"{budget['name']}-webhook": "update", "default": "update"}
    # "default": the dynamic provider's default provider, whose inputs are the stack config.
    up = stack.up()
    assert up.summary.resource_changes == {"same": total - 1, "update": 1}
    amounts = {p.budget_amount for p in tracking_store(mlflow.tracking_uri).list_budget_policies()}
    assert {round(new_limit * t / 100, 2) for t in budget["alertThresholds"]} <= {round(a, 2) for a in amounts}

    # refresh: the servers hold what the state says
    refresh = stack.refresh()
    assert refresh.summary.resource_changes == {"same": total}
    assert stack.preview().change_summary == {"same": total}

    # destroy: nothing left, as the vendors' own clients see it
    destroy = stack.destroy()
    assert destroy.summary.resource_changes == {"delete": total}
    account = emulator.account_client()
    assert list(account.budget_policy.list()) == []
    assert list(account.budgets.list()) == []
    assert tracking_store(mlflow.tracking_uri).list_budget_policies() == []
    assert list(registry_store(mlflow.tracking_uri).list_webhooks()) == []
    assert set(MlflowClient(mlflow.tracking_uri).get_experiment("0").tags) == baseline_tags
