"""Credentials found by what they are, not only by a parameter's name (issue 23, Providers).

A tracking URI may carry a password inside another parameter's value (an ODBC connection string
percent-encoded in ``odbc_connect``, a URL with user info, JSON); a server or a proxy may quote
the request's ``Authorization`` header in its error.  Neither may reach state or the user: one
masking path (``providers._credentials``) serves MLflow and Databricks alike.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, unquote_plus

import pytest

from harness.deployment import Deployment
from harness.mlflow_server import provider_env
from harness.provider_server import ProviderError
from providers import GatewayBudgetPolicy, ServerlessBudgetPolicy
from providers._databricks import DatabricksProviderError, databricks_errors
from providers._mlflow import MlflowProviderError, TrackingServer, public_tracking_uri, raise_mlflow_error

SECRET = "Hunter2-s3cret-value"


def odbc(connection_string: str, encode=quote_plus) -> str:
    return "mssql+pyodbc:///?odbc_connect=" + encode(connection_string, safe="")


HOSTILE_URIS = [
    # (uri, what must stay to tell servers apart)
    (odbc(f"DRIVER={{ODBC Driver 18 for SQL Server}};SERVER=db.corp;DATABASE=mlflow;UID=sa;PWD={SECRET}"), "db.corp"),
    (odbc(f"Driver={{x}};Server=db.corp;Pwd={{{SECRET};with;semicolons}};Encrypt=yes"), "db.corp"),
    (odbc(f"server=db.corp;password={SECRET}", encode=quote), "db.corp"),
    (odbc(quote(f"SERVER=db.corp;PWD={SECRET}", safe="")), "db.corp"),  # encoded twice
    (odbc(f"Server=db.corp;Authentication=SqlPassword;User ID=sa;Password = {SECRET} ;"), "db.corp"),
    (f"postgresql://db.corp/mlflow?target={quote(f'https://bob:{SECRET}@relay.corp/', safe='')}", "db.corp"),
    (f"mysql+pymysql://db.corp/mlflow?connect_args={quote(json.dumps({'password': SECRET}), safe='')}", "db.corp"),
    (f"postgresql://db.corp/mlflow?options={quote(f'-c sslpassword={SECRET}', safe='')}", "db.corp"),
    (f"mssql+pymssql://db.corp;password={SECRET}/mlflow", "db.corp"),
    (f"postgresql://{SECRET}@db.corp/mlflow", "db.corp"),  # a token as the user name
    (f"postgresql://sa:{SECRET}@db.corp/mlflow?sslmode=require", "sslmode=require"),
    (f"sqlite:////tmp/mlflow.db?uri={quote(f'file:x?key={SECRET}', safe='')}", "/tmp/mlflow.db"),
]


@pytest.mark.parametrize("uri, kept", HOSTILE_URIS)
def test_a_recorded_tracking_uri_keeps_no_credential_however_deep(uri, kept):
    public = public_tracking_uri(uri)
    assert SECRET not in public and quote(SECRET) not in public and SECRET[:8] not in public
    assert kept in public


@pytest.mark.parametrize("uri, kept", HOSTILE_URIS)
def test_an_error_quoting_the_uri_masks_the_credential(uri, kept):
    error = RuntimeError(f"cannot open {uri} (unquoted: {unquote_plus(uri)})")
    with pytest.raises(MlflowProviderError) as raised:
        raise_mlflow_error("open", "MLflow tracking store", "x", TrackingServer(uri=uri), error)
    assert SECRET not in str(raised.value) and SECRET[:8] not in str(raised.value)


def test_check_and_create_keep_the_odbc_password_out_of_state_and_the_error(provider_server_factory):
    uri = HOSTILE_URIS[0][0]
    provider = provider_server_factory(config={"mlflow:trackingUri": uri}, env=provider_env())
    deployment = Deployment(provider, GatewayBudgetPolicy)
    checked = deployment.check(amount_usd=5, window="daily", action="ALERT")
    assert "SERVER%3Ddb.corp" in checked.inputs["tracking_uri"]
    assert SECRET not in repr(checked)
    with pytest.raises(ProviderError) as error:  # no SQL Server here (nor pyodbc): the create fails
        deployment.up(amount_usd=5, window="daily", action="ALERT")
    assert "Unable to" in error.value.message
    assert SECRET not in error.value.details


# --- what a server or a proxy says back ------------------------------------------------------------

TOKEN = "proxy-echoed-credential-7f3a9c21e4b8"  # not Databricks-shaped: masked by where it stands
ECHOES = [
    f"proxy refused the request: Authorization: Bearer {TOKEN}",
    f'upstream said {{"headers": {{"Authorization": "Bearer {TOKEN}", "Accept": "*/*"}}}}',
    f"curl -H 'authorization: bearer {TOKEN}' https://accounts.example.com",
    f"bad token {TOKEN[:4]} ... Bearer {TOKEN}",
    f"login failed: password={TOKEN}; user=alice",
    f"redirected to https://alice:{TOKEN}@accounts.example.com/",
]


@pytest.mark.parametrize("echo", ECHOES)
def test_mlflow_and_databricks_mask_an_unknown_credential_alike(echo):
    """Neither path knows this token: it is masked for what it is."""
    from databricks.sdk.errors import BadRequest

    server = TrackingServer(uri="http://mlflow.corp")
    with pytest.raises(MlflowProviderError) as mlflow_error:
        raise_mlflow_error("read", "budget policy", "bp-1", server, RuntimeError(echo))
    with pytest.raises(DatabricksProviderError) as databricks_error, databricks_errors("read", "budget policy", "p-1"):
        raise BadRequest(echo)
    for message in (str(mlflow_error.value), str(databricks_error.value)):
        assert TOKEN not in message and TOKEN[8:20] not in message
        assert "***" in message


def test_a_databricks_error_quoting_the_configured_token_is_masked(databricks_emulator, provider_server_factory):
    config = databricks_emulator.config()
    token = config["databricks:token"]
    databricks_emulator.faults.error(
        "POST", "/budget-policies", status=400, error_code="INVALID_PARAMETER_VALUE", message=f"bad {token} here"
    )
    provider = provider_server_factory(config=config)
    with pytest.raises(ProviderError) as error:
        Deployment(provider, ServerlessBudgetPolicy).up(policy_name="echoed")
    assert "INVALID_PARAMETER_VALUE" in error.value.message
    assert token not in error.value.details


class EchoingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy's error page that quotes the request's headers, as some do."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        status = 404 if self.path.endswith("/.well-known/databricks-config") else 502
        authorization = self.headers.get("Authorization")
        body = f"<html><h1>Bad Gateway</h1><p>Upstream refused Authorization: {authorization}</p></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_proxy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.parametrize("resource", ["serverless", "account"])
def test_a_proxy_page_quoting_the_authorization_header_is_masked(echoing_proxy, resource):
    from harness.dead_hosts import provider_for

    provider, inputs = provider_for(resource, echoing_proxy)
    with pytest.raises(DatabricksProviderError) as error:
        provider.create(inputs)
    message = str(error.value)
    assert "HTTP 502 Bad Gateway" in message and "Upstream refused Authorization: Bearer ***" in message
    assert "dapi-bench-outage" not in message


def test_an_error_code_is_not_taken_for_a_credential_name():
    """``UNAUTHENTICATED: <message>`` names an error, not a credential: the message stays readable."""
    from providers._credentials import mask_secrets

    text = f"HTTP 401 UNAUTHENTICATED: rejected 'Bearer {TOKEN}'; X-Api-Key: {TOKEN}"
    assert mask_secrets(text) == "HTTP 401 UNAUTHENTICATED: rejected 'Bearer ***'; X-Api-Key: ***"
