"""What the MLflow providers share: where the tracking server is, how to reach it, its errors.

The tracking server comes from stack config ``mlflow:trackingUri``, else ``MLFLOW_TRACKING_URI``.
``http(s)://`` servers, ``databricks`` and SQL stores (``sqlite:///…``) all work.  Credentials are
never stored: MLflow's own auth env vars (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME`` /
``_PASSWORD``, ``DATABRICKS_TOKEN``, …) are read by MLflow at call time, a config secret
``mlflow:trackingToken`` and ``user:password@`` in an http(s) URI are turned into request
credentials in memory, and what a resource records (``tracking_uri``) is the URI without them.

mlflow is imported only inside functions: a Pulumi program that merely declares resources must
not pay ~1.3 s and 170 MB for it.  Everything here runs in the provider server process.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from pulumi.dynamic import ResourceProvider

from providers._base import BuiltOnce, Failures, ProviderError, api_error, config_value
from providers._credentials import mask_secrets, public_uri

if TYPE_CHECKING:
    from mlflow.store.model_registry.abstract_store import AbstractStore as RegistryStore
    from mlflow.store.tracking.abstract_store import AbstractStore as TrackingStore
    from mlflow.utils.rest_utils import MlflowHostCreds
    from pulumi.dynamic.dynamic import ConfigureRequest

Store = TypeVar("Store", "TrackingStore", "RegistryStore")

TRACKING_URI_CONFIG = "mlflow:trackingUri"
TRACKING_TOKEN_CONFIG = "mlflow:trackingToken"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


class MlflowProviderError(ProviderError):
    """An MLflow provider's error (the shape of every provider error: see ``providers._base``)."""


@dataclass(frozen=True)
class TrackingServer:
    """A tracking server as configured. ``uri`` and ``token`` may hold credentials: never output."""

    uri: str
    token: str | None = field(default=None, repr=False)

    @property
    def public_uri(self) -> str:
        return public_tracking_uri(self.uri)

    @property
    def is_http(self) -> bool:
        return urlsplit(self.uri).scheme in ("http", "https")


PERCENT_ENCODE_HINT = (
    "percent-encode '#', '/', '?' and '@' in the user name and password (e.g. '#' as %23, '/' as %2F, '@' as %40)"
)


def tracking_uri_failure(uri: str) -> str | None:
    """Why ``uri`` cannot be split safely into server and credentials, or None.

    In ``http://u:hunter#2@host/`` the ``#`` ends the host part: the URI would be read as host
    ``u`` and the password's tail as a fragment.  Such a URI is refused rather than guessed at.
    """
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError for a non-numeric port)
    except ValueError:
        if "@" in uri:
            return f"cannot be parsed: {PERCENT_ENCODE_HINT}"
        return "is not a valid URI"
    authority_end = uri.find(parts.netloc, len(parts.scheme)) + len(parts.netloc) if parts.netloc else 0
    if parts.netloc and "@" not in parts.netloc and "@" in uri[authority_end:]:
        return f"has an '@' after the host, so its user name or password is cut short: {PERCENT_ENCODE_HINT}"
    return None


def public_tracking_uri(uri: str) -> str:
    """``uri`` without credentials, found by meaning (``providers._credentials.public_uri``): no
    user info, no credential anywhere in the query, even percent-encoded inside another
    parameter's value (an ODBC connection string's ``PWD``); for http(s), no query at all and
    no trailing slash."""
    if tracking_uri_failure(uri):
        return f"{uri.partition(':')[0]}://(unparsable URI)"
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host.lower(), parts.path.rstrip("/"), "", ""))
    return public_uri(uri)[0]


def comparable_tracking_uri(name: str, value: Any) -> Any:
    """``diff_result`` normalizer: a ``tracking_uri`` recorded before credentials were stripped from
    every scheme names the same server as its stripped form (no replace on upgrade)."""
    if name == "tracking_uri" and isinstance(value, str):
        return public_tracking_uri(value)
    return value


def tracking_server_from_config(config: Any) -> TrackingServer | None:
    uri = config_value(config, TRACKING_URI_CONFIG) or os.environ.get(TRACKING_URI_ENV) or None
    if uri is None:
        return None
    return TrackingServer(uri=uri.strip(), token=config_value(config, TRACKING_TOKEN_CONFIG))


class MlflowProvider(ResourceProvider):
    """Base of the MLflow providers: learns the tracking server in ``configure()``.

    ``configure`` runs only in the provider server process, after the provider was unpickled, so
    the pickled provider never holds the server's address or credentials.
    """

    def configure(self, req: ConfigureRequest) -> None:
        self._server = tracking_server_from_config(req.config)

    def configured_server(self) -> TrackingServer:
        server = getattr(self, "_server", None) or tracking_server_from_config(None)
        if server is None:
            raise MlflowProviderError(
                "No MLflow tracking server: run `pulumi config set mlflow:trackingUri <uri>` or set MLFLOW_TRACKING_URI"
            )
        reason = tracking_uri_failure(server.uri)
        if reason:
            raise MlflowProviderError(f"The MLflow tracking URI {reason}")
        return server

    def configured_public_uri(self) -> str | None:
        server = getattr(self, "_server", None) or tracking_server_from_config(None)
        return server.public_uri if server else None

    def record_tracking_uri(self, inputs: dict[str, Any], failures: Failures) -> None:
        """Check-time: record where the resource will live; moving it elsewhere replaces it."""
        inputs["tracking_uri"] = self.configured_public_uri()
        server = getattr(self, "_server", None) or tracking_server_from_config(None)
        if server is None:
            failures.add(
                "tracking_uri",
                "no MLflow tracking server: set stack config mlflow:trackingUri or MLFLOW_TRACKING_URI",
            )
        elif reason := tracking_uri_failure(server.uri):
            failures.add(
                "tracking_uri", f"the MLflow tracking URI (mlflow:trackingUri or MLFLOW_TRACKING_URI) {reason}"
            )

    def server_for(self, recorded_uri: str | None) -> TrackingServer:
        """The server a resource lives on (its recorded ``tracking_uri``).

        The configured credentials go only to the configured server; a resource recorded on
        another server (being replaced away from it) is reached with MLflow's env credentials.
        """
        configured = getattr(self, "_server", None) or tracking_server_from_config(None)
        if recorded_uri and (configured is None or configured.public_uri != public_tracking_uri(recorded_uri)):
            return TrackingServer(uri=recorded_uri)
        return self.configured_server()


# --- stores ------------------------------------------------------------------------------------

_stores: BuiltOnce[tuple[str, str, str | None], Any] = BuiltOnce()


def tracking_store(server: TrackingServer) -> TrackingStore:
    """The MLflow tracking store (experiments, AI Gateway) of ``server``, cached per process.

    Creating a SQL store runs schema migrations (seconds), and the provider server calls us up to
    4 at a time, so stores are built once per server under a lock.
    """
    return _cached_store("tracking", server, _build_tracking_store)


def registry_store(server: TrackingServer) -> RegistryStore:
    """The MLflow model registry store (webhooks) of ``server``, cached per process."""
    return _cached_store("registry", server, _build_registry_store)


def _cached_store(kind: str, server: TrackingServer, build: Callable[[TrackingServer], Store]) -> Store:
    def open_store() -> Store:
        try:
            return build(server)
        except Exception as error:  # noqa: BLE001 (any failure: bad URI, driver, migration)
            raise_mlflow_error(
                "open",
                f"MLflow {kind} store",
                server.public_uri,
                server,
                error,
                hint="Check the tracking URI and that the MLflow server or database is reachable.",
            )

    store: Store = _stores.get((kind, server.uri, server.token), open_store)
    return store


# MLflow's SQL store logs a failed statement (``_logger.exception`` in mlflow.store.db.utils)
# with its parameters: a webhook's URL and encrypted secret.  The provider's stderr reaches
# `pulumi up` output and CI logs, and the error itself is reported, masked, by raise_mlflow_error.
_STORE_LOGGERS = ("mlflow.store", "sqlalchemy", "alembic")


def _quiet_store_loggers() -> None:
    for name in _STORE_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _build_tracking_store(server: TrackingServer) -> TrackingStore:
    _quiet_store_loggers()
    if server.is_http:
        from mlflow.store.tracking.rest_store import RestStore

        return RestStore(functools.partial(_host_creds, server))
    from mlflow.tracking._tracking_service.utils import _get_store

    store: TrackingStore = _get_store(server.uri)  # unannotated in mlflow
    return store


def _build_registry_store(server: TrackingServer) -> RegistryStore:
    _quiet_store_loggers()
    if server.is_http:
        from mlflow.store.model_registry.rest_store import RestStore

        return RestStore(functools.partial(_host_creds, server))
    from mlflow.tracking._model_registry.utils import _get_store

    store: RegistryStore = _get_store(server.uri)  # unannotated in mlflow
    return store


def _host_creds(server: TrackingServer) -> MlflowHostCreds:
    """MLflow's credentials from env (read per request, as MLflow does), plus ours in memory."""
    from mlflow.utils.credentials import get_default_host_creds

    creds: MlflowHostCreds = get_default_host_creds(server.public_uri)  # unannotated in mlflow
    parts = urlsplit(server.uri)
    if parts.username:
        creds.username = unquote(parts.username)
        creds.password = unquote(parts.password or "")
    if server.token:
        creds.token = server.token
    return creds


# --- errors ------------------------------------------------------------------------------------


def error_code(error: BaseException) -> str | None:
    return getattr(error, "error_code", None)


def is_not_found(error: BaseException) -> bool:
    return error_code(error) == NOT_FOUND


_HINTS = {
    NOT_FOUND: "It was deleted outside Pulumi: run `pulumi refresh`, then `pulumi up` to recreate it.",
    "PERMISSION_DENIED": "Use MLflow credentials allowed to do this (mlflow:trackingToken or MLflow's auth env vars).",
    "UNAUTHENTICATED": "Set MLflow credentials: mlflow:trackingToken or MLflow's auth env vars.",
}
_DEFAULT_HINT = "Check the MLflow server and run `pulumi up` again."


def raise_mlflow_error(
    verb: str,
    thing: str,
    name: Any,
    server: TrackingServer,
    error: BaseException,
    hint: str = "",
    redact: Iterable[str | None] = (),
) -> NoReturn:
    """Raise ``Unable to <verb> <thing> '<name>' on <server>: <MLflow's message>. <hint>``.

    Secrets in ``redact`` and the server's credentials are masked; ``from None`` keeps MLflow's
    own exception (which may quote URLs or request bodies) out of the traceback the engine gets.
    """
    reason = mask_credentials(str(getattr(error, "message", None) or error), server, redact)
    hint = hint or _HINTS.get(error_code(error) or "", _DEFAULT_HINT)
    where = f"on {server.public_uri}"
    raise api_error(verb, thing, name, reason, hint, where, error_class=MlflowProviderError) from None


def mask_credentials(text: str, server: TrackingServer, redact: Iterable[str | None] = ()) -> str:
    """``text`` with the server's credentials and ``redact`` masked (``mask_secrets``: the one
    masking path of every provider), and without SQL statements and their parameters (a failed
    INSERT quotes every value it tried to write)."""
    text = _SQL_DETAILS.split(text, maxsplit=1)[0]
    return mask_secrets(text, [*redact, *_credentials_of(server)])


_SQL_DETAILS = re.compile(r"\[SQL: |\[parameters: |\(Background on this error at")


def _credentials_of(server: TrackingServer) -> list[str | None]:
    try:
        return [server.token, *public_uri(server.uri)[1]]
    except ValueError:  # an unparsable URI: refused before use, masked by meaning meanwhile
        return [server.token]
