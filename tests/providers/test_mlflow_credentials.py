"""Tracking-server credentials: used on the wire, never in state, outputs or the provider.

A recording proxy sits in front of the real ``mlflow server`` so the tests see which
``Authorization`` header each request carried.
"""

from __future__ import annotations

import base64

import dill
import pytest

from harness.deployment import Deployment, declare
from harness.http_proxy import RecordingProxy
from harness.mlflow_server import provider_env
from harness.provider_server import ProviderError, ProviderServer
from providers import BudgetAlertWebhook, ExperimentPolicyTag, GatewayBudgetPolicy
from providers._mlflow import MlflowProviderError, TrackingServer, public_tracking_uri, raise_mlflow_error

TOKEN = "tok-config-secret-0123456789"
ENV_TOKEN = "tok-env-secret-9876543210"
PASSWORD = "pw-in-the-uri-secret"
WEBHOOK_SECRET = "whsec-never-in-outputs"


@pytest.mark.parametrize(
    "uri, public",
    [
        ("http://alice:pw@mlflow.corp:5000/", "http://mlflow.corp:5000"),
        ("https://MLflow.Corp/prefix/?token=abc#x", "https://mlflow.corp/prefix"),
        ("postgresql://user:pw@db.corp:5432/mlflow", "postgresql://db.corp:5432/mlflow"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("databricks", "databricks"),
        ("databricks://my-profile", "databricks://my-profile"),
    ],
)
def test_public_tracking_uri_has_no_credentials(uri, public):
    assert public_tracking_uri(uri) == public


def test_errors_mask_credentials_and_stay_on_one_line():
    server = TrackingServer(uri=f"http://alice:{PASSWORD}@mlflow.corp", token=TOKEN)
    error = RuntimeError(f"401 for http://alice:{PASSWORD}@mlflow.corp\nbearer {TOKEN}")
    with pytest.raises(MlflowProviderError) as raised:
        raise_mlflow_error("read", "budget policy", "bp-1", server, error)
    message = str(raised.value)
    assert PASSWORD not in message and TOKEN not in message and "\n" not in message
    assert message.startswith(
        "Unable to read budget policy 'bp-1' on http://mlflow.corp: 401 for http://alice:***@mlflow.corp bearer ***."
    )
    assert message.endswith(". Check the MLflow server and run `pulumi up` again.")


def test_serialized_providers_are_references_without_state():
    for resource_class, kwargs in (
        (GatewayBudgetPolicy, dict(amount_usd=5, window="daily", action="ALERT")),
        (BudgetAlertWebhook, dict(webhook_name="w", url="https://h.example.com/x", secret=WEBHOOK_SECRET)),
        (ExperimentPolicyTag, dict(experiment="1", policy_id="p")),
    ):
        provider_string = declare(resource_class, **kwargs)["__provider"]
        raw = base64.b64decode(provider_string)
        assert len(raw) < 200, "pickled by reference, not by value"
        assert WEBHOOK_SECRET.encode() not in raw
        provider = dill.loads(raw)
        assert vars(provider) == {}, "no configuration or credentials on the pickled provider"


# --- on the wire -------------------------------------------------------------------------------


@pytest.fixture
def proxy(mlflow_server):
    recording = RecordingProxy(mlflow_server.url)
    yield recording
    recording.close()


def all_text(*values) -> str:
    return repr(values)


def run_lifecycle(provider: ProviderServer) -> tuple[list, list]:
    """Create, refresh and delete one budget and one webhook: (checked inputs, everything else).

    Checked inputs hold the webhook secret (as the state's inputs do, encrypted by the engine);
    the outputs and the inputs read back by refresh must not.
    """
    checked, returned = [], []
    for resource_class, kwargs in (
        (GatewayBudgetPolicy, dict(amount_usd=100_000, window="daily", action="ALERT")),
        (BudgetAlertWebhook, dict(webhook_name="creds", url="http://127.0.0.1:9/h", secret=WEBHOOK_SECRET)),
    ):
        deployment = Deployment(provider, resource_class)
        checked.append(deployment.check(**kwargs).inputs)
        deployment.up(**kwargs)
        returned.append(deployment.outputs)
        read = deployment.refresh()
        returned.extend([read.outs, read.inputs])
        deployment.destroy()
    return checked, returned


def test_config_token_is_sent_and_never_stored(proxy, provider_server_factory):
    provider = provider_server_factory(
        config={"mlflow:trackingUri": proxy.url, "mlflow:trackingToken": TOKEN}, env=provider_env()
    )
    checked, returned = run_lifecycle(provider)
    assert proxy.authorizations and set(proxy.authorizations) == {f"Bearer {TOKEN}"}
    assert TOKEN not in all_text(checked, returned)
    assert WEBHOOK_SECRET not in all_text(returned)
    assert {props.get("tracking_uri") for props in checked + returned} == {proxy.url}


def test_user_info_in_the_uri_becomes_basic_auth(proxy, provider_server_factory):
    uri = proxy.url.replace("http://", f"http://alice:{PASSWORD}@")
    provider = provider_server_factory(config={"mlflow:trackingUri": uri}, env=provider_env())
    checked, returned = run_lifecycle(provider)
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert set(proxy.authorizations) == {basic}
    assert PASSWORD not in all_text(checked, returned)
    assert {props.get("tracking_uri") for props in checked + returned} == {proxy.url}


def test_mlflow_auth_env_vars_are_honoured(proxy, provider_server_factory):
    env = {**provider_env(), "MLFLOW_TRACKING_URI": proxy.url, "MLFLOW_TRACKING_TOKEN": ENV_TOKEN}
    provider = provider_server_factory(config={}, env=env)  # URI and token from the env only
    checked, returned = run_lifecycle(provider)
    assert set(proxy.authorizations) == {f"Bearer {ENV_TOKEN}"}
    assert ENV_TOKEN not in all_text(checked, returned)


def test_provider_errors_name_the_server_without_credentials(proxy, provider_server_factory):
    uri = proxy.url.replace("http://", f"http://alice:{PASSWORD}@")
    provider = provider_server_factory(
        config={"mlflow:trackingUri": uri, "mlflow:trackingToken": TOKEN}, env=provider_env()
    )
    deployment = Deployment(provider, GatewayBudgetPolicy)
    with pytest.raises(ProviderError) as error:
        deployment.up(amount_usd=5, window="daily", action="REJECT", scope="ENDPOINT", target="nowhere")
    assert proxy.url in error.value.message
    assert PASSWORD not in error.value.details and TOKEN not in error.value.details
