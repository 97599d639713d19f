"""Secrets that hostile or careless inputs could leak into state, messages or provider logs."""

from __future__ import annotations

import base64
import sqlite3

import pytest

from harness.deployment import Deployment
from harness.mlflow_server import provider_env
from harness.provider_server import ProviderError
from providers import BudgetAlertWebhook, GatewayBudgetPolicy
from providers._mlflow import MlflowProviderError, TrackingServer, public_tracking_uri, raise_mlflow_error

PASSWORD = "pw-s3cret-in-the-uri"
QUERY_SECRET = "q-s3cret-in-the-query"


@pytest.mark.parametrize(
    "uri, public",
    [
        (f"postgresql://u:{PASSWORD}@127.0.0.1/mlflow?password={QUERY_SECRET}", "postgresql://127.0.0.1/mlflow"),
        (
            f"postgresql://db.corp/mlflow?sslmode=require&sslpassword={QUERY_SECRET}&connect_timeout=5",
            "postgresql://db.corp/mlflow?sslmode=require&connect_timeout=5",
        ),
        (f"mysql+pymysql://db.corp/mlflow?access_token={QUERY_SECRET}", "mysql+pymysql://db.corp/mlflow"),
        (f"sqlite:////tmp/mlflow.db?secret_key={QUERY_SECRET}&timeout=5", "sqlite:////tmp/mlflow.db?timeout=5"),
    ],
)
def test_every_scheme_loses_user_info_and_credential_parameters(uri, public):
    assert public_tracking_uri(uri) == public


def test_check_records_a_database_uri_without_its_query_password(provider_server_factory):
    uri = f"postgresql://u:{PASSWORD}@127.0.0.1:9/mlflow?password={QUERY_SECRET}"
    provider = provider_server_factory(config={"mlflow:trackingUri": uri}, env=provider_env())
    checked = Deployment(provider, GatewayBudgetPolicy).check(amount_usd=5, window="daily", action="ALERT")
    assert checked.inputs["tracking_uri"] == "postgresql://127.0.0.1:9/mlflow"
    assert QUERY_SECRET not in repr(checked) and PASSWORD not in repr(checked)


def test_error_messages_mask_query_credentials():
    server = TrackingServer(uri=f"postgresql://db.corp/mlflow?password={QUERY_SECRET}")
    error = RuntimeError(f"could not connect with password={QUERY_SECRET} to db.corp")
    with pytest.raises(MlflowProviderError) as raised:
        raise_mlflow_error("open", "MLflow tracking store", "db.corp", server, error)
    assert QUERY_SECRET not in str(raised.value)


@pytest.mark.parametrize("password", ["hunter#2", "hun/ter2", "hun?ter2"])
def test_unencoded_delimiters_in_a_password_are_refused_at_check(provider_server_factory, password):
    uri = f"http://alice:{password}@mlflow.corp:5000/"
    provider = provider_server_factory(config={"mlflow:trackingUri": uri}, env=provider_env())
    checked = Deployment(provider, GatewayBudgetPolicy).check(amount_usd=5, window="daily", action="ALERT")
    assert checked.failed_properties() == {"tracking_uri"}
    assert "percent-encode" in str(checked.failures) and "%23" in str(checked.failures)
    assert "hun" not in repr(checked)


def test_a_percent_encoded_password_is_accepted():
    assert public_tracking_uri("http://alice:hunter%232@mlflow.corp:5000/") == "http://mlflow.corp:5000"


def test_masking_happens_before_the_message_is_cut():
    token = "tok-" + "9" * 40
    server = TrackingServer(uri="http://mlflow.corp", token=token)
    error = RuntimeError("x" * 280 + f" Bearer {token} rest of the answer")
    with pytest.raises(MlflowProviderError) as raised:
        raise_mlflow_error("read", "budget policy", "bp-1", server, error)
    assert "tok-99999" not in str(raised.value)


def test_masking_covers_the_basic_auth_header():
    server = TrackingServer(uri=f"http://alice:{PASSWORD}@mlflow.corp")
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    error = RuntimeError(f"401: request had Authorization: Basic {basic}")
    with pytest.raises(MlflowProviderError) as raised:
        raise_mlflow_error("read", "budget policy", "bp-1", server, error)
    assert basic not in str(raised.value)


def test_a_failed_insert_logs_neither_url_nor_secret(provider_server_factory, sqlite_tracking_uri, capfd):
    url_token = "xoxb-token-in-the-url-0123"
    secret = "whsec-signing-key-4567"
    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    Deployment(provider, BudgetAlertWebhook).up(webhook_name="first", url="https://hooks.example.com/1")
    database = sqlite_tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:  # the store is open: now every INSERT fails in SQL
        connection.execute("ALTER TABLE webhooks RENAME TO webhooks_elsewhere")
    deployment = Deployment(provider, BudgetAlertWebhook)
    with pytest.raises(ProviderError) as error:
        deployment.up(webhook_name="leaky", url=f"https://hooks.example.com/{url_token}", secret=secret)
    provider.close()  # flushes its stderr
    stderr = capfd.readouterr().err
    assert "no such table" in error.value.message
    assert url_token not in stderr and url_token not in error.value.details
    assert "gAAAAA" not in stderr and "gAAAAA" not in error.value.details  # a Fernet token


def test_state_recorded_with_a_query_password_is_the_same_server(provider_server_factory, sqlite_tracking_uri):
    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    deployment = Deployment(provider, GatewayBudgetPolicy)
    deployment.up(amount_usd=5, window="daily", action="ALERT")
    # What state holds for a resource recorded before credential parameters were stripped.
    deployment.outputs = {**deployment.outputs, "tracking_uri": f"{sqlite_tracking_uri}?password={QUERY_SECRET}"}
    assert deployment.diff(amount_usd=5, window="daily", action="ALERT").replaces == []
    deployment.destroy()
