"""Gateway budgets on ``mlflow server`` as it is deployed: its default workers (4), with and
without the Redis budget tracker, and with the README's recommended settings.

What MLflow 3.17 guarantees (mlflow/gateway/budget_tracker): each worker holds its own copy of
the policies until ``MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL`` passes, and a budget write reloads
only the worker that served it; without Redis each worker also counts spend on its own.  The
tests decide which worker serves each request (``harness/gateway_workers.py``) so that they assert
those guarantees exactly instead of depending on how the kernel spreads connections; waiting is
only ever for the refresh interval itself.

Each fake call costs $0.21 (``gpt-4o-mini`` at the bundled prices): a $1.00 REJECT cap admits
five calls on one tracker (0.84 < 1.00, then 1.05), the fifth being the crossing call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from budget_status.enforcement import EXIT_NOT_IN_FORCE
from harness.gateway_workers import WorkerConnection, pin_every_worker
from harness.mlflow_server import MlflowServer, create_gateway_endpoint
from harness.provider_server import PROJECT_ROOT

pytestmark = pytest.mark.slow

MLFLOW_DEFAULT_WORKERS = 4
COST_PER_CALL_USD = 0.21
CAP_USD = 1.00
CALLS_WITHIN_CAP = 5  # 4 calls spend $0.84; the 5th (the crossing call) brings $1.05
RECOMMENDED_REFRESH_SECONDS = 5  # the README recommends 30 s; 5 keeps CI short, the bound is the same


def start_server(tmp_path_factory, name: str, env: dict[str, str]) -> MlflowServer:
    directory = tmp_path_factory.mktemp(name)
    return MlflowServer(directory, workers=None, extra_env=env, keep_alive_seconds=600).start()


@pytest.fixture(scope="module")
def in_memory_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """As ``mlflow server`` runs unless told more: 4 workers, in-memory tracker, 600 s refresh."""
    server = start_server(tmp_path_factory, "mlflow-default", {})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server_default_refresh(tmp_path_factory, redis_server) -> Iterator[MlflowServer]:
    server = start_server(tmp_path_factory, "mlflow-redis", {"MLFLOW_GATEWAY_BUDGET_REDIS_URL": redis_server.url})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recommended_server(tmp_path_factory, redis_server) -> Iterator[MlflowServer]:
    """The README's production settings: Redis tracker and a short refresh interval."""
    env = {
        "MLFLOW_GATEWAY_BUDGET_REDIS_URL": redis_server.url.replace("/0", "/1"),  # its own database
        "MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL": str(RECOMMENDED_REFRESH_SECONDS),
    }
    server = start_server(tmp_path_factory, "mlflow-recommended", env)
    yield server
    server.stop()


@pytest.fixture
def workers(request) -> Iterator[list[WorkerConnection]]:
    server: MlflowServer = request.getfixturevalue(request.param)
    pinned = pin_every_worker(server, MLFLOW_DEFAULT_WORKERS)
    yield pinned
    for worker in pinned:
        worker.close()


def reject_cap(server: MlflowServer, endpoint_id: str, amount_usd: float) -> str:
    """A REJECT policy on one endpoint (what GatewayBudgetPolicy writes), its id."""
    from mlflow.entities.gateway_budget_policy import (
        BudgetAction,
        BudgetDuration,
        BudgetDurationUnit,
        BudgetTargetScope,
        BudgetUnit,
    )
    from mlflow.tracking._tracking_service.utils import _get_store

    policy = _get_store(server.tracking_uri).create_budget_policy(
        budget_unit=BudgetUnit.USD,
        budget_amount=amount_usd,
        duration=BudgetDuration(BudgetDurationUnit.DAYS, 1),
        target_scope=BudgetTargetScope.ENDPOINT,
        budget_action=BudgetAction.REJECT,
        target_value=endpoint_id,
    )
    return str(policy.budget_policy_id)


def capped_endpoint(server: MlflowServer, openai_fake, workers: list[WorkerConnection], amount_usd: float):
    """A fresh endpoint with a REJECT cap that every worker has loaded."""
    endpoint = create_gateway_endpoint(server.tracking_uri, openai_fake.url, name=f"workers-{uuid.uuid4().hex[:8]}")
    policy_id = reject_cap(server, endpoint.endpoint_id, amount_usd)
    for worker in workers:
        worker.reload_budgets(policy_id, amount_usd)
    return endpoint, policy_id


def calls_until_rejected(worker: WorkerConnection, endpoint_name: str, limit: int = 20) -> int:
    for admitted in range(limit):
        if worker.invoke(endpoint_name) == 429:
            return admitted
    raise AssertionError(f"worker {worker.pid} admitted {limit} calls in a row")


def trace_spend(server: MlflowServer, endpoint_id: str) -> float:
    """What the calls really cost: the sum of the endpoint's gateway traces, over all workers."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(server.db_uri, str(server.directory / "artifacts"))
    try:
        return float(store.sum_gateway_trace_cost(start_time_ms=0, end_time_ms=2**62, endpoint_id=endpoint_id))
    finally:
        store.engine.dispose()


def wait_for(predicate, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    return predicate()


# --- overshoot ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["in_memory_server"], indirect=True)
def test_in_memory_tracker_lets_each_worker_spend_the_whole_cap(in_memory_server, workers, openai_fake):
    endpoint, policy_id = capped_endpoint(in_memory_server, openai_fake, workers, CAP_USD)

    admitted = [calls_until_rejected(worker, endpoint.name) for worker in workers]

    assert admitted == [CALLS_WITHIN_CAP] * MLFLOW_DEFAULT_WORKERS  # 20 calls for a 5-call cap
    # The gateway writes its traces after answering: wait until all 20 calls' costs are in.
    expected = COST_PER_CALL_USD * CALLS_WITHIN_CAP * MLFLOW_DEFAULT_WORKERS  # $4.20: 4.2x the cap
    spent = wait_for(lambda: trace_spend(in_memory_server, endpoint.endpoint_id) >= expected - 1e-6, timeout=60)
    assert spent, f"the traces hold ${trace_spend(in_memory_server, endpoint.endpoint_id):.2f}, not ${expected:.2f}"
    assert trace_spend(in_memory_server, endpoint.endpoint_id) == pytest.approx(expected)
    # Each worker's window shows only its own spend: the outside view budget_status reads.
    assert [worker.windows()[policy_id] for worker in workers] == [pytest.approx(1.05)] * MLFLOW_DEFAULT_WORKERS


@pytest.mark.parametrize("workers", ["redis_server_default_refresh"], indirect=True)
def test_redis_tracker_shares_the_spend_so_the_cap_holds_across_workers(
    redis_server_default_refresh, workers, openai_fake
):
    endpoint, policy_id = capped_endpoint(redis_server_default_refresh, openai_fake, workers, CAP_USD)

    statuses = [worker.invoke(endpoint.name) for _ in range(3) for worker in workers]  # round robin, 12 calls

    assert statuses.count(200) == CALLS_WITHIN_CAP  # the cap plus the crossing call, over all workers
    assert statuses[CALLS_WITHIN_CAP:] == [429] * (len(statuses) - CALLS_WITHIN_CAP)
    assert [worker.windows()[policy_id] for worker in workers] == [pytest.approx(1.05)] * len(workers)


# --- how long a changed cap takes to reach every worker ----------------------------------------


def lowered_cap(server: MlflowServer, openai_fake, workers: list[WorkerConnection]) -> tuple[str, float]:
    """Every worker loaded a $1,000 cap and served two calls; then `pulumi up` lowers it to $0.30,
    the write served by the first worker.  Returns the endpoint name and the time of the write."""
    endpoint, policy_id = capped_endpoint(server, openai_fake, workers, 1000.0)
    for worker in workers:
        assert [worker.invoke(endpoint.name), worker.invoke(endpoint.name)] == [200, 200]
    written_at = time.monotonic()
    workers[0].update_budget(policy_id, 0.30)
    return endpoint.name, written_at


@pytest.mark.parametrize(
    "workers, server",
    [("in_memory_server", "in_memory_server"), ("redis_server_default_refresh", "redis_server_default_refresh")],
    indirect=["workers"],
)
def test_a_lowered_cap_binds_only_the_worker_that_served_the_write(request, workers, server, openai_fake):
    endpoint_name, _ = lowered_cap(request.getfixturevalue(server), openai_fake, workers)

    # The other workers keep the $1,000 cap until their refresh interval (600 s) passes:
    # Redis shares the spend, not the policy's amount.
    assert [worker.invoke(endpoint_name) for worker in workers] == [429, 200, 200, 200]


@pytest.mark.parametrize("workers", ["recommended_server"], indirect=True)
def test_recommended_settings_hold_the_cap_and_bite_within_the_refresh_interval(
    recommended_server, workers, openai_fake
):
    endpoint, _ = capped_endpoint(recommended_server, openai_fake, workers, CAP_USD)
    statuses = [worker.invoke(endpoint.name) for _ in range(3) for worker in workers]
    assert statuses.count(200) == CALLS_WITHIN_CAP

    endpoint_name, written_at = lowered_cap(recommended_server, openai_fake, workers)
    # Poll every worker until each has rejected and the interval has passed: (seconds after the
    # write the request was sent, worker, status) for every call.
    polls: list[tuple[float, int, int]] = []
    deadline = written_at + RECOMMENDED_REFRESH_SECONDS + 60
    while time.monotonic() < deadline:
        for worker in workers:
            sent = time.monotonic() - written_at
            polls.append((sent, worker.pid, worker.invoke(endpoint_name)))
        rejected_by = {pid for _, pid, status in polls if status == 429}
        # Done once every worker has rejected and has been asked at least once a whole interval
        # after the write (a round can straddle the interval: its first workers asked before it).
        asked_late = {pid for sent, pid, _ in polls if sent >= RECOMMENDED_REFRESH_SECONDS}
        if len(rejected_by) == len(workers) and len(asked_late) == len(workers):
            break
        time.sleep(0.25)

    # MLflow's guarantee: a worker refreshes on its first request once the interval has passed
    # since its last load, which came before the write; so every request sent one interval after
    # the write meets the new cap, on every worker.
    late = [(sent, pid, status) for sent, pid, status in polls if sent >= RECOMMENDED_REFRESH_SECONDS]
    assert late and all(status == 429 for _, _, status in late), late
    assert {pid for _, pid, _ in late} == {worker.pid for worker in workers}
    first_429 = {pid: min(sent for sent, p, status in polls if p == pid and status == 429) for pid in rejected_by}
    admitted_after_write = sum(status == 200 for _, _, status in polls)
    print(
        f"lowered cap reached every worker after {max(first_429.values()):.1f} s "
        f"(interval {RECOMMENDED_REFRESH_SECONDS} s); {admitted_after_write} polling calls admitted after the write"
    )


# --- budget_status tells enforcement from configuration ----------------------------------------


def status(server: MlflowServer, policy_id: str, tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m budget_status --enforcement`` on a stack whose one budget is ``policy_id``."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"gateway_budgets": {"probe": {"hard_stop_policy_id": policy_id}}}))
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.tracking_uri}
    command = [sys.executable, "-m", "budget_status", "--outputs", str(outputs), "--enforcement", *extra]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


def uneven_spend(server: MlflowServer, openai_fake, workers: list[WorkerConnection]) -> str:
    """A $1,000 cap every worker loaded, then 0, 1, 2 and 3 calls on the four workers."""
    endpoint, policy_id = capped_endpoint(server, openai_fake, workers, 1000.0)
    for calls, worker in enumerate(workers):
        assert [worker.invoke(endpoint.name) for _ in range(calls)] == [200] * calls
    return policy_id


@pytest.mark.parametrize("workers", ["in_memory_server"], indirect=True)
def test_budget_status_names_per_worker_tracking_on_a_default_server(in_memory_server, workers, openai_fake, tmp_path):
    policy_id = uneven_spend(in_memory_server, openai_fake, workers)

    result = status(in_memory_server, policy_id, tmp_path)

    assert result.returncode == EXIT_NOT_IN_FORCE, result.stderr
    assert "NOT IN FORCE: the MLflow server tracks budgets per worker" in result.stderr
    assert "MLFLOW_GATEWAY_BUDGET_REDIS_URL" in result.stderr
    # Written just now, MLflow's 600 s default interval: not yet in force everywhere.
    assert "(no team) · probe · hard stop: not yet enforced everywhere until " in result.stderr


@pytest.mark.parametrize("workers", ["recommended_server"], indirect=True)
def test_budget_status_stays_quiet_on_a_correctly_configured_server(recommended_server, workers, openai_fake, tmp_path):
    policy_id = uneven_spend(recommended_server, openai_fake, workers)
    # Once the last write is one interval old the cap is in force everywhere (the default server's
    # test above shows the "not yet enforced everywhere" line while it is not).
    time.sleep(RECOMMENDED_REFRESH_SECONDS + 1)

    result = status(recommended_server, policy_id, tmp_path, "--refresh-interval", str(RECOMMENDED_REFRESH_SECONDS))

    assert result.returncode == 0, result.stderr
    assert "NOT IN FORCE" not in result.stderr
