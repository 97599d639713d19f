"""GET requests to an ``http(s)://`` MLflow tracking server with ``requests`` alone.

``import mlflow`` costs over a second (pandas included) for two GET requests; this module sends
them itself, with MLflow's client conventions (``mlflow.utils.credentials`` and
``mlflow.utils.rest_utils.http_request``):

* Basic auth from ``user:password@`` in the URI, else ``MLFLOW_TRACKING_USERNAME`` /
  ``MLFLOW_TRACKING_PASSWORD``, else ``~/.mlflow/credentials``; otherwise a bearer token from
  stack config ``mlflow:trackingToken``, else ``MLFLOW_TRACKING_TOKEN`` (Basic wins, as in MLflow);
* TLS: ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``,
  ``MLFLOW_TRACKING_CLIENT_CERT_PATH``; ``MLFLOW_WORKSPACE`` as the ``X-MLFLOW-WORKSPACE`` header;
  ``MLFLOW_HTTP_REQUEST_TIMEOUT``; 429/5xx retried with back-off, honouring ``Retry-After``.

Auth this module does not speak (``MLFLOW_TRACKING_AUTH`` plugins, ``MLFLOW_TRACKING_AWS_SIGV4``)
is left to MLflow's own client: ``speaks_for`` says which.
"""

from __future__ import annotations

import base64
import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
DEFAULT_TIMEOUT_SECONDS = 60
RETRIES = 3
_MLFLOW_ONLY_AUTH = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4")


class MlflowRestError(Exception):
    """A request failed: unreachable, or an answer other than 200 (MLflow's message kept)."""


@dataclass
class Credentials:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def header(self) -> str | None:
        if self.username and self.password:
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.standard_b64encode(raw).decode()
        return f"Bearer {self.token}" if self.token else None

    def secrets(self) -> list[str]:
        """Every credential value, and the header value it travels in, for masking."""
        header = self.header()
        values = [self.password, self.token, header, header.split(" ", 1)[1] if header else None]
        return [value for value in values if value]


def speaks_for(uri: str) -> bool:
    """Whether this module can talk to ``uri`` the way MLflow's client would."""
    if urlsplit(uri).scheme not in ("http", "https"):
        return False
    return not any(_env_true_or_set(name) for name in _MLFLOW_ONLY_AUTH)


def _env_true_or_set(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return bool(value) and value not in ("false", "0")


def credentials(uri: str, config_token: str | None) -> Credentials:
    parts = urlsplit(uri)
    username: str | None
    password: str | None
    if parts.username:
        username, password = unquote(parts.username), unquote(parts.password or "")
    else:
        file_username, file_password = _credentials_file()
        username = os.environ.get("MLFLOW_TRACKING_USERNAME") or file_username
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or file_password
    return Credentials(username, password, config_token or os.environ.get("MLFLOW_TRACKING_TOKEN") or None)


def _credentials_file() -> tuple[str | None, str | None]:
    path = Path("~/.mlflow/credentials").expanduser()
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except (configparser.Error, UnicodeDecodeError):
        return None, None
    if "mlflow" not in parser:
        return None, None
    section = parser["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


class MlflowRest:
    """A session to one tracking server; ``get`` answers the JSON body of a 200."""

    def __init__(self, uri: str, creds: Credentials) -> None:
        parts = urlsplit(uri)
        self.base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"
        self.session = requests.Session()
        retry = Retry(
            total=RETRIES,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        if header := creds.header():
            self.session.headers["Authorization"] = header
        if workspace := os.environ.get("MLFLOW_WORKSPACE", "").strip():
            self.session.headers[WORKSPACE_HEADER] = workspace
        self.session.verify = _verify()
        if client_cert := os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            self.session.cert = client_cert
        self.timeout = _timeout()

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.session.get(self.base + path, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise MlflowRestError(f"{type(error).__name__}: {error}") from None
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        if response.status_code != 200:
            message = body.get("message") if isinstance(body, dict) else None
            code = body.get("error_code") if isinstance(body, dict) else None
            detail = f"{code}: {message}" if code and message else str(message or response.text)
            raise MlflowRestError(f"HTTP {response.status_code} {detail}")
        if not isinstance(body, dict):
            raise MlflowRestError("the answer is not a JSON object: is this an MLflow tracking server?")
        return body

    def close(self) -> None:
        self.session.close()


def _verify() -> bool | str:
    if cert_path := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        return cert_path
    return not _env_true_or_set("MLFLOW_TRACKING_INSECURE_TLS")


def _timeout() -> float:
    try:
        return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS
