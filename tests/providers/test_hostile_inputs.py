"""Hostile and careless inputs, through the SDK's provider server: refused at check (preview), with
short messages, before any API call; and what a deleted webhook leaves behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from harness.deployment import Deployment
from harness.mlflow_server import TEST_FERNET_KEY, MlflowServer, gateway_env, provider_env
from harness.provider_server import ProviderError
from harness.pulumi_program import run_program
from providers import (
    BudgetAlertWebhook,
    BudgetPolicyGrants,
    ExperimentPolicyTag,
    GatewayBudgetPolicy,
    ServerlessBudgetPolicy,
)

POLICY_ID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
LONG = "x" * 500  # a bad value is quoted in at most ~80 characters


@pytest.fixture(scope="module")
def databricks_checker():
    from harness.provider_server import ProviderServer

    with ProviderServer(config={"databricks:host": "http://127.0.0.1:9", "databricks:accountId": "a"}) as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_checker(tmp_path_factory):
    from harness.provider_server import ProviderServer

    uri = f"sqlite:///{tmp_path_factory.mktemp('hostile')}/never-opened.db"  # check opens no store
    with ProviderServer(config={"mlflow:trackingUri": uri}, env=provider_env()) as server:
        yield server


def failures_of(provider, resource_class, **kwargs) -> list[tuple[str, str]]:
    return Deployment(provider, resource_class).check(**kwargs).failures


@pytest.mark.parametrize("workspace_id", ["²", "١٢٣", "12³"])
def test_workspace_ids_are_ascii_digits_only(databricks_checker, workspace_id):
    failures = failures_of(
        databricks_checker, ServerlessBudgetPolicy, policy_name="p", binding_workspace_ids=[workspace_id]
    )
    assert [prop for prop, _ in failures] == ["binding_workspace_ids"]
    assert "ASCII digits" in failures[0][1]


CONTROL_CHARACTERS = ["\n", "\x00", "\x1b[31m", "\r", "\x7f", "\u0085"]


@pytest.mark.parametrize("control", CONTROL_CHARACTERS)
@pytest.mark.parametrize(
    "resource_class, prop, kwargs",
    [
        (ServerlessBudgetPolicy, "policy_name", lambda bad: dict(policy_name=bad)),
        (ServerlessBudgetPolicy, "custom_tags", lambda bad: dict(policy_name="p", custom_tags={bad: "v"})),
        (ServerlessBudgetPolicy, "custom_tags", lambda bad: dict(policy_name="p", custom_tags={"team": bad})),
        (BudgetPolicyGrants, "users", lambda bad: dict(policy_id=POLICY_ID, users=[f"groups/{bad}"])),
        (BudgetPolicyGrants, "managers", lambda bad: dict(policy_id=POLICY_ID, managers=[f"users/{bad}@corp.com"])),
    ],
)
def test_control_characters_are_refused_in_databricks_names(databricks_checker, control, resource_class, prop, kwargs):
    failures = failures_of(databricks_checker, resource_class, **kwargs(f"team{control}{LONG}"))
    assert {p for p, _ in failures} == {prop}
    assert any("control characters" in reason for _, reason in failures)
    assert all(LONG[:100] not in reason and len(reason) < 250 for _, reason in failures)


@pytest.mark.parametrize("control", CONTROL_CHARACTERS)
@pytest.mark.parametrize(
    "resource_class, prop, kwargs",
    [
        (BudgetAlertWebhook, "webhook_name", lambda bad: dict(webhook_name=bad, url="https://h.example.com/x")),
        (ExperimentPolicyTag, "policy_id", lambda bad: dict(experiment="1", policy_id=bad)),
        (ExperimentPolicyTag, "experiment", lambda bad: dict(experiment=bad, policy_id="p")),
        (
            GatewayBudgetPolicy,
            "target",
            lambda bad: dict(amount_usd=5, window="daily", action="ALERT", scope="ENDPOINT", target=bad),
        ),
    ],
)
def test_control_characters_are_refused_in_mlflow_names(mlflow_checker, control, resource_class, prop, kwargs):
    failures = failures_of(mlflow_checker, resource_class, **kwargs(f"name{control}{LONG}"))
    assert {p for p, _ in failures} == {prop}
    assert any("control characters" in reason for _, reason in failures)
    assert all(LONG[:100] not in reason and len(reason) < 250 for _, reason in failures)


@pytest.mark.parametrize("key", ["mlflow.note.content", "mlflow.runName", "mlflow.experimentType"])
def test_experiment_policy_tag_refuses_mlflows_reserved_keys(mlflow_checker, key):
    failures = failures_of(mlflow_checker, ExperimentPolicyTag, experiment="1", policy_id="p", key=key)
    assert [p for p, _ in failures] == ["key"] and "reserved by MLflow" in failures[0][1]


@pytest.mark.parametrize("key", [None, "mlflow.workload_creation_policy_id", "ml-budgets.token_budget.max_tokens"])
def test_experiment_policy_tag_keeps_the_keys_it_owns(mlflow_checker, key):
    kwargs = {} if key is None else {"key": key}
    assert failures_of(mlflow_checker, ExperimentPolicyTag, experiment="1", policy_id="p", **kwargs) == []


def test_a_plain_string_webhook_url_is_a_secret():
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import _sync_await

    declared = {}

    def program():
        declared["hook"] = BudgetAlertWebhook(
            "hook", webhook_name="alerts", url="https://hooks.slack.com/services/T/B/x"
        )

    inputs = run_program(program).registrations[-1].inputs
    assert rpc.is_rpc_secret(inputs["url"])
    assert _sync_await(declared["hook"].url.is_secret())


# --- a local http:// receiver ------------------------------------------------------------------


def test_a_sqlite_store_names_the_settings_a_local_receiver_needs_at_check(
    sqlite_tracking_uri, provider_server_factory
):
    strict = {k: v for k, v in provider_env().items() if not k.startswith("MLFLOW_WEBHOOK_ALLOW")}
    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=strict)
    failures = failures_of(provider, BudgetAlertWebhook, webhook_name="local", url="http://127.0.0.1:8485/alerts")
    assert [p for p, _ in failures] == ["url"]
    assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES" in failures[0][1] and "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" in failures[0][1]
    assert "127.0.0.1" in failures[0][1]


class StrictMlflowServer(MlflowServer):
    """An mlflow server with MLflow's default webhook rules: https and public hosts only."""

    @property
    def env(self) -> dict[str, str]:
        return {k: v for k, v in gateway_env(self.fernet_key).items() if not k.startswith("MLFLOW_WEBHOOK_ALLOW")}


def test_a_server_that_refuses_a_local_receiver_is_named_at_create(tmp_path, provider_server_factory, monkeypatch):
    for name in ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"):
        monkeypatch.delenv(name, raising=False)
    server = StrictMlflowServer(tmp_path / "strict").start()
    try:
        provider = provider_server_factory(config={"mlflow:trackingUri": server.url}, env=provider_env())
        deployment = Deployment(provider, BudgetAlertWebhook)
        assert deployment.check(webhook_name="local", url="http://127.0.0.1:8485/alerts/tok-123").failures == []
        with pytest.raises(ProviderError) as error:
            deployment.up(webhook_name="local", url="http://127.0.0.1:8485/alerts/tok-123")
    finally:
        server.stop()
    message = error.value.message
    assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https" in message and "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true" in message
    assert "tok-123" not in error.value.details


# --- what a deleted webhook leaves behind -------------------------------------------------------


def database_of(backend) -> Path:
    return backend.server.db_path if backend.server else Path(backend.tracking_uri.removeprefix("sqlite:///"))


def test_a_deleted_webhook_keeps_neither_its_url_token_nor_its_secret(mlflow_backend):
    token, secret = "xoxb-url-token-5678", "whsec-deleted-secret-1234"
    deployment = Deployment(mlflow_backend.provider, BudgetAlertWebhook)
    deployment.up(webhook_name="soon-gone", url=f"http://127.0.0.1:9/services/{token}?t={token}", secret=secret)
    webhook_id = deployment.id
    deployment.destroy()

    with sqlite3.connect(database_of(mlflow_backend)) as connection:
        url, stored_secret, deleted = connection.execute(
            "SELECT url, secret, deleted_timestamp FROM webhooks WHERE webhook_id = ?", (webhook_id,)
        ).fetchone()
    assert deleted is not None, "MLflow deletes softly: the row stays"
    assert token not in url
    assert secret not in (Fernet(TEST_FERNET_KEY).decrypt(stored_secret.encode()).decode() if stored_secret else "")


def test_a_deleted_webhook_keeps_no_token_from_its_host_name(mlflow_backend):
    """A receiver may carry its token in the host name (https://<token>.hooks.example/…): the
    soft-deleted row keeps neither the name nor the path (issue 23)."""
    token = "tok4host9876"
    deployment = Deployment(mlflow_backend.provider, BudgetAlertWebhook)
    deployment.up(webhook_name="host-token", url=f"http://{token}.localhost:9/hook", secret="whsec-host-token-1")
    webhook_id = deployment.id
    deployment.destroy()

    with sqlite3.connect(database_of(mlflow_backend)) as connection:
        (url,) = connection.execute("SELECT url FROM webhooks WHERE webhook_id = ?", (webhook_id,)).fetchone()
    assert token not in url and url.endswith("/deleted-by-pulumi")
