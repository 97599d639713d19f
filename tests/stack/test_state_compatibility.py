"""State written by ml-budgets 0.2.0 keeps working: refresh, an up with no changes, destroy.

``fixtures/local-stack-0.2.0`` is the shipped local stack (Pulumi.local.yaml) as 0.2.0 left it,
captured by ``fixtures/capture_local_stack_state.py`` with that release's code: the Pulumi state
(each resource's inputs, outputs and pickled ``__provider``), the emulator's account and the MLflow
SQLite store.  Today's providers must read it back unchanged, find nothing to do, and delete every
object with the providers pickled by 0.2.0.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from harness.engine import PROVIDER_KEY, LocalEngine, StateEntry
from harness.mlflow_server import provider_env

FIXTURE = Path(__file__).parent / "fixtures" / "local-stack-0.2.0"
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def _store_dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


@pytest.fixture
def stack_0_2_0(databricks_emulator_factory, provider_server_factory, tmp_path):
    store = tmp_path / "mlflow-local.db"
    with sqlite3.connect(store) as db:
        db.executescript((FIXTURE / "mlflow-store.sql").read_text())
    emulator_state = tmp_path / "emulator-state.json"
    emulator_state.write_text((FIXTURE / "databricks-account.json").read_text())

    config = yaml.safe_load((FIXTURE / "Pulumi.local.yaml").read_text())["config"]
    emulator = databricks_emulator_factory(account_id=config["databricks:accountId"], state_path=str(emulator_state))
    config["databricks:host"] = emulator.url
    config["mlflow:trackingUri"] = f"sqlite:///{store}"
    provider_config = {k: v for k, v in config.items() if not k.startswith("ml-budgets:")}
    engine = LocalEngine(provider_server_factory(config=provider_config, env=provider_env()))
    saved = json.loads((FIXTURE / "engine-state.json").read_text().replace("{STORE}", str(store)))
    for raw in saved:
        engine._remember(
            StateEntry(raw["type"], raw["name"], raw["id"], raw["inputs"], raw["outputs"], set(raw["secret_keys"]))
        )
    return engine, config, emulator, store, saved


def test_a_0_2_0_local_stack_refreshes_updates_and_destroys_without_a_diff(stack_0_2_0):
    engine, config, emulator, store, saved = stack_0_2_0
    assert len(saved) == 17
    before = _store_dump(store)

    emulator.reset_requests()
    refreshed = engine.refresh()
    assert refreshed.summary() == {"refresh-same": 17}
    for raw in saved:
        entry = engine.state[(raw["type"], raw["name"])]
        assert entry.outputs == raw["outputs"], raw["name"]

    again = engine.up(config)
    assert again.summary() == {"same": 17}
    assert sum(emulator.count(method) for method in WRITE_METHODS) == 0
    assert _store_dump(store) == before  # MLflow: not one row written

    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store

    tracking = _get_store(config["mlflow:trackingUri"])
    assert len(list(tracking.list_budget_policies())) == 5
    assert "mlflow.workload_creation_policy_id" in tracking.get_experiment("0").tags
    assert len(registry_store(config["mlflow:trackingUri"]).list_webhooks()) == 2

    # destroy deletes with the providers 0.2.0 pickled (the state keeps each resource's own).
    for raw in saved:
        assert engine.state[(raw["type"], raw["name"])].outputs[PROVIDER_KEY] == raw["outputs"][PROVIDER_KEY]
    destroyed = engine.destroy()
    assert destroyed.summary() == {"delete": 17}
    account = emulator.account_client()
    assert list(account.budget_policy.list()) == []
    assert list(account.budgets.list()) == []
    assert list(tracking.list_budget_policies()) == []
    tags = tracking.get_experiment("0").tags
    assert not [key for key in tags if key.startswith(("mlflow.workload_creation_policy_id", "ml-budgets."))]
    assert [hook.webhook_id for hook in registry_store(config["mlflow:trackingUri"]).list_webhooks()] == []
