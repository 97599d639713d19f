"""Are the caps in force on every worker of the MLflow server?  Told from the outside.

MLflow 3.17's gateway keeps budget policies per worker process and reloads them every
``MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL`` seconds (600 by default); without
``MLFLOW_GATEWAY_BUDGET_REDIS_URL`` each worker also counts spend on its own, so a REJECT cap lets
through up to one cap per worker (``providers/gateway_enforcement.py``).  The windows endpoint
answers from the worker that serves the request, so reading it several times, each time on a new
connection (the kernel hands new connections to any worker), shows:

* **per-worker tracking**: a policy's spend that goes *down* from one read to a later one in the
  same window (shared spend only grows), or a policy some reads list and others do not;
* **caps not yet enforced everywhere**: a policy written less than one refresh interval ago
  (its ``last_updated_at``), in force on every worker only from then plus the interval.

Both mean "the caps are not in force as written": ``EXIT_NOT_IN_FORCE``.  A server whose reads all
agree is not proven shared (a quiet server shows no difference): the stack config's
``ml-budgets:mlflowServer`` says what it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

EXIT_NOT_IN_FORCE = 4
DEFAULT_READS = 12
MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS = 600
WINDOWS_PATH = "/api/3.0/mlflow/gateway/budgets/windows"
SPEND_TOLERANCE_USD = 1e-9


@dataclass(frozen=True)
class WindowRead:
    """One answer of the windows endpoint: policy id -> (window start ms, current spend)."""

    windows: dict[str, tuple[int, float]]


@dataclass(frozen=True)
class Finding:
    policy_id: str | None  # None: the whole server
    message: str


def refresh_interval_of(config_path: Path | None, explicit: int | None) -> int:
    """``--refresh-interval``, else the stack config's ``ml-budgets:mlflowServer``, else MLflow's 600 s."""
    if explicit is not None:
        return explicit
    if config_path is not None:
        import yaml

        try:
            config = (yaml.safe_load(config_path.read_text()) or {}).get("config") or {}
        except (OSError, yaml.YAMLError):
            config = {}
        server = config.get("ml-budgets:mlflowServer")
        seconds = server.get("budgetRefreshIntervalSeconds") if isinstance(server, Mapping) else None
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            return seconds
    return MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS


def read_windows(base_url: str, reads: int, auth: Any = None, verify: Any = True) -> list[WindowRead]:
    """``reads`` answers of the windows endpoint, each on a new connection (so from any worker)."""
    answers = []
    for _ in range(reads):
        response = requests.get(
            base_url.rstrip("/") + WINDOWS_PATH, headers={"Connection": "close"}, auth=auth, verify=verify, timeout=30
        )
        response.raise_for_status()
        answers.append(
            WindowRead(
                {
                    w["budget_policy_id"]: (int(w.get("window_start_ms", 0)), float(w.get("current_spend", 0.0)))
                    for w in response.json().get("windows", [])
                }
            )
        )
    return answers


def per_worker_findings(reads: list[WindowRead], policy_ids: Iterable[str]) -> list[Finding]:
    """Signs that the workers track these policies each on their own."""
    findings = []
    for policy_id in policy_ids:
        seen = [read.windows.get(policy_id) for read in reads]
        known = [window for window in seen if window is not None]
        if known and len(known) < len(seen):
            findings.append(
                Finding(
                    policy_id,
                    f"{len(seen) - len(known)} of {len(seen)} reads of the gateway's windows do not know this "
                    "budget: some workers have not loaded it",
                )
            )
            continue
        drop = _largest_drop(known)
        if drop > SPEND_TOLERANCE_USD:
            findings.append(
                Finding(
                    policy_id,
                    f"its spend went down by ${drop:,.2f} between two reads of the same window: the workers "
                    "count spend each on their own",
                )
            )
    return findings


def _largest_drop(windows: list[tuple[int, float]]) -> float:
    largest, highest = 0.0, dict[int, float]()
    for start, spend in windows:
        peak = highest.get(start, spend)
        largest = max(largest, peak - spend)
        highest[start] = max(peak, spend)
    return largest


def not_yet_enforced(policies: Mapping[str, Any], refresh_interval_seconds: int, now: datetime) -> dict[str, str]:
    """Policy id -> "HH:MM" (UTC) for policies written less than one refresh interval before ``now``."""
    pending = {}
    for policy_id, policy in policies.items():
        written_ms = int(getattr(policy, "last_updated_at", 0) or getattr(policy, "created_at", 0) or 0)
        everywhere = datetime.fromtimestamp(written_ms / 1000 + refresh_interval_seconds, tz=UTC)
        if written_ms and everywhere > now:
            pending[policy_id] = everywhere.strftime("%H:%M UTC")
    return pending


def per_worker_message(findings: list[Finding]) -> str:
    return (
        "the MLflow server tracks budgets per worker ("
        + "; ".join(f.message for f in findings[:3])
        + "): a REJECT cap lets through up to one cap per worker. Set MLFLOW_GATEWAY_BUDGET_REDIS_URL on "
        "the server or run it with --workers 1 (README, 'Caps on a production MLflow server')"
    )


def assess(rows: list[Any], config: Any, refresh_interval_seconds: int, reads: int, now: datetime) -> list[str]:
    """Lines naming every stack budget not in force on every worker (empty: all in force)."""
    from budget_status.stack import GATEWAY
    from providers.core import host_creds, tracking_server_from_config, tracking_store

    gateway_rows = [row for row in rows if row.source == GATEWAY and not row.unavailable]
    server = tracking_server_from_config(config)
    if not gateway_rows or server is None or not server.is_http:
        return []
    ids = {row.id for row in gateway_rows}
    policies = {
        p.budget_policy_id: p
        for p in tracking_store(server).list_budget_policies(max_results=10_000)
        if p.budget_policy_id in ids
    }
    creds = host_creds(server)
    auth: Any = (creds.username, creds.password) if creds.username else None
    if creds.token:
        auth = _Bearer(creds.token)
    verify = not creds.ignore_tls_verification and (creds.server_cert_path or True)
    lines = []
    findings = per_worker_findings(read_windows(server.public_uri, reads, auth, verify), sorted(policies))
    if findings:
        lines.append(per_worker_message(findings))
    for row in gateway_rows:
        until = not_yet_enforced(
            {row.id: policies[row.id]} if row.id in policies else {}, refresh_interval_seconds, now
        )
        if until:
            lines.append(f"{row.team} · {row.budget} · {row.tier}: not yet enforced everywhere until {until[row.id]}")
    return lines


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request
