"""(5) API calls of ``python -m budget_status`` per server, for stacks of 6 to 600 budgets.

A real ``mlflow server`` (its access log counts the requests) holds N gateway budget policies,
three per team (two ALERT tiers and a REJECT hard stop, as ``GatewayBudget`` declares them), and
the Databricks account emulator (its own process and request log) N AI Gateway budgets with a
blocking threshold and some usage; the stack outputs name them as ``pulumi stack output --json``
would.  MLflow: one list call and one windows call whatever N is.  Databricks: list calls only,
paged by the server (budgets: its page size; spend statuses: at most 100 a page, the API's cap),
never one call per budget.

    python -m bench.status_calls [--budgets 600]
"""

from __future__ import annotations

import argparse
import collections
import sys

from bench.common import (
    Progress,
    Stopwatch,
    databricks_emulator,
    emit,
    machine_context,
    median,
    mlflow_server,
    table,
    use_provider_env,
)

TIERS = (("50pct", "ALERT", 0.5), ("80pct", "ALERT", 0.8), ("hard-stop", "REJECT", 1.0))


def create_policies(store, count: int) -> list[str]:
    from mlflow.entities.gateway_budget_policy import (
        BudgetAction,
        BudgetDuration,
        BudgetDurationUnit,
        BudgetTargetScope,
        BudgetUnit,
    )

    ids = []
    with Progress("status_calls: MLflow gateway budgets created", total=count) as progress:
        for i in range(count):
            _, action, share = TIERS[i % 3]
            policy = store.create_budget_policy(
                budget_unit=BudgetUnit.USD,
                budget_amount=1_000_000 * share,  # never reached: inert
                duration=BudgetDuration(BudgetDurationUnit.DAYS, 1),
                target_scope=BudgetTargetScope.GLOBAL,
                budget_action=BudgetAction(action),
            )
            ids.append(policy.budget_policy_id)
            progress.advance()
    return ids


def outputs_for(ids: list[str]) -> dict:
    teams = {}
    for team_index in range(len(ids) // 3):
        alert_50, alert_80, hard_stop = ids[3 * team_index : 3 * team_index + 3]
        teams[f"team-{team_index:03d}"] = {
            "gateway_alert_policy_ids": {"50pct": alert_50, "80pct": alert_80},
            "gateway_hard_stop_policy_id": hard_stop,
        }
    return {"teams": teams, "gateway_budgets": {}}


def create_account_budgets(client, control, count: int) -> list[str]:
    from providers.account_budget import _create_body

    ids = []
    with Progress("status_calls: Databricks budgets created", total=count) as progress:
        for i in range(count):
            props = {
                "display_name": f"team-{i:03d} AI Gateway",
                "resource_type": "AI_GATEWAY",
                "tags": {"team": [f"team-{i:03d}"]},
                "alerts": [{"threshold_usd": 100, "notify": [], "block_usage": True}],
            }
            budget = client.budgets.create(budget=_create_body(props)).budget
            control.add_budget_usage(budget.budget_configuration_id, str(i % 120))
            ids.append(budget.budget_configuration_id)
            progress.advance()
    return ids


def account_rows(sizes: list[int], count: int, repeats: int) -> list[list]:
    from budget_status import collect
    from budget_status.stack import StackConfigFile

    rows = []
    with databricks_emulator() as emulator:
        ids = create_account_budgets(emulator.account_client(), emulator.control, count)
        config = StackConfigFile(emulator.config())
        for size in sizes:
            print(f"[status_calls: databricks] {size} budgets", file=sys.stderr, flush=True)
            outputs = {
                "teams": {
                    f"team-{i:03d}": {"databricks_gateway_budget_id": budget_id}
                    for i, budget_id in enumerate(ids[:size])
                }
            }
            watch = Stopwatch()
            for _ in range(repeats):
                emulator.control.reset_requests()
                with watch:
                    status_rows, calls = collect(outputs, config)
                listed = emulator.control.count("GET", "/budgets")
                statuses = emulator.control.count("GET", "/budget-spend-statuses")
                total = emulator.control.count()
            assert not any(r.unavailable for r in status_rows) and len(status_rows) == size
            rows.append(
                [
                    f"databricks ({count} in account)",
                    size,
                    total,
                    listed,
                    statuses,
                    sum(calls.values()),
                    round(median(watch.samples), 1),
                ]
            )
    return rows


def mlflow_rows(sizes: list[int], count: int, repeats: int) -> list[list]:
    from mlflow.tracking._tracking_service.utils import _get_store

    from budget_status import collect
    from budget_status.stack import StackConfigFile

    rows = []
    with mlflow_server() as server:
        ids = create_policies(_get_store(server.tracking_uri), count)
        config = StackConfigFile({"mlflow:trackingUri": server.tracking_uri})
        for size in sizes:
            print(f"[status_calls: mlflow] {size} budgets", file=sys.stderr, flush=True)
            outputs = outputs_for(ids[:size])
            watch = Stopwatch()
            counts: collections.Counter[tuple[str, str]] = collections.Counter()
            for _ in range(repeats):
                mark = server.mark()
                with watch:
                    status_rows, calls = collect(outputs, config)
                counts = server.request_counts(mark)
            assert len(status_rows) == size and not any(r.unavailable for r in status_rows)
            rows.append(
                [
                    f"mlflow ({count} on server)",
                    size,
                    sum(counts.values()),
                    counts[("GET", "/api/3.0/mlflow/gateway/budgets/list")],
                    counts[("GET", "/api/3.0/mlflow/gateway/budgets/windows")],
                    calls[server.tracking_uri],
                    round(median(watch.samples), 1),
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default="mlflow,databricks", help="which servers to measure")
    args = parser.parse_args()
    servers = set(args.servers.split(","))
    use_provider_env()

    sizes = sorted({6, 60, args.budgets})
    rows = []
    if "mlflow" in servers:
        rows += mlflow_rows(sizes, args.budgets, args.repeats)
    if "databricks" in servers:
        rows += account_rows(sizes, args.budgets, args.repeats)
    report = table(
        [
            "server",
            "budgets in outputs",
            "requests at server",
            "list calls",
            "windows / spend-status calls",
            "counted by status",
            "median ms",
        ],
        rows,
        title="budget_status: API calls per server (counted by the servers themselves)",
    )
    emit("status_calls", f"{report}\n\n{machine_context()}")


if __name__ == "__main__":
    main()
