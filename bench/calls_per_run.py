"""(2) HTTP requests per run, counted by the servers themselves, for a stack of N teams.

The real ``__main__.py`` runs under mocks through the test engine (``harness.engine``),
which forwards every resource to the SDK's provider server, against the Databricks account
emulator (its own process, request log) and a real ``mlflow server`` (access log).  As with the
Pulumi CLI, every run gets a fresh provider server process.

Each team declares: a serverless budget policy with grants and an experiment tag, and a gateway
budget with two ALERT thresholds, a REJECT hard stop with its ALERT announcement and a webhook
with a signing secret, so 8 resources per team.

    python -m bench.calls_per_run [--teams 200]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    Progress,
    databricks_emulator,
    emit,
    machine_context,
    mlflow_server,
    provider_server,
    table,
    use_provider_env,
)

RESOURCES_PER_TEAM = 8
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# MLflow answers these POSTs without changing anything.
MLFLOW_READ_SUFFIXES = ("/get", "/search", "/list", "/get-by-name")
HOST_METADATA = "/.well-known/databricks-config"
# Every route the five providers call; anything else came from another process (see `foreign`).
PROVIDER_ROUTES = re.compile(
    r"/api/2\.1/accounts/[^/]+/budget-policies(/[^/]+)?$|/access-control/rule-sets$|^/\.well-known/databricks-config$"
    r"|/gateway/budgets/(create|get|update|delete)$|/mlflow/webhooks(/[^/]+)?$"
    r"|/mlflow/experiments/(get|get-by-name|set-experiment-tag|delete-experiment-tag)$|/gateway/endpoints/get$"
)

_IDS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "{id}"),
    (re.compile(r"\b(bp|wh|e)-[0-9a-f]{32}\b"), r"\1-{id}"),
    (re.compile(r"/\d+(?=/|$)"), "/{n}"),
]


# --- the stack ---------------------------------------------------------------------------------


def teams_config(experiment_ids: list[str], cost_center_of_first: str = "1000") -> list[dict[str, Any]]:
    return [
        {
            "name": f"team-{i:03d}",
            "serverless": {
                "customTags": {"cost-center": cost_center_of_first if i == 0 else str(1000 + i)},
                "users": [f"groups/team-{i:03d}"],
                "managers": [f"users/lead-{i:03d}@example.com"],
                "experiments": [experiment_id],
            },
            "gateway": {
                "limitUsd": 100 + i,
                "window": "monthly",
                "alertThresholds": [50, 80],
                "hardStop": True,
                "webhook": {
                    "url": f"https://hooks.slack.com/services/T0/B0/team-{i:03d}",
                    "secret": f"whsec-{i:03d}-7f3a",
                },
            },
        }
        for i, experiment_id in enumerate(experiment_ids)
    ]


# --- counting ----------------------------------------------------------------------------------


@dataclass
class Request:
    server: str
    method: str
    path: str

    @property
    def is_write(self) -> bool:
        if self.method not in WRITE_METHODS:
            return False
        return not (self.server == "mlflow" and self.path.endswith(MLFLOW_READ_SUFFIXES))

    @property
    def is_client_setup(self) -> bool:
        return self.path == HOST_METADATA

    @property
    def route(self) -> str:
        path = self.path
        for pattern, placeholder in _IDS:
            path = pattern.sub(placeholder, path)
        return f"{self.method} {path}"


class ServerLogs:
    """Requests both servers logged since ``mark()``."""

    def __init__(self, emulator, mlflow) -> None:
        self.emulator, self.mlflow = emulator, mlflow
        self._mlflow_mark = 0

    def mark(self) -> None:
        self.emulator.control.reset_requests()
        self._mlflow_mark = self.mlflow.mark()

    def since_mark(self) -> list[Request]:
        time.sleep(0.2)  # the access log line is written just after the response
        databricks = [Request("databricks", r["method"], r["path"]) for r in self.emulator.control.requests]
        mlflow = [Request("mlflow", r.method, r.path) for r in self.mlflow.requests(self._mlflow_mark)]
        return databricks + mlflow


@dataclass
class RunFigures:
    name: str
    seconds: float
    steps: dict[str, int]
    requests: list[Request] = field(default_factory=list)

    def count(self, server: str, writes: bool, setup: bool = False) -> int:
        return sum(
            1 for r in self.requests
            if r.server == server and r.is_write == writes and r.is_client_setup == setup
        )  # fmt: skip

    @property
    def foreign(self) -> list[Request]:
        """Requests no provider makes: another process talking to our servers."""
        return [r for r in self.requests if not PROVIDER_ROUTES.search(r.path)]

    def routes(self) -> collections.Counter:
        return collections.Counter(f"{r.server}: {r.route}" for r in self.requests)


# --- runs --------------------------------------------------------------------------------------


def run(name: str, action, logs: ServerLogs, engine, config: dict, resources: int) -> RunFigures:
    """One engine command with a fresh provider server, as the Pulumi CLI starts one per command."""
    logs.mark()
    with provider_server(config) as server, Progress(f"calls_per_run: {name}", total=resources) as progress:
        engine.server = server
        engine.on_step = progress.advance
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    figures = RunFigures(name, seconds, result.summary(), logs.since_mark())
    print(f"  {name}: {seconds:.1f}s, {figures.steps}, {len(figures.requests)} requests", flush=True)
    return figures


def run_scenario(teams: int) -> tuple[list[RunFigures], int]:
    from mlflow import MlflowClient

    from harness.engine import LocalEngine

    with contextlib.ExitStack() as servers:
        with Progress("calls_per_run: starting the emulator and mlflow server"):
            emulator, mlflow = servers.enter_context(databricks_emulator()), servers.enter_context(mlflow_server())
        client = MlflowClient(mlflow.tracking_uri)
        batch = uuid.uuid4().hex[:6]
        with Progress("calls_per_run: one experiment per team", total=teams) as progress:
            experiment_ids = []
            for i in range(teams):
                experiment_ids.append(client.create_experiment(f"/Shared/bench-{batch}/team-{i:03d}"))
                progress.advance()
        base = {**emulator.config(), "mlflow:trackingUri": mlflow.tracking_uri}
        stack = {**base, "ml-budgets:teams": teams_config(experiment_ids)}
        changed = {**base, "ml-budgets:teams": teams_config(experiment_ids, cost_center_of_first="1001")}
        logs = ServerLogs(emulator, mlflow)
        engine = LocalEngine(server=None)
        n = teams * RESOURCES_PER_TEAM
        runs = [
            run("preview (new stack)", lambda: engine.preview(stack), logs, engine, base, n),
            run("up (first)", lambda: engine.up(stack), logs, engine, base, n),
            run("up (no change)", lambda: engine.up(stack), logs, engine, base, n),
            run("preview (no change)", lambda: engine.preview(stack), logs, engine, base, n),
            run("refresh", engine.refresh, logs, engine, base, n),
            run("preview (one field)", lambda: engine.preview(changed), logs, engine, base, n),
            run("up (one field)", lambda: engine.up(changed), logs, engine, base, n),
        ]
        # No destroy: the servers are thrown away, and MLflow's budget deletes cost as much as its creates.
    return runs, len(engine.state)


# --- report ------------------------------------------------------------------------------------

EXPECTED = {
    "preview (new stack)": ("0 requests", lambda f, n: not f.requests),
    "up (first)": ("context", lambda f, n: None),
    "up (no change)": ("0 writes, 0 reads (diff is local)", lambda f, n: _api(f, True) == 0 and _api(f, False) == 0),
    "preview (no change)": ("0 requests", lambda f, n: _api(f, True) == 0 and _api(f, False) == 0),
    "refresh": ("1 read per resource, 0 writes", lambda f, n: _api(f, True) == 0 and _api(f, False) == n),
    "preview (one field)": ("0 requests", lambda f, n: _api(f, True) == 0 and _api(f, False) == 0),
    "up (one field)": ("exactly 1 write (PATCH), 0 reads", lambda f, n: _api(f, True) == 1 and _api(f, False) == 0),
}


def _api(figures: RunFigures, writes: bool) -> int:
    return figures.count("databricks", writes) + figures.count("mlflow", writes)


def runs_table(runs: list[RunFigures], resources: int) -> str:
    headers = [
        "run", "wall s", "engine steps", "Databricks reads", "Databricks writes", "MLflow reads",
        "MLflow writes", "client set-up GETs", "reads/resource", "writes/resource", "expected", "met",
    ]  # fmt: skip
    rows = []
    for f in runs:
        reads, writes = _api(f, False), _api(f, True)
        expectation, check = EXPECTED.get(f.name, ("", lambda *_: None))
        met = check(f, resources)
        rows.append([
            f.name, round(f.seconds, 1), _steps(f.steps), f.count("databricks", False), f.count("databricks", True),
            f.count("mlflow", False), f.count("mlflow", True), f.count("databricks", False, setup=True),
            reads / resources, writes / resources, expectation, "–" if met is None else met,
        ])  # fmt: skip
    return table(headers, rows, title=f"Requests per run, {resources} resources (counted by the servers)")


def foreign_warning(runs: list[RunFigures]) -> str:
    foreign = collections.Counter(f"{f.name}: {r.route}" for f in runs for r in f.foreign)
    if not foreign:
        return "No request from outside this benchmark reached the servers."
    return (
        "WARNING: requests no provider makes reached the servers (another process on a colliding port?); "
        "figures may be skewed, run again: " + "; ".join(f"{route} x{n}" for route, n in foreign.items())
    )


def routes_table(runs: list[RunFigures]) -> str:
    rows = [[f.name, route, count] for f in runs for route, count in sorted(f.routes().items())]
    return table(["run", "route", "requests"], rows, title="Requests by route")


def _steps(steps: dict[str, int]) -> str:
    return ", ".join(f"{count} {step}" for step, count in sorted(steps.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls_per_run", description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=200, help="teams in the generated stack (default 200)")
    args = parser.parse_args(argv)
    use_provider_env()
    started = time.perf_counter()
    runs, resources = run_scenario(args.teams)
    header = (
        "# (2) Calls per run\n"
        f"{machine_context()}\n"
        f"{args.teams} teams x {RESOURCES_PER_TEAM} resources (policy, grants, experiment tag, webhook with secret, "
        "3 ALERT + 1 REJECT gateway budgets). Engine: harness.engine.LocalEngine (program under mocks, "
        "steps through a fresh `python -m pulumi.dynamic` per run). Reads: GET, and MLflow's POST .../get|search|list. "
        "Client set-up GETs = the databricks-sdk fetching host metadata when a provider process builds its client "
        "(counted apart, not in reads)."
    )
    blocks = [
        header,
        runs_table(runs, resources),
        foreign_warning(runs),
        routes_table(runs),
        f"Runtime: {time.perf_counter() - started:.0f} s",
    ]
    emit("calls_per_run", "\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
