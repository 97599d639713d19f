"""GatewayBudgetPolicy says when every worker of the MLflow server enforces a write
(``enforced_everywhere_at``), from how the stack declares the server; bad declarations fail at check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.deployment import Deployment
from providers import GatewayBudgetPolicy
from providers.gateway_enforcement import (
    MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS,
    per_worker_caps,
    propagation_seconds,
)

# A GLOBAL ALERT far above any spend: inert for other tests sharing the server.
INERT = {"amount_usd": 100_000, "window": "monthly", "action": "ALERT"}


def written_at(backend, policy_id: str) -> datetime:
    policy = backend.tracking_store().get_budget_policy(policy_id)
    return datetime.fromtimestamp(policy.last_updated_at / 1000, tz=UTC).replace(microsecond=0)


def at(outputs) -> datetime:
    return datetime.fromisoformat(outputs["enforced_everywhere_at"].replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "declared, delay",
    [
        ({}, MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS),  # nothing said: MLflow's defaults
        ({"refresh_interval_seconds": 30, "budget_tracker": "redis", "gateway_workers": 8}, 30),
        ({"gateway_workers": 1}, 0),  # the one worker reloads on the write it serves (server only)
    ],
)
def test_enforced_everywhere_at_is_the_write_plus_the_refresh_interval(mlflow_backend, deploy, declared, delay):
    if mlflow_backend.kind == "sqlite" and declared.get("gateway_workers") == 1:
        delay = MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS  # written into the database: no worker is told
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    assert policy.up(**INERT, **declared) == "create"
    assert at(policy.outputs) == written_at(mlflow_backend, policy.id) + timedelta(seconds=delay)

    # Saying more about the server changes no budget: no update, no new time.
    before = policy.outputs["enforced_everywhere_at"]
    assert policy.diff(**INERT, refresh_interval_seconds=5).changes == "none"

    assert policy.up(**{**INERT, "amount_usd": 200_000}, **declared) == "update"
    assert at(policy.outputs) == written_at(mlflow_backend, policy.id) + timedelta(seconds=delay)
    assert policy.outputs["enforced_everywhere_at"] >= before
    assert policy.refresh().outs["enforced_everywhere_at"] == policy.outputs["enforced_everywhere_at"]


@pytest.mark.parametrize(
    "declared, prop",
    [
        ({"refresh_interval_seconds": 0}, "refresh_interval_seconds"),
        ({"refresh_interval_seconds": 2.5}, "refresh_interval_seconds"),
        ({"gateway_workers": 0}, "gateway_workers"),
        ({"gateway_workers": True}, "gateway_workers"),
        ({"budget_tracker": "memcached"}, "budget_tracker"),
    ],
)
def test_a_bad_server_declaration_fails_at_check(mlflow_backend, declared, prop):
    outcome = Deployment(mlflow_backend.provider, GatewayBudgetPolicy).check(**INERT, **declared)
    assert outcome.failed_properties() == {prop}


def test_check_normalizes_the_declaration():
    from providers.gateway_budget_policy import check_inputs

    inputs, failures = check_inputs({**INERT, "gateway_workers": 4.0, "budget_tracker": " Redis "})
    assert not failures
    assert (inputs["gateway_workers"], inputs["budget_tracker"]) == (4, "redis")


def test_which_servers_count_spend_per_worker():
    assert per_worker_caps(4, "in-memory") and per_worker_caps(None, "in-memory")
    assert not per_worker_caps(1, "in-memory")
    assert not per_worker_caps(4, "redis")
    assert not per_worker_caps(4, None)  # undeclared: nothing to flag (README says what to declare)
    assert propagation_seconds(None, None) == 600 and propagation_seconds(3, 20) == 20
