"""The MLflow test fixtures themselves: a served store, request counting, migrated SQLite."""

from __future__ import annotations

import requests

from harness.deployment import Deployment
from harness.mlflow_server import provider_env
from harness.provider_server import ProviderServer
from providers import GatewayBudgetPolicy

BUDGETS = "/api/3.0/mlflow/gateway/budgets"


def test_server_serves_its_sqlite_store(mlflow_server):
    from mlflow.tracking._tracking_service.utils import _get_store

    assert requests.get(f"{mlflow_server.url}/health", timeout=5).status_code == 200
    experiment_id = _get_store(mlflow_server.tracking_uri).create_experiment("fixture-check")
    assert _get_store(mlflow_server.db_uri).get_experiment(experiment_id).name == "fixture-check"


def test_request_counts_show_the_calls_one_step_makes(mlflow_server):
    with ProviderServer(config={"mlflow:trackingUri": mlflow_server.url}, env=provider_env()) as provider:
        policy = Deployment(provider, GatewayBudgetPolicy)
        mark = mlflow_server.mark()
        policy.up(amount_usd=100_000, window="daily", action="ALERT")
        assert mlflow_server.request_counts(since=mark) == {("POST", f"{BUDGETS}/create"): 1}

        mark = mlflow_server.mark()
        policy.refresh()
        policy.up(amount_usd=100_000, window="daily", action="ALERT")  # no change: no call
        assert mlflow_server.request_counts(since=mark) == {("GET", f"{BUDGETS}/get"): 1}

        mark = mlflow_server.mark()
        policy.destroy()
        requests_made = mlflow_server.requests(since=mark)
        assert [(r.method, r.path, r.status) for r in requests_made] == [("DELETE", f"{BUDGETS}/delete", 200)]


def test_sqlite_tracking_uri_is_a_migrated_store_of_its_own(sqlite_tracking_uri, tmp_path):
    from mlflow.tracking._tracking_service.utils import _get_store

    assert sqlite_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = _get_store(sqlite_tracking_uri)
    assert store.list_budget_policies() == []
    assert store.get_experiment_by_name("Default") is not None
