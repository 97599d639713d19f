"""(6) Wall time of ``python -m budget_status`` for a stack with 600 gateway + 600 account budgets.

One real ``mlflow server`` holds the gateway budget policies (three per team: two ALERT tiers and
a REJECT hard stop, as ``GatewayBudget`` declares them) and the Databricks account emulator (its
own process) the AI Gateway budgets with a blocking threshold and some usage.  The stack outputs
and a ``Pulumi.<stack>.yaml`` name both servers, as a user would have them.

The command is run as users run it, a new process each time (start-up and imports included), in
two trees, interleaved: **before**, the code at ``--before`` (default: the commit this work
started from, extracted with ``git archive``), and **after**, this tree.  Both are timed with
``--json`` and with the table (``COLUMNS=120``); the requests each run made are counted by the
servers themselves (MLflow's access log, the emulator's request log).

    python -m bench.status_speed [--budgets 600] [--repeats 5] [--before b372c52]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    PROJECT_ROOT,
    Progress,
    databricks_emulator,
    emit,
    machine_context,
    median,
    mlflow_server,
    ratio,
    table,
    use_provider_env,
)

BASELINE = "b372c52"  # main when this benchmark was written: budget_status before issue 25
GOAL_SECONDS = 2.0


def create_gateway_policies(server_url: str, count: int) -> list[str]:
    """``count`` inert policies (caps never reached), created 8 at a time over REST."""
    from mlflow.entities.gateway_budget_policy import (
        BudgetAction,
        BudgetDuration,
        BudgetDurationUnit,
        BudgetTargetScope,
        BudgetUnit,
    )
    from mlflow.tracking._tracking_service.utils import _get_store

    store = _get_store(server_url)

    def create(i: int) -> str:
        policy = store.create_budget_policy(
            budget_unit=BudgetUnit.USD,
            budget_amount=1_000_000 * (0.5, 0.8, 1.0)[i % 3],
            duration=BudgetDuration(BudgetDurationUnit.DAYS, 1),
            target_scope=BudgetTargetScope.GLOBAL,
            budget_action=BudgetAction(("ALERT", "ALERT", "REJECT")[i % 3]),
        )
        progress.advance()
        return str(policy.budget_policy_id)

    with (
        Progress("status_speed: MLflow gateway budgets created", total=count) as progress,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        return list(pool.map(create, range(count)))


def create_account_budgets(emulator: Any, count: int) -> list[str]:
    """``count`` AI Gateway budgets with a blocking threshold and $0–89 of usage, 8 at a time."""
    from providers.account_budget import _create_body

    client, control = emulator.account_client(), emulator.control

    def create(i: int) -> str:
        props = {
            "display_name": f"team-{i:03d} AI Gateway",
            "resource_type": "AI_GATEWAY",
            "tags": {"team": [f"team-{i:03d}"]},
            "alerts": [{"threshold_usd": 100, "notify": [], "block_usage": True}],
        }
        budget_id = str(client.budgets.create(budget=_create_body(props)).budget.budget_configuration_id)
        control.add_budget_usage(budget_id, str(i % 90))
        progress.advance()
        return budget_id

    with (
        Progress("status_speed: Databricks budgets created", total=count) as progress,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        return list(pool.map(create, range(count)))


def stack_outputs(gateway_ids: list[str], account_ids: list[str]) -> dict[str, Any]:
    teams: dict[str, dict[str, Any]] = {}
    for i, budget_id in enumerate(account_ids):
        teams[f"team-{i:03d}"] = {"databricks_gateway_budget_id": budget_id}
    for t in range(len(gateway_ids) // 3):
        alert_50, alert_80, hard_stop = gateway_ids[3 * t : 3 * t + 3]
        teams.setdefault(f"team-{t:03d}", {}).update(
            gateway_alert_policy_ids={"50pct": alert_50, "80pct": alert_80}, gateway_hard_stop_policy_id=hard_stop
        )
    return {"teams": teams, "gateway_budgets": {}}


@contextlib.contextmanager
def tree_at(commit: str) -> Iterator[Path]:
    """This repository's files at ``commit``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench-status-before-") as directory:
        archive = subprocess.run(["git", "archive", commit], cwd=PROJECT_ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory)


def run_status(tree: Path, workdir: Path, table_mode: bool) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user + system) of the process, its exit code and its output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "PYTHONPATH": str(tree),
        "COLUMNS": "120",
    }
    command = [sys.executable, "-m", "budget_status", "--outputs", "outputs.json", "--stack", "bench"]
    if not table_mode:
        command.append("--json")
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output = (stdout if not table_mode else stderr).read().decode()
    return seconds, usage.ru_utime + usage.ru_stime, process.returncode, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, default=600, help="gateway budgets, and as many account budgets")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default=BASELINE, help="commit to compare with (git archive)")
    args = parser.parse_args()
    use_provider_env()
    context = machine_context()

    with (
        mlflow_server() as server,
        databricks_emulator() as emulator,
        tree_at(args.before) as before_tree,
        tempfile.TemporaryDirectory(prefix="bench-status-") as workdir_name,
    ):
        gateway_ids = create_gateway_policies(server.tracking_uri, args.budgets)
        account_ids = create_account_budgets(emulator, args.budgets)
        workdir = Path(workdir_name)
        (workdir / "outputs.json").write_text(json.dumps(stack_outputs(gateway_ids, account_ids)))
        config = {"mlflow:trackingUri": server.tracking_uri, **emulator.config()}
        (workdir / "Pulumi.bench.yaml").write_text(json.dumps({"config": config}))  # JSON is YAML

        trees = {"before": before_tree, "after": PROJECT_ROOT}
        samples: dict[tuple[str, str], list[float]] = {(t, m): [] for t in trees for m in ("json", "table")}
        cpu: dict[tuple[str, str], list[float]] = {key: [] for key in samples}
        request_counts: dict[tuple[str, str], tuple[int, int]] = {}
        codes: dict[tuple[str, str], set[int]] = {key: set() for key in samples}
        rounds = Progress("status_speed: rounds (4 runs each)", total=args.repeats + 1, every_seconds=0)
        for repeat in range(args.repeats + 1):  # the first round warms the page cache and is dropped
            for mode in ("json", "table"):
                for name, tree in trees.items():
                    mark = server.mark()
                    emulator.control.reset_requests()
                    seconds, cpu_seconds, code, output = run_status(tree, workdir, mode == "table")
                    if code not in (0, 1, 2, 3):
                        raise SystemExit(f"{name} {mode}: exit {code}\n{output[-2000:]}")
                    if mode == "json":
                        report = json.loads(output)
                        shown = len(report["budgets"])
                        unavailable = sum(row["unavailable"] for row in report["budgets"])
                        if shown < 2 * args.budgets or unavailable:
                            raise SystemExit(f"{name}: {shown} rows, {unavailable} unavailable")
                    request_counts[(name, mode)] = (sum(server.request_counts(mark).values()), emulator.control.count())
                    codes[(name, mode)].add(code)
                    if repeat:
                        samples[(name, mode)].append(seconds)
                        cpu[(name, mode)].append(cpu_seconds)
            rounds.advance()

    rows: list[list[Any]] = []
    for mode in ("json", "table"):
        for name in trees:
            times, cpu_times = samples[(name, mode)], cpu[(name, mode)]
            mlflow_requests, databricks_requests = request_counts[(name, mode)]
            rows.append(
                [
                    name,
                    "--json" if mode == "json" else "table, 120 columns",
                    f"{min(times):.2f}",
                    f"{median(times):.2f}",
                    f"{max(times):.2f}",
                    f"{median(cpu_times):.2f}",
                    mlflow_requests,
                    databricks_requests,
                    ",".join(map(str, sorted(codes[(name, mode)]))),
                ]
            )
        before, after = median(samples[("before", mode)]), median(samples[("after", mode)])
        cpu_ratio = ratio(median(cpu[("after", mode)]), median(cpu[("before", mode)]))
        rows.append(["after/before", "", "", f"{ratio(after, before):.2f}", "", f"{cpu_ratio:.2f}", "", "", ""])
    report = table(
        ["tree", "output", "min s", "median s", "max s", "CPU s (median)", "MLflow requests", "Databricks requests"]
        + ["exit"],
        rows,
        title=(
            f"budget_status wall time, a new process per run: {args.budgets} gateway + {args.budgets} account "
            f"budgets, {args.repeats} runs each (before = {args.before}, after = this tree; goal "
            f"≤ {GOAL_SECONDS:g} s)"
        ),
    )
    emit("status_speed", f"{report}\n\n{context}")


if __name__ == "__main__":
    main()
