"""Fault injection: what the real databricks-sdk does when the emulator throttles, fails or drops."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from databricks.sdk.errors import InternalError, NotFound, TooManyRequests
from databricks.sdk.service.billing import BudgetPolicy

from emulator.faults import FaultInjector


def _create(a, name="p"):
    return a.budget_policy.create(policy=BudgetPolicy(policy_name=name))


def test_429_with_retry_after_is_retried_transparently(databricks_emulator):
    a = databricks_emulator.account_client()
    policy = _create(a)
    databricks_emulator.reset_requests()
    fault = databricks_emulator.faults.throttle("GET", f"/budget-policies/{policy.policy_id}", retry_after=3)
    assert a.budget_policy.get(policy.policy_id).policy_id == policy.policy_id
    log = databricks_emulator.requests
    assert [(r["status"], r["fault"]) for r in log] == [(429, "429/before"), (200, None)]
    assert log[0]["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert fault.fired == 1
    # The SDK slept what Retry-After said (plus < 1 s of jitter) before the retry.
    sleeps = a.config.clock.sleeps
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] < 4.0


def test_429_retry_after_in_real_time(databricks_emulator):
    a = databricks_emulator.account_client(retry_sleep_scale=1.0)
    databricks_emulator.faults.throttle("GET", "/budget-policies", retry_after=1)
    started = time.monotonic()
    assert list(a.budget_policy.list()) == []
    assert time.monotonic() - started >= 1.0
    assert databricks_emulator.count("GET", "/budget-policies") == 2


def test_429_response_carries_the_header(databricks_emulator):
    databricks_emulator.faults.throttle("GET", "/budget-policies", retry_after=7)
    response = requests.get(
        f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies",
        headers={"Authorization": "Bearer x"},
        timeout=10,
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_503_is_retried_transparently_for_a_write(databricks_emulator):
    a = databricks_emulator.account_client()
    policy = _create(a, "before")
    databricks_emulator.reset_requests()
    databricks_emulator.faults.unavailable("PATCH", "/budget-policies/", count=2)
    updated = a.budget_policy.update(policy.policy_id, BudgetPolicy(policy_name="after"))
    assert updated.policy_name == "after"
    assert [r["status"] for r in databricks_emulator.requests] == [503, 503, 200]
    assert all(s >= 1.0 for s in a.config.clock.sleeps)  # 503 without Retry-After: the SDK waits 1 s


def test_dropped_connection_is_retried(databricks_emulator):
    a = databricks_emulator.account_client()
    policy = _create(a)
    databricks_emulator.reset_requests()
    databricks_emulator.faults.drop("GET", "/budget-policies/")
    assert a.budget_policy.get(policy.policy_id).policy_name == "p"
    assert [(r["status"], r["fault"]) for r in databricks_emulator.requests] == [(None, "drop/before"), (200, None)]


def test_dropped_connection_is_a_connection_error_for_plain_clients(databricks_emulator):
    databricks_emulator.faults.drop("GET", "/budget-policies")
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies",
            headers={"Authorization": "Bearer x"},
            timeout=10,
        )


@pytest.mark.parametrize("kind", ["drop", "503", "429"])
def test_create_applied_then_answer_lost_is_idempotent(databricks_emulator, kind):
    """The create commits, its answer is lost; the SDK retries with the same request_id."""
    a = databricks_emulator.account_client()
    databricks_emulator.faults.inject(kind, "POST", "/budget-policies", phase="after", retry_after=0)
    created = a.budget_policy.create(policy=BudgetPolicy(policy_name="exactly-once"))
    posts = [r for r in databricks_emulator.requests if r["method"] == "POST"]
    assert len(posts) == 2
    assert posts[0]["body"]["request_id"] == posts[1]["body"]["request_id"]
    assert posts[0]["fault"] == f"{kind}/after"
    assert len(databricks_emulator.state) == 1
    assert databricks_emulator.state.policies()[0]["policy_id"] == created.policy_id


def test_without_request_id_reuse_a_lost_create_answer_duplicates_or_conflicts(databricks_emulator):
    """Control for the test above: two different request ids for one name hit the name check."""
    a = databricks_emulator.account_client()
    databricks_emulator.faults.drop("POST", "/budget-policies", phase="after")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies",
            json={"policy": {"policy_name": "once"}, "request_id": str(uuid.uuid4())},
            headers={"Authorization": "Bearer x"},
            timeout=10,
        )
    assert len(databricks_emulator.state) == 1  # applied although the client saw an error
    with pytest.raises(Exception) as err:
        a.budget_policy.create(policy=BudgetPolicy(policy_name="once"), request_id=str(uuid.uuid4()))
    assert getattr(err.value, "error_code", None) == "RESOURCE_ALREADY_EXISTS"


def test_delete_applied_then_answer_lost_shows_404_on_retry(databricks_emulator):
    a = databricks_emulator.account_client()
    policy = _create(a)
    databricks_emulator.faults.unavailable("DELETE", "/budget-policies/", phase="after")
    with pytest.raises(NotFound):
        a.budget_policy.delete(policy.policy_id)
    assert len(databricks_emulator.state) == 0
    assert [r["status"] for r in databricks_emulator.requests if r["method"] == "DELETE"] == [503, 404]


def test_persistent_503_gives_up_after_the_retry_timeout(databricks_emulator):
    a = databricks_emulator.account_client(retry_timeout_seconds=1)
    databricks_emulator.faults.unavailable("GET", "/budget-policies", count=None)
    with pytest.raises(TimeoutError) as error:
        list(a.budget_policy.list())
    # It gave up because the configured retry time ran out, on the 503 it kept getting.
    assert str(error.value) == "Timed out after 0:00:01"
    assert type(error.value.__cause__).__name__ == "TemporarilyUnavailable"
    attempts = databricks_emulator.count("GET", "/budget-policies", status=503)
    assert attempts >= 2 and attempts == len(a.config.clock.sleeps), "a sleep after each failed attempt"


def test_slow_answer_times_out_the_client_then_retry_succeeds(databricks_emulator):
    a = databricks_emulator.account_client(http_timeout_seconds=1)
    policy = _create(a)
    databricks_emulator.reset_requests()
    databricks_emulator.faults.slow("GET", "/budget-policies/", seconds=2.5)
    started = time.monotonic()
    assert a.budget_policy.get(policy.policy_id).policy_id == policy.policy_id
    assert time.monotonic() - started >= 1.0
    assert databricks_emulator.count("GET", "/budget-policies/") == 2


def test_slow_answer_within_the_timeout_just_takes_longer(databricks_emulator):
    a = databricks_emulator.account_client()
    databricks_emulator.faults.slow("GET", "/budget-policies", seconds=0.5)
    started = time.monotonic()
    list(a.budget_policy.list())
    assert time.monotonic() - started >= 0.5
    assert databricks_emulator.count("GET", "/budget-policies") == 1


def test_any_error_can_be_injected_and_is_not_retried(databricks_emulator):
    a = databricks_emulator.account_client()
    databricks_emulator.faults.error(
        "POST", "/budget-policies", status=500, error_code="INTERNAL_ERROR", message="boom"
    )
    with pytest.raises(InternalError, match="boom"):
        _create(a)
    assert len(databricks_emulator.state) == 0
    assert databricks_emulator.count("POST", "/budget-policies") == 1


def test_429_is_surfaced_once_the_retry_budget_is_spent(databricks_emulator):
    a = databricks_emulator.account_client(retry_timeout_seconds=1)
    databricks_emulator.faults.throttle("GET", "/budget-policies", retry_after=30, count=None)
    with pytest.raises(TimeoutError) as err:
        list(a.budget_policy.list())
    assert isinstance(err.value.__cause__, TooManyRequests)


def test_fault_matching_skip_count_method_and_regex():
    faults = FaultInjector(seed=1)
    third = faults.inject("503", "GET", "/budget-policies", skip=2, count=1)
    rx = faults.inject("429", "*", r"/budget-policies/[0-9a-f-]{36}$", regex=True, count=None)
    hits = [faults.take("GET", "/api/2.1/accounts/a/budget-policies", "before") for _ in range(4)]
    assert [h.id if h else None for h in hits] == [None, None, third.id, None]
    assert faults.take("POST", "/api/2.1/accounts/a/budget-policies", "before") is None
    assert faults.take("DELETE", f"/api/2.1/accounts/a/budget-policies/{uuid.uuid4()}", "before") is rx
    assert faults.take("DELETE", f"/api/2.1/accounts/a/budget-policies/{uuid.uuid4()}", "after") is None
    assert rx.fired == 1 and faults.fired("503") == 1
    never = faults.inject("503", probability=0.0, count=None)
    assert all(faults.take("GET", "/x", "before") in (rx, None) for _ in range(20)) and never.fired == 0
    with pytest.raises(ValueError):
        faults.inject("teapot")
    with pytest.raises(ValueError):
        faults.inject("slow")  # needs seconds


def test_faults_and_log_over_the_control_endpoints(databricks_emulator):
    from emulator.process import RemoteControl

    control = RemoteControl(databricks_emulator.url)
    a = databricks_emulator.account_client()
    control.reset_requests()
    fault = control.inject_fault("429", "GET", "/budget-policies", retry_after=0, count=2)
    assert fault["remaining"] == 2
    assert list(a.budget_policy.list()) == []
    assert [r["status"] for r in control.requests] == [429, 429, 200]
    assert control.count("GET", "/budget-policies", status=429) == 2
    assert [h["kind"] for h in control.faults()["history"]] == ["429", "429"]
    assert control.faults()["faults"] == []  # used up
    control.reset_requests()
    assert control.requests == []
    # Control calls themselves are not logged.
    assert databricks_emulator.requests == []
