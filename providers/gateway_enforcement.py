"""When every worker of an MLflow server enforces a gateway budget write (mlflow 3.17, read in
``mlflow/gateway/budget_tracker``).

Each worker process of ``mlflow server`` (4 by default) keeps its own copy of the budget policies
and reloads them from the database only when ``MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL`` seconds
(600 by default) have passed since its last load; a REST budget write makes only the worker that
served it reload at once.  So a created or changed cap is in force on every worker at most one
refresh interval after the write, and at once on a one-worker server that served the write (a
write made straight into the server's database, a ``sqlite:///`` stack, waits for the refresh on
every worker).  (With the Redis tracker a
*new* policy reaches every worker at once, a changed amount does not: the interval is the bound
for both.)

Without ``MLFLOW_GATEWAY_BUDGET_REDIS_URL`` every worker also counts spend on its own, so a
REJECT cap lets through up to one cap per worker: ``per_worker_caps`` names that configuration.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from providers._base import Failures

MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS = 600  # MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL
MLFLOW_DEFAULT_WORKERS = 4  # mlflow server --workers
TRACKERS = ("in-memory", "redis")
MAX_REFRESH_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_WORKERS = 1024


def validate_refresh_interval(value: Any, failures: Failures, prop: str = "refresh_interval_seconds") -> Any:
    """Seconds, as ``MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL`` takes them; None: MLflow's 600."""
    return _whole_number(value, failures, prop, 1, MAX_REFRESH_INTERVAL_SECONDS, "seconds")


def validate_workers(value: Any, failures: Failures, prop: str = "gateway_workers") -> Any:
    """``mlflow server --workers``; None: not declared (MLflow's default is 4)."""
    return _whole_number(value, failures, prop, 1, MAX_WORKERS, "worker processes")


def validate_tracker(value: Any, failures: Failures, prop: str = "budget_tracker") -> Any:
    """``redis`` (``MLFLOW_GATEWAY_BUDGET_REDIS_URL`` set) or ``in-memory``; None: not declared."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in TRACKERS:
        return value.strip().lower()
    failures.add(prop, f"must be one of {', '.join(TRACKERS)} (got {value!r})")
    return value


def _whole_number(value: Any, failures: Failures, prop: str, low: int, high: int, what: str) -> Any:
    if value is None:
        return None
    # Pulumi sends every number as a float: 30.0 is fine, 30.5 is not.
    whole = (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value == int(value)
    )
    if not whole or not low <= value <= high:
        failures.add(prop, f"must be a whole number of {what} from {low} to {high} (got {value!r})")
        return value
    return int(value)


def propagation_seconds(workers: int | None, refresh_interval_seconds: int | None) -> int:
    """Longest time from a budget write until every worker enforces it."""
    if workers == 1:
        return 0  # the one worker served the write and reloaded at once
    return refresh_interval_seconds or MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS


def enforced_everywhere_at(written_at_ms: int, workers: int | None, refresh_interval_seconds: int | None) -> str:
    """ISO 8601 UTC time by which every worker enforces a write made at ``written_at_ms``."""
    written = datetime.fromtimestamp(written_at_ms / 1000, tz=UTC)
    at = written + timedelta(seconds=propagation_seconds(workers, refresh_interval_seconds))
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def per_worker_caps(workers: int | None, tracker: str | None) -> bool:
    """A declared server whose workers each count spend on their own (a cap admits up to one per worker)."""
    return tracker == "in-memory" and (workers is None or workers > 1)


def per_worker_caps_warning(workers: int | None, where: str) -> str:
    count = f"{workers} workers" if workers else f"MLflow's default {MLFLOW_DEFAULT_WORKERS} workers"
    return (
        f"{where}: the MLflow server runs {count} with the in-memory budget tracker: each worker "
        "counts spend on its own, so a REJECT cap lets through up to one cap per worker (measured: "
        "4 workers admitted 4.2x the cap). Set MLFLOW_GATEWAY_BUDGET_REDIS_URL on the server and "
        "budgetTracker: redis here, or run it with --workers 1 (README, 'Caps on a production MLflow server')."
    )
