"""BudgetAlertWebhook through the SDK's provider server, against SQLite and a running server."""

from __future__ import annotations

import typing

import pulumi
import pytest

from harness.deployment import Deployment, declare, type_token
from harness.mlflow_server import gateway_env, provider_env
from harness.provider_server import ProviderError
from harness.pulumi_program import run_program
from providers import BudgetAlertWebhook
from providers.budget_alert_webhook import KNOWN_EVENTS, secret_hash, secret_matches

TOKEN_URL = "http://127.0.0.1:9/services/T000/B000/xoxb-url-token"


@pytest.fixture(scope="module")
def checker(mlflow_backend):
    return mlflow_backend.provider


def check(provider, **kwargs):
    """Check as `pulumi preview` runs it, through the deployment driver."""
    return Deployment(provider, BudgetAlertWebhook).check(**kwargs)


def webhook_of(backend, webhook_id):
    return backend.registry_store().get_webhook(webhook_id)


# --- check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, prop",
    [
        ({"webhook_name": "has space"}, "webhook_name"),
        ({"webhook_name": "-leading-dash"}, "webhook_name"),
        ({"webhook_name": "x" * 64}, "webhook_name"),
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "https:///no-host"}, "url"),
        ({"url": "https://hooks.example.com/a b"}, "url"),
        ({"url": "http://127.1/x"}, "url"),
        ({"events": ["budget_policy.created"]}, "events"),
        ({"events": []}, "events"),
        ({"secret": "s" * 513}, "secret"),
        ({"active": "yes"}, "active"),
    ],
)
def test_check_rejects(checker, kwargs, prop):
    base = {"webhook_name": "budget-alerts", "url": "https://hooks.example.com/x"}
    outcome = check(checker, **{**base, **kwargs})
    assert outcome.failed_properties() == {prop}


def test_check_failures_never_quote_the_url(checker):
    outcome = check(checker, webhook_name="ok", url="ftp://user:xoxb-secret-token@hooks.example.com/x")
    assert outcome.failed_properties() == {"url"}
    assert "xoxb-secret-token" not in str(outcome.failures)


def test_check_normalizes_defaults(checker):
    inputs = check(checker, webhook_name="budget-alerts", url="https://hooks.example.com/x").inputs
    assert inputs["events"] == ["budget_policy.exceeded"]
    assert (inputs["description"], inputs["active"], inputs.get("secret")) == ("", True, None)
    both = check(
        checker,
        webhook_name="b",
        url="https://h.example.com/x",
        events=["prompt.created", "budget_policy.exceeded", "prompt.created"],
    ).inputs
    assert both["events"] == ["budget_policy.exceeded", "prompt.created"]


def test_known_events_match_the_installed_mlflow():
    from mlflow.entities.webhook import WebhookEventStr

    assert set(KNOWN_EVENTS) == set(typing.get_args(WebhookEventStr))


def test_secret_hash_is_salted_and_verifiable():
    first, second = secret_hash("s3cret"), secret_hash("s3cret")
    assert first != second and "s3cret" not in first
    assert secret_matches("s3cret", first) and not secret_matches("other", first)
    assert secret_matches(None, None) and not secret_matches(None, first)


# --- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_with_a_secret(mlflow_backend, deploy):
    hook = deploy(mlflow_backend.provider, BudgetAlertWebhook)
    args = dict(webhook_name="team-alerts", url=TOKEN_URL, secret="first-secret", description="spend")
    assert hook.up(**args) == "create"
    stored = webhook_of(mlflow_backend, hook.id)
    assert (stored.name, stored.url, [str(e) for e in stored.events]) == (
        "team-alerts",
        TOKEN_URL,
        ["budget_policy.exceeded"],
    )
    assert hook.outputs["webhook_id"] == hook.id
    assert "secret" not in hook.outputs and "first-secret" not in str(hook.outputs)

    assert hook.up(**args) == "same"
    hook.refresh()
    assert hook.diff(**args).changes == "none"

    # MLflow never returns the secret; a new one still diffs, and is applied in place.
    assert hook.diff(**{**args, "secret": "second-secret"}).changes == "some"
    old_hash = hook.outputs["secret_hash"]
    assert hook.up(**{**args, "secret": "second-secret"}) == "update"
    assert hook.outputs["secret_hash"] != old_hash
    assert hook.up(**{**args, "secret": "second-secret"}) == "same"

    changed = {
        **args,
        "secret": "second-secret",
        "active": False,
        "description": "",
        "events": ["budget_policy.exceeded", "prompt.created"],
    }
    assert hook.up(**changed) == "update"
    stored = webhook_of(mlflow_backend, hook.id)
    assert stored.status.value == "DISABLED"
    assert sorted(str(e) for e in stored.events) == ["budget_policy.exceeded", "prompt.created"]
    assert not stored.description

    assert hook.destroy_and_retry().id == ""  # gone, and deleting it again is fine


def test_removing_the_secret_updates_in_place(mlflow_backend, deploy):
    hook = deploy(mlflow_backend.provider, BudgetAlertWebhook)
    args = dict(webhook_name="unsigned", url=TOKEN_URL)
    hook.up(**args, secret="to-be-removed")
    assert hook.up(**args) == "update"
    assert hook.outputs.get("secret_hash") is None
    if mlflow_backend.kind == "sqlite":  # the SQL store hands the secret back to its own process
        assert not webhook_of(mlflow_backend, hook.id).secret


def test_read_reports_drift_then_disappearance(mlflow_backend, deploy, monkeypatch):
    from mlflow.entities.webhook import WebhookStatus

    for name, value in gateway_env().items():  # a SQL store validates URLs in this process
        monkeypatch.setenv(name, value)

    hook = deploy(mlflow_backend.provider, BudgetAlertWebhook)
    args = dict(webhook_name="drifting", url=TOKEN_URL)
    hook.up(**args)
    registry = mlflow_backend.registry_store()
    registry.update_webhook(hook.id, url="http://127.0.0.1:9/elsewhere", status=WebhookStatus.DISABLED)

    read = hook.refresh()
    assert (read.outs["url"], read.outs["active"]) == ("http://127.0.0.1:9/elsewhere", False)
    assert hook.up(**args) == "update"
    assert webhook_of(mlflow_backend, hook.id).url == TOKEN_URL

    registry.delete_webhook(hook.id)
    assert hook.refresh().id == ""


def test_refusal_by_mlflow_does_not_echo_the_url(sqlite_tracking_uri, provider_server_factory, deploy):
    # With private addresses disallowed MLflow resolves the host, fails, and quotes it.
    env = {**provider_env(), "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "false"}
    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=env)
    hook = deploy(provider, BudgetAlertWebhook)
    with pytest.raises(ProviderError) as error:
        hook.up(webhook_name="refused", url="https://xoxb-leaky-token.invalid/services/T0/B0/xoxb-path")
    assert "Unable to create webhook 'refused' on sqlite:///" in error.value.message
    assert "xoxb" not in error.value.details


def test_sqlite_secret_needs_the_servers_encryption_key(sqlite_tracking_uri, provider_server_factory, monkeypatch):
    monkeypatch.delenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", raising=False)
    env = {k: v for k, v in provider_env().items() if k != "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"}
    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=env)
    # Caught by check, i.e. at `pulumi preview`, before anything is written.
    urn = provider.urn(type_token(BudgetAlertWebhook), "signed")
    checked = provider.check(urn, declare(BudgetAlertWebhook, webhook_name="signed", url=TOKEN_URL, secret="s3cret"))
    assert checked.failed_properties() == {"secret"}
    assert "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" in checked.failures[0][1]


# --- what the program and the state see --------------------------------------------------------


def test_secret_and_url_stay_pulumi_secrets_in_the_program():
    declared = {}

    def program():
        declared["hook"] = BudgetAlertWebhook(
            "hook", webhook_name="alerts", url=pulumi.Output.secret(TOKEN_URL), secret="plain-secret"
        )

    mocks = run_program(program)
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import _sync_await

    inputs = mocks.registrations[-1].inputs
    # A plain-string secret is made a Pulumi secret, so state never holds it in plaintext.
    assert rpc.is_rpc_secret(inputs["secret"]) and rpc.is_rpc_secret(inputs["url"])
    hook = declared["hook"]
    assert _sync_await(hook.url.is_secret()) and _sync_await(hook.secret.is_secret())
