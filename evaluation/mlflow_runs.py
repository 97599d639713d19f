"""What the evaluator does to MLflow around a run: where it runs (tracking URI, an environment
variable for its duration), its budget metrics, and a finished run marked FAILED."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    timestamp_ms = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(name, value, timestamp_ms, 0) for name, value in metrics.items()])


def mark_finished_run_failed(client: MlflowClient, run_id: str) -> None:
    if client.get_run(run_id).info.status == "FINISHED":
        client.set_terminated(run_id, status="FAILED")


@contextlib.contextmanager
def tracking_uri(uri: str | None) -> Iterator[None]:
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    _set_tracking_uri(uri)
    try:
        yield
    finally:
        _set_tracking_uri(previous)


def _set_tracking_uri(uri: str | None) -> None:
    # None unsets it (MLflow's default applies again); set_tracking_uri's annotation omits None.
    mlflow.set_tracking_uri(uri)  # type: ignore[arg-type]


@contextlib.contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
