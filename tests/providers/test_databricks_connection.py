"""A Databricks host where nothing answers fails at once, naming the host; nothing is retried."""

from __future__ import annotations

import socket
import time

import pytest

from providers._databricks import DatabricksAccount


def refused_host() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def no_retry_sleeps(monkeypatch):
    """The SDK sleeps before each retry: any sleep means a hopeless call was being retried."""

    def refuse_to_wait(seconds):
        raise AssertionError(f"retried (about to sleep {seconds:.1f}s) instead of failing at once")

    monkeypatch.setattr(time, "sleep", refuse_to_wait)
    for name in ("DATABRICKS_HOST", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def account_for(host: str, account_id: str = "0d6f1e5c-4a7b-4c1e-9f3a-2b8c7d6e5f40") -> DatabricksAccount:
    account = DatabricksAccount()
    account.configure({"databricks:host": host, "databricks:accountId": account_id, "databricks:token": "dapi-test"})
    return account


@pytest.mark.parametrize("host", [refused_host(), "https://nowhere-at-all.invalid"])
def test_nothing_answering_fails_at_once_naming_the_host(no_retry_sleeps, host):
    with pytest.raises(Exception) as raised:
        list(account_for(host).client().budget_policy.list())
    message = str(raised.value)
    assert f"Unable to connect to Databricks host '{host}'" in message
    assert "nothing answers there" in message or "does not resolve" in message


def test_a_listening_host_is_used(databricks_emulator):
    client = account_for(databricks_emulator.url, databricks_emulator.account_id).client()
    assert list(client.budget_policy.list()) == []
