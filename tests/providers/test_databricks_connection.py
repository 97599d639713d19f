"""A Databricks host where nothing answers fails at once, naming the host and what to check: a
refused port or an unknown name is not retried, a host that accepts connections and never answers
is tried once per request, one that closes them twice (issue 23: tests/providers/
test_databricks_fail_fast.py counts the attempts; these cover closing hosts, both resources, no
twin, the default settings); throttling is still retried patiently."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from emulator.server import EmulatorServer
from emulator.server import account_client as emulator_client
from harness.dead_hosts import closing_host, provider_for, silent_host
from providers._databricks import DEFAULT_HTTP_TIMEOUT_SECONDS, METADATA_PROBE_TIMEOUT_SECONDS, DatabricksAccount


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


# --- the common outage: a host that accepts connections and never answers, or stops answering --

QUICK = {"databricks:httpTimeoutSeconds": "1"}
BOUND = 10 * (METADATA_PROBE_TIMEOUT_SECONDS + 2 * 1)  # the probe, then at most two 1 s attempts per call


def fails_within(bound: float, create) -> str:
    """Run ``create`` in a thread; its error's message, once it fails (it must, within ``bound`` s).

    ``bound`` is generous, derived from the configured timeouts: it tells "fails after its
    retries" from "retries for minutes" (as before issue 23), not fast from slow machines.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            create()
            outcome.append(None)
        except Exception as error:  # noqa: BLE001
            outcome.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert outcome, f"still trying after {bound:.0f} s"
    error = outcome[0]
    assert error is not None, "created on a host that does not answer"
    print(f"failed after {time.monotonic() - started:.1f} s: {error}")
    return str(error)


def assert_names_host_and_next_step(message: str, host: str) -> None:
    assert f"no answer from {host}" in message
    assert "Check databricks:host" in message or "Check that databricks:host is this account's console URL" in message
    assert "allow longer retries" not in message


@pytest.mark.parametrize("resource", ["serverless", "account"])
def test_a_silent_host_fails_naming_the_host_and_what_to_check(resource):
    with silent_host() as host:
        provider, inputs = provider_for(resource, host, config=QUICK)
        message = fails_within(BOUND, lambda: provider.create(inputs))
    assert_names_host_and_next_step(message, host)
    assert "accepted the connection but sent no answer" in message


@pytest.mark.parametrize("resource", ["serverless", "account"])
def test_a_host_closing_every_call_fails_naming_the_host(resource):
    with closing_host() as host:
        provider, inputs = provider_for(resource, host, config=QUICK)
        message = fails_within(BOUND, lambda: provider.create(inputs))
    assert_names_host_and_next_step(message, host)
    assert "refused or dropped, twice" in message


@pytest.mark.parametrize("resource", ["serverless", "account"])
def test_a_host_that_goes_away_after_the_first_call_fails_fast_and_leaves_no_twin(resource):
    emulator = EmulatorServer().start()
    host, account_id = emulator.url, emulator.account_id
    try:
        provider, inputs = provider_for(resource, host, account_id, config=QUICK)
        provider.create(inputs)
        made = _objects(emulator, resource)
        assert len(made) == 1
        # Every later request is dropped before it reaches the account: the host is gone.
        emulator.faults.drop(count=None)
        provider, inputs = provider_for(resource, host, account_id, config=QUICK)
        message = fails_within(BOUND, lambda: provider.create(inputs))
        emulator.faults.clear()
        assert _objects(emulator, resource) == made, "nothing half-made"
    finally:
        emulator.stop()
    assert_names_host_and_next_step(message, host)


def _objects(emulator: EmulatorServer, resource: str) -> list[str]:
    client = emulator_client(emulator.url, emulator.account_id)
    if resource == "serverless":
        return sorted(p.policy_id or "" for p in client.budget_policy.list())
    return sorted(b.budget_configuration_id or "" for b in client.budgets.list())


def test_with_default_settings_a_silent_host_fails_well_before_the_sdk_would():
    """No timeouts configured: the SDK alone would wait 60 s per answer and retry for 300 s, twice
    (~10 minutes).  Bound: the defaults' worst case, three times over."""
    bound = 3 * (METADATA_PROBE_TIMEOUT_SECONDS + 2 * DEFAULT_HTTP_TIMEOUT_SECONDS)
    with silent_host() as host:
        provider, inputs = provider_for("serverless", host)
        message = fails_within(bound, lambda: provider.create(inputs))
    assert_names_host_and_next_step(message, host)


def test_throttling_is_still_retried_for_retry_timeout_seconds(databricks_emulator):
    """429 is an answer, not an outage: it is retried (the no-answer budget does not apply)."""
    databricks_emulator.faults.throttle("POST", "/budget-policies", count=2, retry_after=1)
    provider, inputs = provider_for("serverless", databricks_emulator.url, databricks_emulator.account_id)
    created = provider.create(inputs)
    assert created.id and databricks_emulator.faults.fired() == 2
