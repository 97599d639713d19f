"""Connection to a Databricks account for the Databricks providers.

Settings come from stack config, in the key names pulumi-databricks uses (``databricks:host``,
``databricks:accountId``, secrets ``databricks:token``, ``databricks:clientId``,
``databricks:clientSecret``, ``databricks:profile``, ``databricks:retryTimeoutSeconds``);
whatever is not set there is left to the databricks-sdk's own resolution (``DATABRICKS_*``
environment variables, ``~/.databrickscfg`` profiles, OAuth).  They are read in the provider
server process by ``configure()`` and kept in memory only: never pickled, never an output.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pulumi.dynamic import DiffResult, ResourceProvider

from providers._base import BuiltOnce, ProviderError, api_error, config_value, mask_credentials

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.clock import Clock
    from pulumi.dynamic.dynamic import ConfigureRequest

_CONFIG_KEYS = {
    "host": "databricks:host",
    "account_id": "databricks:accountId",
    "token": "databricks:token",
    "client_id": "databricks:clientId",
    "client_secret": "databricks:clientSecret",
    "profile": "databricks:profile",
    "retry_timeout_seconds": "databricks:retryTimeoutSeconds",
    "http_timeout_seconds": "databricks:httpTimeoutSeconds",
}
_INTEGER_SETTINGS = {"retry_timeout_seconds", "http_timeout_seconds"}
# A host that accepts connections and never answers must fail in seconds, not after the SDK's
# 60 s timeout retried for 300 s (twice: the host metadata fetch, then the call): each request
# waits at most this long for an answer (databricks:httpTimeoutSeconds changes it), an attempt
# that timed out is not retried, a dropped or refused connection is retried once.  HTTP 429 and
# 503 are still retried for databricks:retryTimeoutSeconds (300 s by default).
DEFAULT_HTTP_TIMEOUT_SECONDS = 10
MAX_NO_ANSWER_RETRIES = 1
SDK_RETRY_TIMEOUT_SECONDS = 300  # the databricks-sdk's default
METADATA_PROBE_TIMEOUT_SECONDS = 5
_no_answer = threading.local()  # per thread, per operation (reset by databricks_errors)


def databricks_settings(config: Any) -> dict[str, Any]:
    """The databricks-sdk ``Config`` arguments the stack config sets (pulumi-databricks key names);
    ValueError names the key of a setting that cannot be used."""
    settings: dict[str, Any] = {}
    for setting, key in _CONFIG_KEYS.items():
        value = config_value(config, key)
        if value is None:
            continue
        if setting in _INTEGER_SETTINGS:
            if not (value.isascii() and value.isdigit()):
                raise ValueError(f"stack config {key} must be a whole number of seconds, not {value[:80]!r}")
            settings[setting] = int(value)
        else:
            settings[setting] = value
    return settings


# One client per settings in this process, shared by every Databricks provider in it
# (building one fetches the host's metadata).
_SettingsKey = tuple[tuple[str, Any], ...]
_clients: BuiltOnce[_SettingsKey, AccountClient] = BuiltOnce()


def _new_client(settings: dict[str, Any]) -> AccountClient:
    from databricks.sdk import AccountClient
    from databricks.sdk.core import Config

    host = settings.get("host") or os.environ.get("DATABRICKS_HOST")
    settings = {"http_timeout_seconds": DEFAULT_HTTP_TIMEOUT_SECONDS, **settings}
    if host:
        require_reachable(host)
        require_answering(host, settings["http_timeout_seconds"])
    # Building a Config probes the host's metadata (best effort: any failure falls back to the
    # given settings) with its own client, retried for retryTimeoutSeconds and not through our
    # clock: give that probe one short attempt, then restore the settings of the API calls.
    probe = {"retry_timeout_seconds": 1, "http_timeout_seconds": METADATA_PROBE_TIMEOUT_SECONDS}
    config = Config(**{**settings, **probe}, clock=_retry_counting_clock())
    config.retry_timeout_seconds = int(settings.get("retry_timeout_seconds") or SDK_RETRY_TIMEOUT_SECONDS)
    config.http_timeout_seconds = int(settings["http_timeout_seconds"])
    client = AccountClient(config=config)
    _remember_secrets(client)
    return client


def _is_no_answer(error: BaseException) -> bool:
    import requests

    return isinstance(error, (requests.ConnectionError, requests.Timeout))


def _refuse_silent_retry(error: BaseException) -> None:
    """Raise ``error`` again instead of retrying it when it is a host not answering (see
    DEFAULT_HTTP_TIMEOUT_SECONDS); count the retry otherwise."""
    import requests

    if not _is_no_answer(error):
        return
    retries = getattr(_no_answer, "retries", 0)
    if isinstance(error, requests.Timeout) or retries >= MAX_NO_ANSWER_RETRIES:
        raise error
    _no_answer.retries = retries + 1


def _retry_counting_clock() -> Clock:
    from databricks.sdk.clock import RealClock

    class RetryCountingClock(RealClock):
        """The SDK's clock, counting per thread the retries it sleeps before; in a thread inside
        ``single_attempt`` it ends the SDK's retry loop instead of sleeping."""

        def __init__(self) -> None:
            self._local = threading.local()

        def sleep(self, seconds: float) -> None:
            first_attempt_error = sys.exc_info()[1]
            if first_attempt_error is not None:
                # The SDK sleeps before a retry inside the handler of the failed attempt:
                # re-raising that error hands it to the caller instead of retrying.
                if getattr(self._local, "single_attempt", False):
                    raise first_attempt_error
                _refuse_silent_retry(first_attempt_error)
            self._local.retries = self.retries() + 1
            super().sleep(seconds)

        def retries(self) -> int:
            return getattr(self._local, "retries", 0)

        @contextmanager
        def single_attempt(self) -> Iterator[None]:
            self._local.single_attempt = True
            try:
                yield
            finally:
                self._local.single_attempt = False

    return RetryCountingClock()


def sdk_retries(client: AccountClient) -> int:
    """How many times the SDK has retried a call in this thread (a retried write may have landed
    before its answer was lost: the SDK re-sends it and reports only the last answer)."""
    retries = getattr(client.config.clock, "retries", None)
    return int(retries()) if retries else 0


@contextmanager
def single_attempt(client: AccountClient) -> Iterator[None]:
    """SDK calls made in this thread inside the block are sent once: their first error (429, 503,
    a dropped connection, a timeout) is raised instead of retried.

    For writes the API cannot deduplicate (no request id): a re-sent create whose first answer was
    lost would make a twin, so the caller looks for what the first attempt made before sending
    again.  The request itself is the SDK's usual one (JSON with a Content-Length).
    """
    attempt_once = getattr(client.config.clock, "single_attempt", None)
    if attempt_once is None:
        raise TypeError("single_attempt needs a client built by DatabricksAccount (its clock ends the SDK's retries)")
    with attempt_once():
        yield


class DatabricksUnreachable(RuntimeError):
    """Nothing answers at the configured host (refused, or the name does not resolve)."""


# A refused connection or an unknown host name is no glitch: the SDK would retry it (first the
# host metadata fetch, then the call) for up to 2 x retryTimeoutSeconds, ~10 minutes by default.
_PROBE_TIMEOUT_SECONDS = 5
_NOTHING_THERE = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH}


def require_reachable(host: str) -> None:
    """Fail at once, naming ``host``, when its name does not resolve or its port refuses connections.

    Only those two answers fail fast; a slow or dropping host is left to the SDK's patient
    retries, as are HTTP 429/503.  Behind an HTTP(S) proxy the proxy decides, so no probe.
    """
    import requests

    url = host if "://" in host else f"https://{host}"
    parts = urlsplit(url)
    if not parts.hostname or requests.utils.get_environ_proxies(url):
        return
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        addresses = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise _unreachable(host, f"the host name does not resolve ({error.strerror})") from None
    refusals = []
    for family, kind, protocol, _, address in addresses:
        try:
            with socket.socket(family, kind, protocol) as probe:
                probe.settimeout(_PROBE_TIMEOUT_SECONDS)
                probe.connect(address)
                return
        except OSError as error:
            if error.errno not in _NOTHING_THERE:
                return  # a timeout or anything else: the SDK's retries decide
            refusals.append(error.strerror or "connection refused")
    raise _unreachable(host, f"{refusals[0].lower()}, nothing answers there")


# The SDK's first request fetches the host's metadata: the one path every client starts with.
_PROBE_PATH = "/.well-known/databricks-config"


def require_answering(host: str, timeout: float) -> None:
    """Fail at once, naming ``host``, when it accepts connections but answers no HTTP request
    within ``timeout`` s: the common outage, which otherwise costs the SDK's metadata probe and
    then every request its own timeout.  Any HTTP answer will do (an error status too); a dropped
    connection is left to the usual retries.  The request goes as the SDK's would (env proxies)."""
    import requests

    url = host if "://" in host else f"https://{host}"
    try:
        requests.get(url.rstrip("/") + _PROBE_PATH, timeout=(min(_PROBE_TIMEOUT_SECONDS, timeout), timeout)).close()
    except requests.Timeout:
        where = urlsplit(url)
        raise _unreachable(
            host,
            f"no answer from {where.scheme}://{where.netloc.rpartition('@')[2]}: it accepted the connection but "
            f"sent no answer within {timeout:g} s",
            "If the API is only slow, allow more time with `pulumi config set databricks:httpTimeoutSeconds <s>`.",
        ) from None
    except requests.RequestException:
        return  # refused, dropped, TLS: the calls' own errors and retries say it better


def _unreachable(host: str, reason: str, more: str = "") -> DatabricksUnreachable:
    return DatabricksUnreachable(
        f"Unable to connect to Databricks host '{host}': {reason}. Check databricks:host (or "
        "DATABRICKS_HOST); for the local stack, start the account emulator first "
        f"(`python -m emulator --port <port> ...`, see the README). {more}".rstrip()
    )


def _key(settings: dict[str, Any]) -> _SettingsKey:
    return tuple(sorted(settings.items()))


class DatabricksAccount:
    """Builds ``AccountClient``s from configured settings, lazily and once per account.

    Resources are written to the configured account.  A resource recorded in another account
    (the stack was pointed elsewhere) is read and deleted there, with the same credentials, so
    moving a stack between accounts replaces its resources instead of orphaning them.
    """

    def __init__(self) -> None:
        self._settings: dict[str, Any] = {}

    def configure(self, config: Any) -> None:
        self._settings = databricks_settings(config)

    @property
    def account_id(self) -> str | None:
        """The configured account, known without any API call where possible."""
        configured = _clients.peek(_key(self._settings))
        if configured is not None:
            return configured.config.account_id
        return self._settings.get("account_id") or os.environ.get("DATABRICKS_ACCOUNT_ID")

    def client(self, account_id: str | None = None) -> AccountClient:
        """The client of ``account_id`` (a resource's recorded account), else the configured one."""
        settings = dict(self._settings)
        if account_id not in (None, "", self.account_id):
            settings["account_id"] = account_id
        client = _clients.get(_key(settings), lambda: _new_client(settings))
        if not client.config.account_id:
            raise ValueError(
                "No Databricks account id: set it with "
                "`pulumi config set databricks:accountId <id>` or DATABRICKS_ACCOUNT_ID."
            )
        return client

    def __getstate__(self) -> dict[str, Any]:
        # Defence in depth: a configured connection must never be pickled into state.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._settings = {}


class DatabricksProviderError(ProviderError):
    """A Databricks provider's error (the shape of every provider error: see ``providers._base``)."""


# What to do, by the SDK's error class (databricks.sdk.errors), most specific first.
_HINTS = (
    (
        "Unauthenticated",
        "Check the credentials: databricks:token, or databricks:clientId and "
        "databricks:clientSecret, or the DATABRICKS_* environment variables.",
    ),
    ("NotFound", "It was deleted outside Pulumi: run `pulumi refresh`, then `pulumi up` to recreate it."),
    ("ResourceAlreadyExists", "Choose another name, or adopt the existing object with `import_`."),
    ("ResourceConflict", "Someone changed it at the same time: run `pulumi up` again."),
    ("BadRequest", "Fix the input Databricks refused and run `pulumi up` again."),
)
_DEFAULT_HINT = "Run `pulumi up` again; if it keeps failing, check the Databricks account's status."

# Who may do what (Databricks: "new policies can only be accessed by the policy creator and users
# with the billing admin role"; the creator is made the policy's Manager).
BILLING_ADMIN = "the billing admin role"
POLICY_MANAGER = "the billing admin role, or Manager (roles/budgetPolicy.manager) on this budget policy"


@contextmanager
def databricks_errors(
    verb: str, thing: str, name: Any, expected: tuple[type[BaseException], ...] = (), needs: str = BILLING_ADMIN
) -> Iterator[None]:
    """Give every Databricks failure the providers' one error shape; ``expected`` pass through.
    ``needs`` is the role the call requires, named when Databricks answers 403.

    The SDK answers a call whose retries ran out with a bare ``TimeoutError``; every other API
    failure is a ``DatabricksError`` (403 PERMISSION_DENIED included) whose class says what to do.
    """
    import requests
    from databricks.sdk.errors.base import DatabricksError

    _no_answer.retries = 0
    try:
        yield
    except expected:
        raise
    except (requests.ConnectionError, requests.Timeout) as error:
        raise _no_answer_error(verb, thing, name, error) from None
    except TimeoutError as error:
        last = error.__cause__
        reason = mask(f"{type(last).__name__}: {last}") if last else "no successful answer"
        waited = str(error).removeprefix("Timed out after ")
        raise api_error(
            verb,
            thing,
            name,
            f"Databricks kept failing ({reason}); gave up after {waited}",
            "Retry `pulumi up` later, or allow longer retries with "
            "`pulumi config set databricks:retryTimeoutSeconds <s>`.",
            error_class=DatabricksProviderError,
        ) from None
    except DatabricksError as error:
        code = f"{error.error_code}: " if getattr(error, "error_code", None) else ""
        # A server or proxy may quote the request back, Authorization header included.
        reason = mask(f"{code}{_said(error)}")
        raise api_error(
            verb, thing, name, reason, _hint_for(error, needs), error_class=DatabricksProviderError
        ) from None


_SDK_UNPARSABLE = "unable to parse response."


def _said(error: BaseException) -> str:
    """What the server said.  An answer that is not the Databricks API's JSON (a proxy's or
    gateway's page) comes from the SDK as a long bug-report text around a request log: keep its
    status line and the page's text."""
    text = str(error)
    if not text.startswith(_SDK_UNPARSABLE) or "```" not in text:
        return text
    answer = [line[2:] for line in text.split("```")[1].splitlines() if line.startswith("< ")]
    if not answer:
        return text
    page = re.sub(r"<[^>]*>", " ", " ".join(answer[1:]))
    return f"HTTP {answer[0]} from something other than the Databricks API (a proxy?): {page}"


# Every secret a client of this process was built with, masked in every Databricks message.
_secrets: frozenset[str] = frozenset()  # replaced, never changed: masking may read it meanwhile
_SECRET_ENV = ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD", "ARM_CLIENT_SECRET")


def _remember_secrets(client: AccountClient) -> None:
    global _secrets
    config = client.config
    _secrets = _secrets | {value for value in (config.token, config.client_secret, config.password) if value}


def mask(text: str) -> str:
    """``text`` (a server's, a proxy's or the SDK's message) with every credential masked: the
    configured ones, and whatever reads as one (``Authorization: Bearer …``), as MLflow's are."""
    return mask_credentials(text, [*_secrets, *(os.environ.get(name) for name in _SECRET_ENV)])


def _no_answer_error(verb: str, thing: str, name: Any, error: BaseException) -> ProviderError:
    import requests

    request = getattr(error, "request", None)
    url = urlsplit(getattr(request, "url", "") or "")
    host = f"{url.scheme}://{url.netloc}" if url.netloc else "the Databricks host"
    what = (
        "it accepted the connection but sent no answer in time"
        if isinstance(error, requests.Timeout)
        else "the connection was refused or dropped, twice"
    )
    return api_error(
        verb,
        thing,
        name,
        f"no answer from {host}: {what}",
        "Check that databricks:host is this account's console URL and that it is reachable from here "
        "(proxy, VPN, firewall); if the API is only slow, allow more time with "
        "`pulumi config set databricks:httpTimeoutSeconds <s>`.",
        error_class=DatabricksProviderError,
    )


def returned_id(value: str | None, verb: str, thing: str, name: Any) -> str:
    """The id Databricks returned for what was just written (the SDK types every field optional)."""
    if not value:
        raise api_error(
            verb, thing, name, "Databricks answered without an id", _DEFAULT_HINT, error_class=DatabricksProviderError
        )
    return value


def _hint_for(error: BaseException, needs: str) -> str:
    names = {cls.__name__ for cls in type(error).__mro__}
    if "PermissionDenied" in names:
        return (
            f"The identity in the databricks:* stack config needs {needs}: have it granted, "
            "or configure an identity that has it."
        )
    return next((hint for name, hint in _HINTS if name in names), _DEFAULT_HINT)


class DatabricksProvider(ResourceProvider):
    """Base of the Databricks providers: a connection configured in the provider process only."""

    def __init__(self) -> None:
        super().__init__()
        self.account = DatabricksAccount()

    def configure(self, req: ConfigureRequest) -> None:
        self.account.configure(req.config)

    def replace_if_account_moved(self, result: DiffResult, olds: dict[str, Any]) -> DiffResult:
        """A resource lives in one account: pointing the stack at another replaces it."""
        account_id = self.account.account_id
        if account_id and olds.get("account_id") and olds["account_id"] != account_id:
            result.changes = True
            result.replaces = [*(result.replaces or []), "account_id"]
        return result
