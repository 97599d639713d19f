"""Hosts that fail the way real outages do, on free 127.0.0.1 ports (tests and bench/).

* ``silent_host()``: accepts TCP connections and never answers (a hung server, a black-holing
  load balancer);
* ``closing_host()``: answers the Databricks SDK's host metadata fetch, then closes every other
  connection without an answer (an API behind it that went away);
* ``provider_for(resource, host, **config)``: a Databricks provider pointed at such a host.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ACCOUNT_ID = "0d6f1e5c-4a7b-4c1e-9f3a-2b8c7d6e5f40"
TOKEN = "dapi-bench-outage"


@contextmanager
def silent_host() -> Iterator[str]:
    """Accepts connections on a free 127.0.0.1 port and never answers."""
    with _listener() as (server, held):

        def accept() -> None:
            while True:
                try:
                    held.append(server.accept()[0])
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@contextmanager
def closing_host() -> Iterator[str]:
    """Answers the host metadata fetch (``/.well-known/…``) with a 404, and closes every other
    connection without an answer: an API behind it that went away."""
    with _listener() as (server, _):

        def serve() -> None:
            while True:
                try:
                    connection = server.accept()[0]
                except OSError:
                    return
                with connection:
                    if b"/.well-known/" in connection.recv(65536).partition(b"\r\n")[0]:
                        connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        threading.Thread(target=serve, daemon=True).start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@contextmanager
def _listener() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    try:
        yield server, held
    finally:
        server.close()
        for connection in held:
            connection.close()


def provider_for(
    resource: str, host: str, account_id: str = ACCOUNT_ID, config: dict[str, str] | None = None
) -> tuple[Any, dict[str, Any]]:
    """A ServerlessBudgetPolicy (``serverless``) or AccountBudget (``account``) provider configured
    as a user would (host, account id, token, and ``config`` such as
    ``{"databricks:httpTimeoutSeconds": "1"}``), and checked inputs for one new resource."""
    config = {"databricks:host": host, "databricks:accountId": account_id, "databricks:token": TOKEN, **(config or {})}
    if resource == "serverless":
        from providers.serverless_budget_policy import ServerlessBudgetPolicyProvider

        provider: Any = ServerlessBudgetPolicyProvider()
        news: dict[str, Any] = {"policy_name": f"outage-{time.monotonic_ns()}"}
    else:
        from providers.account_budget import AccountBudgetProvider

        provider = AccountBudgetProvider()
        news = {
            "display_name": f"outage-{time.monotonic_ns()}",
            "alerts": [{"threshold_usd": 100, "notify": ["finops@example.com"]}],
        }
    provider.account.configure(config)
    checked = provider.check({}, news)
    assert not checked.failures, checked.failures
    return provider, checked.inputs
