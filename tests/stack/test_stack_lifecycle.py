"""The real ``__main__.py`` through up → no-op up → update → remove a team → destroy.

The program runs under ``set_mocks``; every dynamic resource goes to the SDK's real provider
server over gRPC (``harness/engine.py``), against a real ``mlflow server`` and the
Databricks account emulator.  Writes are counted by the servers themselves.
"""

from __future__ import annotations

import uuid

import pytest

from harness.engine import LocalEngine
from harness.mlflow_server import provider_env
from stack_config import StackConfigError

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def teams_config(experiment_id: str, limit_search: float = 100.0) -> list[dict]:
    return [
        {
            "name": "search",
            "serverless": {
                "customTags": {"cost-center": "4711"},
                "users": ["groups/search-engineers"],
                "managers": ["users/search-lead@example.com"],
                "experiments": [experiment_id],
            },
            "evaluation": {"maxTokens": 100000, "onExceed": "warn", "pricePer1kTokens": 0.5},
            "gateway": {
                "limitUsd": limit_search,
                "alertThresholds": [50, 80],
                "hardStop": True,
                "webhook": {"url": "https://hooks.slack.com/services/T0/B0/search", "secret": "whsec-search-7f3a"},
            },
        },
        {
            "name": "recsys",
            "serverless": {"users": ["groups/recsys"]},
            "gateway": {"limitUsd": 40, "window": "daily", "alertThresholds": [], "hardStop": True},
        },
    ]


class Servers:
    """Counts of writes received by the emulator and the MLflow server since the last mark."""

    def __init__(self, emulator, mlflow) -> None:
        self.emulator, self.mlflow = emulator, mlflow
        self.mark()

    def mark(self) -> None:
        self.emulator.reset_requests()
        self._mlflow_mark = self.mlflow.mark()

    def writes(self) -> dict[str, int]:
        databricks = sum(self.emulator.count(m) for m in WRITE_METHODS)
        mlflow_writes = [
            r
            for r in self.mlflow.requests(self._mlflow_mark)
            if r.method in WRITE_METHODS and not r.path.endswith(("/search", "/get", "/list"))
        ]
        return {"databricks": databricks, "mlflow": len(mlflow_writes)}


@pytest.fixture
def stack(databricks_emulator, mlflow_server, provider_server_factory):
    from mlflow import MlflowClient

    experiment_id = MlflowClient(mlflow_server.tracking_uri).create_experiment(
        f"/Users/lead@example.com/evals-{uuid.uuid4().hex}"
    )
    provider = provider_server_factory(
        config={**databricks_emulator.config(), "mlflow:trackingUri": mlflow_server.tracking_uri},
        env=provider_env(),
    )
    engine = LocalEngine(provider)
    base = {**databricks_emulator.config(), "mlflow:trackingUri": mlflow_server.tracking_uri}
    return engine, base, experiment_id, Servers(databricks_emulator, mlflow_server)


def gateway_policy_ids(engine: LocalEngine) -> set[str]:
    return {e.id for (t, _), e in engine.state.items() if t.endswith("GatewayBudgetPolicy")}


def test_up_noop_update_remove_team_destroy(stack, databricks_emulator, mlflow_server):
    from mlflow import MlflowClient

    engine, base, experiment_id, servers = stack
    config = {**base, "ml-budgets:teams": teams_config(experiment_id)}
    client = MlflowClient(mlflow_server.tracking_uri)
    account = databricks_emulator.account_client()

    # preview writes nothing.
    servers.mark()
    preview = engine.preview(config)
    assert preview.count("create") == 15 and engine.state == {}
    assert servers.writes() == {"databricks": 0, "mlflow": 0}

    # up creates everything. The webhook's signing key is secret config (`pulumi config set
    # --secret --path`): the engine stores the whole config in the state (the dynamic provider's),
    # where plaintext config stays plaintext.
    created = engine.up(config, secret_keys=["ml-budgets:teams"])
    assert created.summary() == {"create": 15}
    exports = created.exports["teams"]
    search_policy = exports["search"]["policy_id"]
    assert account.budget_policy.get(search_policy).policy_name == "search"
    assert exports["search"]["webhook_id"]
    assert set(exports["search"]["gateway_alert_policy_ids"]) == {"50pct", "80pct"}
    tags = client.get_experiment(experiment_id).tags
    assert tags["mlflow.workload_creation_policy_id"] == search_policy
    assert tags["ml-budgets.token_budget.max_tokens"] == "100000"
    assert tags["ml-budgets.token_budget.on_exceed"] == "warn"
    assert tags["ml-budgets.token_budget.cost_per_1k_tokens"] == "0.5"
    store_policies = {p.budget_policy_id: p for p in _gateway_policies(mlflow_server)}
    assert gateway_policy_ids(engine) <= set(store_policies)
    assert sorted(store_policies[i].budget_amount for i in gateway_policy_ids(engine)) == [
        40.0,
        40.0,
        50.0,
        80.0,
        100.0,
        100.0,
    ]  # hard stops paired with an ALERT
    # The webhook secret is kept only as a secret in state.
    assert engine.plaintext("whsec-search-7f3a") == []

    # A second up with the same config writes nothing.
    servers.mark()
    again = engine.up(config)
    assert again.summary() == {"same": 15}
    assert servers.writes() == {"databricks": 0, "mlflow": 0}

    # A config change updates in place, only what changed.
    servers.mark()
    changed = engine.up({**base, "ml-budgets:teams": teams_config(experiment_id, limit_search=200.0)})
    assert changed.count("update") == 4 and changed.count("same") == 11
    assert servers.writes() == {"databricks": 0, "mlflow": 4}
    assert sorted(
        p.budget_amount for p in _gateway_policies(mlflow_server) if p.budget_policy_id in gateway_policy_ids(engine)
    ) == [40.0, 40.0, 100.0, 160.0, 200.0, 200.0]

    # Removing a team deletes only its resources.
    recsys_policy = exports["recsys"]["policy_id"]
    search_only = {**base, "ml-budgets:teams": teams_config(experiment_id, limit_search=200.0)[:1]}
    removed = engine.up(search_only)
    assert removed.count("delete") == 4 and removed.count("same") == 11
    assert account.budget_policy.get(search_policy).policy_name == "search"
    assert recsys_policy not in {p.policy_id for p in account.budget_policy.list()}

    # refresh after no outside change: nothing changed.
    refreshed = engine.refresh()
    assert refreshed.summary() == {"refresh-same": 11}

    # destroy leaves nothing behind.
    remaining_gateway = gateway_policy_ids(engine)
    webhook_id = exports["search"]["webhook_id"]
    engine.destroy()
    assert engine.state == {}
    assert search_policy not in {p.policy_id for p in account.budget_policy.list()}
    assert not remaining_gateway & {p.budget_policy_id for p in _gateway_policies(mlflow_server)}
    assert webhook_id not in {w.webhook_id for w in client.list_webhooks()}
    tags = client.get_experiment(experiment_id).tags
    assert "mlflow.workload_creation_policy_id" not in tags and "ml-budgets.token_budget.max_tokens" not in tags
    assert not {"ml-budgets.token_budget.on_exceed", "ml-budgets.token_budget.cost_per_1k_tokens"} & set(tags)


def test_refresh_notices_changes_made_outside_pulumi(stack, databricks_emulator):
    engine, base, experiment_id, servers = stack
    recsys = teams_config(experiment_id)[1]
    recsys["gateway"]["webhook"] = {"url": "https://hooks.slack.com/services/T0/B0/recsys"}  # hears its hard stop
    config = {**base, "ml-budgets:teams": [recsys]}
    exports = engine.up(config).exports["teams"]
    account = databricks_emulator.account_client()
    from databricks.sdk.service.billing import BudgetPolicy

    policy_id = exports["recsys"]["policy_id"]
    account.budget_policy.update(policy_id, BudgetPolicy(policy_id=policy_id, policy_name="renamed-by-hand"))
    refreshed = engine.refresh()
    assert refreshed.count("refresh-changed") == 1
    servers.mark()
    restored = engine.up(config)
    assert restored.summary() == {"update": 1, "same": 4}
    assert account.budget_policy.get(policy_id).policy_name == "recsys"
    engine.destroy()


def test_bad_stack_config_fails_before_any_resource_is_created(stack):
    engine, base, experiment_id, servers = stack
    bad = teams_config(experiment_id)
    bad[1]["gateway"]["scope"] = "ENDPOINT"  # no target
    servers.mark()
    with pytest.raises(StackConfigError) as error:
        engine.up({**base, "ml-budgets:teams": bad})
    assert "ml-budgets:teams[1].gateway.target" in str(error.value)
    assert engine.state == {}
    assert servers.writes() == {"databricks": 0, "mlflow": 0}


def _gateway_policies(mlflow_server):
    from mlflow.tracking._tracking_service.utils import _get_store

    return list(_get_store(mlflow_server.tracking_uri).list_budget_policies())


def test_the_shipped_local_stack_goes_up_and_down_offline(
    databricks_emulator_factory, provider_server_factory, tmp_path
):
    """Pulumi.local.yaml as users get it; only the emulator's port and the sqlite file differ."""
    import yaml

    from harness.provider_server import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.local.yaml").read_text())["config"]
    emulator = databricks_emulator_factory(account_id=config["databricks:accountId"])
    config["databricks:host"] = emulator.url
    config["mlflow:trackingUri"] = f"sqlite:///{tmp_path / 'mlflow-local.db'}"
    provider_config = {k: v for k, v in config.items() if not k.startswith("ml-budgets:")}
    engine = LocalEngine(provider_server_factory(config=provider_config, env=provider_env()))

    created = engine.up(config)
    # Pulumi.local.yaml's search team: its evaluation block writes three tags on experiment "0".
    assert created.count("create") == 17, created.summary()
    search = created.exports["teams"]["search"]
    assert search["policy_id"]
    assert search["budget_id"] and search["databricks_gateway_budget_id"]
    assert created.exports["gateway_budgets"]["global-cap"]["webhook_id"]
    # MLflow posts the search team's alerts to its relay route, naming its own policies.
    from mlflow.tracking._model_registry.utils import _get_store

    hook = _get_store(config["mlflow:trackingUri"]).get_webhook(search["webhook_id"])
    expected = "http://127.0.0.1:8486/mlflow/search?" + "&".join(
        [f"policy={search['gateway_alert_policy_ids'][t]}" for t in ("50pct", "80pct")]
        + [f"hard_stop={search['gateway_hard_stop_alert_policy_id']}"]
    )
    assert hook.url == expected
    assert engine.up(config).summary() == {"same": 17}
    assert engine.refresh().summary() == {"refresh-same": 17}
    engine.destroy()
    assert list(emulator.account_client().budget_policy.list()) == []
    assert list(emulator.account_client().budgets.list()) == []
