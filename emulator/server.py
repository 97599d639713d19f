"""Run the emulator in this process (a thread) and talk to it: what tests and benchmarks use.

with EmulatorServer() as emu:
    a = emu.account_client()
    a.budget_policy.create(policy=BudgetPolicy(policy_name="team-a"))
    emu.faults.throttle("POST", "/budget-policies", retry_after=0)
    assert emu.count("POST", "/budget-policies") == 1
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler, make_server

from emulator.app import EmulatorApp
from emulator.faults import FaultInjector
from emulator.permissions import CALLER, DEFAULT_PRINCIPAL, Permissions
from emulator.state import AccountState

DEFAULT_TOKEN = "dapi-test"
PULUMI_TOKEN = "dapi-emulator-token"


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its per-request access log line (thousands in a benchmark)."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # noqa: D401
        pass


def serve(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` bound to ``host:port`` (0 = a free port)."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    if isinstance(server, ThreadedWSGIServer):  # threaded=True makes one
        server.daemon_threads = True
    return server


class ScaledClock:
    """A databricks-sdk ``Clock`` whose ``sleep`` is scaled down (and recorded).

    The SDK's retry loop sleeps ``Retry-After`` (429/503) or 1..10 s (connection errors), plus up
    to 1 s of jitter, between attempts.  Scaling keeps tests fast while ``sleeps`` still shows
    what the SDK asked for (e.g. that it honoured ``Retry-After: 3``).
    """

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.sleeps: list[float] = []

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(max(0.0, seconds * self.scale))


def account_client(
    url: str,
    account_id: str,
    *,
    token: str = DEFAULT_TOKEN,
    retry_timeout_seconds: int = 10,
    http_timeout_seconds: int | None = None,
    retry_sleep_scale: float = 0.02,
):
    """A real ``databricks.sdk.AccountClient`` for an emulator at ``url`` (PAT auth).

    ``retry_sleep_scale`` scales the SDK's sleeps between retries (1.0 = real time); the clock
    is ``client.config.clock`` and records the sleeps in ``.sleeps``.
    """
    from databricks.sdk import AccountClient
    from databricks.sdk.core import Config

    kwargs: dict[str, Any] = dict(
        host=url,
        account_id=account_id,
        token=token,
        auth_type="pat",
        retry_timeout_seconds=retry_timeout_seconds,
    )
    if http_timeout_seconds is not None:
        kwargs["http_timeout_seconds"] = http_timeout_seconds
    if retry_sleep_scale != 1.0:
        kwargs["clock"] = ScaledClock(retry_sleep_scale)
    return AccountClient(config=Config(**kwargs))


def _permissions(tokens: dict[str, str] | None, billing_admins: set[str] | None) -> Permissions:
    return Permissions(
        tokens=dict(tokens or {}),
        billing_admins=set(billing_admins) if billing_admins is not None else {DEFAULT_PRINCIPAL},
    )


def pulumi_config(url: str, account_id: str, token: str = PULUMI_TOKEN) -> dict[str, str]:
    """Stack config that points the ml-budgets Databricks providers at an emulator."""
    return {"databricks:host": url, "databricks:accountId": account_id, "databricks:token": token}


class EmulatorServer:
    """The emulator on ``host:port`` in a background thread of this process.

    :param account_id: the account served (default: a random UUID, or the one in ``state_path``).
    :param state_path: persist the account to this JSON file on every mutation.
    :param creator_manager: see :class:`AccountState` (default: the creating token's principal
        becomes the new policy's Manager, as in Databricks).
    :param tokens: token -> principal (default: every token is ``users/emulator-user@example.com``).
    :param billing_admins: principals with the billing admin role (default: that same user).
    :param lowercase_emails: see :class:`AccountState` (a server that lowercases user principals).
    :param omitted_lists: see :class:`AccountState` (``"clear"`` or ``"keep"`` lists a PATCH leaves out).
    :param state: use this :class:`AccountState` instead of building one.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str | None = None,
        state_path: str | None = None,
        creator_manager: str | None = CALLER,
        tokens: dict[str, str] | None = None,
        billing_admins: set[str] | None = None,
        lowercase_emails: bool = False,
        omitted_lists: str = "clear",
        state: AccountState | None = None,
        fault_seed: int | None = None,
        echo_unknown_routes: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.state = state or AccountState(
            account_id,
            path=state_path,
            creator_manager=creator_manager,
            permissions=_permissions(tokens, billing_admins),
            lowercase_emails=lowercase_emails,
            omitted_lists=omitted_lists,
        )
        self.faults = FaultInjector(seed=fault_seed)
        self.app = EmulatorApp(self.state, self.faults, echo_unknown_routes=echo_unknown_routes)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        self._server = serve(self.app, self.host, self._requested_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="databricks-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self.state.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account_id(self) -> str:
        return self.state.account_id

    # ------------------------------------------------------------------ request log & hooks

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app.requests

    def reset_requests(self) -> None:
        self.app.reset_requests()

    def count(self, method: str | None = None, path_contains: str = "", *, status: int | None = None) -> int:
        return self.app.count(method, path_contains, status=status)

    def before_next(self, method: str, path_contains: str, callback: Callable[..., Any]) -> None:
        self.app.before_next(method, path_contains, callback)

    @property
    def unknown_routes(self) -> list[str]:
        return list(self.app.unknown_routes)

    @property
    def hook_errors(self) -> list[BaseException]:
        return list(self.app.hook_errors)

    # ------------------------------------------------------------------ clients

    def account_client(self, **kwargs: Any):
        """A real ``AccountClient`` for this emulator; see :func:`emulator.server.account_client`."""
        return account_client(self.url, self.account_id, **kwargs)

    def config(self, token: str = PULUMI_TOKEN) -> dict[str, str]:
        return pulumi_config(self.url, self.account_id, token)
