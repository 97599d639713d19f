"""A Databricks host that accepts connections and never answers, or that goes away after the
first call, fails the operation after one attempt per request (not the SDK's 60 s timeout retried
for 300 s, twice), naming the host and what to check.  Counted in attempts the host received, not
timed (bench/ measures time)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from harness.deployment import declare
from harness.provider_server import ProviderError
from providers import AccountBudget, ServerlessBudgetPolicy

ACCOUNT = "0d6f1e5c-4a7b-4c1e-9f3a-2b8c7d6e5f40"


class SilentHost:
    """Accepts TCP connections on 127.0.0.1, reads the requests sent there, never answers a byte."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self.requests: list[str] = []  # request lines
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        try:
            head = connection.recv(65536)
        except OSError:
            return
        if head:
            self.requests.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_host() -> Iterator[SilentHost]:
    host = SilentHost()
    yield host
    host.close()


def _provider(provider_server_factory, host: str):
    config = {"databricks:host": host, "databricks:accountId": ACCOUNT, "databricks:token": "dapi-test"}
    return provider_server_factory(config=config)


@pytest.mark.parametrize(
    "resource, props, attempts",
    [
        # the provider's first request to a host (require_answering) gets no answer: nothing more is sent
        (ServerlessBudgetPolicy, {"policy_name": "silent"}, 1),
        (AccountBudget, {"display_name": "silent", "alerts": [{"threshold_usd": 5, "notify": ["a@example.com"]}]}, 1),
    ],
)
def test_a_host_that_never_answers_fails_after_one_attempt_naming_it(
    silent_host, provider_server_factory, resource, props, attempts
):
    server = _provider(provider_server_factory, silent_host.url)
    urn = server.urn(f"pulumi-python:dynamic/mlbudgets:{resource.__name__}", "silent")
    with pytest.raises(ProviderError) as failed:
        server.apply(urn, declare(resource, "silent", **props))
    message = failed.value.message
    assert f"no answer from {silent_host.url}" in message
    assert "databricks:httpTimeoutSeconds" in message and "retryTimeoutSeconds" not in message
    assert len(silent_host.requests) == attempts, silent_host.requests


def test_a_host_gone_after_the_first_call_fails_after_one_retry(databricks_emulator_factory, provider_server_factory):
    emulator = databricks_emulator_factory(account_id=ACCOUNT)
    server = _provider(provider_server_factory, emulator.url)
    urn = server.urn("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "gone")
    policy_id, outs = server.apply(urn, declare(ServerlessBudgetPolicy, "gone", policy_name="gone"))
    url = emulator.url
    emulator.stop()  # the port now refuses connections
    with pytest.raises(ProviderError) as failed:
        server.read(urn, policy_id, outs)
    assert f"no answer from {url}" in failed.value.message
    assert "refused or dropped, twice" in failed.value.message
