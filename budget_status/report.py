"""Rows of the status (one per budget), and the three ways to show them: table, JSON, PNG."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from budget_status.sources import AccountState, GatewayState
from budget_status.stack import ACCOUNT, BudgetRef

if TYPE_CHECKING:
    from databricks.sdk.service.billing import AlertSpendStatus, BudgetConfiguration
    from matplotlib.figure import Figure
    from rich.table import Table

EXIT_OK, EXIT_ABOVE, EXIT_HARD_STOP, EXIT_UNAVAILABLE = 0, 1, 2, 3

NO_LIVE_SPEND_API = "no live-spend API for budgets over all usage: see the account console or system.billing.usage"


@dataclass
class BudgetRow:
    team: str
    budget: str
    tier: str
    source: str  # mlflow-gateway | databricks-budget | databricks-ai-gateway
    id: str
    action: str | None  # ALERT | REJECT | BLOCK_USAGE | EMAIL_NOTIFICATION
    cap_usd: float | None
    spend_usd: float | None  # None: not available (see note)
    percent: float | None
    window: str | None  # "1 day", "7 days", "1 month"
    window_start: str | None  # ISO 8601 UTC
    resets_at: str | None
    rejecting: bool  # a hard stop that refuses requests right now
    server: str
    unavailable: bool = False  # the spend should be known and could not be read
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetRow:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)


# --- rows from what the servers hold -----------------------------------------------------------


def gateway_row(ref: BudgetRef, state: GatewayState | None, server: str, error: str = "") -> BudgetRow:
    row = BudgetRow(
        ref.team, ref.budget, ref.tier, ref.kind, ref.id, None, None, None, None, None, None, None, False, server
    )
    if state is None:
        return _unavailable(row, error)
    policy = state.policies.get(ref.id)
    if policy is None:
        return _unavailable(row, f"no such budget policy on {server}: deleted outside Pulumi? run `pulumi refresh`")
    row.action = policy.budget_action.value
    row.cap_usd = float(policy.budget_amount)
    row.window = _window_text(policy.duration.value, policy.duration.unit.value)
    if not state.live:
        row.note = "live spend is held by the mlflow server's gateway: point mlflow:trackingUri at the server"
        return row
    window = state.windows.get(ref.id)
    if window is None:
        note = (
            "the gateway holds no window for any budget: it enforces none (a policy it cannot load?)"
            if not state.windows
            else "the gateway has no window for this budget yet"
        )
        return _unavailable(row, note)
    row.spend_usd = window["current_spend"]
    row.percent = _percent(row.spend_usd, row.cap_usd)
    row.window_start = _iso(window["window_start_ms"])
    row.resets_at = _iso(window["window_end_ms"])
    now_ms = datetime.now(UTC).timestamp() * 1000
    row.rejecting = row.action == "REJECT" and row.spend_usd >= row.cap_usd and now_ms < window["window_end_ms"]
    return row


def account_rows(ref: BudgetRef, state: AccountState | None, server: str, error: str = "") -> list[BudgetRow]:
    row = BudgetRow(
        ref.team,
        ref.budget,
        ref.tier,
        ref.kind,
        ref.id,
        None,
        None,
        None,
        None,
        "1 month",
        *_this_month(),
        False,
        server,
    )
    if state is None:
        return [_unavailable(row, error)]
    budget = state.budgets.get(ref.id)
    if budget is None:
        return [_unavailable(row, f"no such budget in {server}: deleted outside Pulumi? run `pulumi refresh`")]
    shared, per_user = _alerts(budget)
    row.budget = budget.display_name or ref.budget
    if shared:
        threshold, action = max(shared)
        row.cap_usd, row.action = threshold, action
    if ref.kind == ACCOUNT:
        row.note = NO_LIVE_SPEND_API
        return [row]
    status = state.spend.get(ref.id)
    if status is None:
        row.note = "no spend status: the budget has no blocking threshold"
        return [row]
    rows = [row]
    for alert in status.alert_spend_statuses or []:
        scope = getattr(alert.scope_type, "value", "")
        if scope.endswith("PER_USER"):
            rows.append(_per_user_row(ref, row, alert, per_user))
        elif alert.percent_consumed is not None:
            row.percent = float(alert.percent_consumed)
            row.rejecting = row.action == "BLOCK_USAGE" and row.percent >= 100
            row.note = "shared threshold: Databricks reports the percent only"
    return rows


def _per_user_row(
    ref: BudgetRef, shared_row: BudgetRow, alert: AlertSpendStatus, per_user: tuple[float, str] | None
) -> BudgetRow:
    spend = float(alert.spend) if alert.spend is not None else None
    cap = float(alert.threshold) if alert.threshold is not None else (per_user[0] if per_user else None)
    action = per_user[1] if per_user else None
    percent = float(alert.percent_consumed) if alert.percent_consumed is not None else _percent(spend, cap)
    return BudgetRow(
        ref.team,
        shared_row.budget,
        "per user (caller)",
        ref.kind,
        ref.id,
        action,
        cap,
        spend,
        percent,
        shared_row.window,
        shared_row.window_start,
        shared_row.resets_at,
        action == "BLOCK_USAGE" and percent is not None and percent >= 100,
        shared_row.server,
        note="the calling principal's own spend and threshold",
    )


def _alerts(budget: BudgetConfiguration) -> tuple[list[tuple[float, str]], tuple[float, str] | None]:
    """Shared ``(threshold, strongest action)`` pairs and the per-user one."""
    shared, per_user = [], None
    for alert in budget.alert_configurations or []:
        actions = {getattr(a.action_type, "value", None) for a in alert.action_configurations or []}
        action = "BLOCK_USAGE" if "BLOCK_USAGE" in actions else "EMAIL_NOTIFICATION"
        threshold = float(alert.quantity_threshold or 0)  # always set; the SDK types it optional
        if getattr(alert.scope_type, "value", "").endswith("PER_USER"):
            per_user = (threshold, action)
        else:
            shared.append((threshold, action))
    return shared, per_user


def _unavailable(row: BudgetRow, note: str) -> BudgetRow:
    row.unavailable, row.note = True, note
    return row


def _percent(spend: float | None, cap: float | None) -> float | None:
    if spend is None or not cap:
        return None
    return round(spend / cap * 100, 2)


def _window_text(value: int, unit: str) -> str:
    unit = unit.lower().rstrip("s")
    return f"{value} {unit}" + ("" if value == 1 else "s")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _this_month() -> tuple[str, str]:
    # Databricks budgets count calendar months (UTC).
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return (start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z"))


# --- verdict -----------------------------------------------------------------------------------


def exit_code(rows: Iterable[BudgetRow], fail_above: float | None) -> int:
    rows = list(rows)
    if any(row.rejecting for row in rows):
        return EXIT_HARD_STOP
    if fail_above is not None and any(row.percent is not None and row.percent > fail_above for row in rows):
        return EXIT_ABOVE
    if any(row.unavailable for row in rows):
        return EXIT_UNAVAILABLE
    return EXIT_OK


# --- JSON --------------------------------------------------------------------------------------


def to_json(rows: list[BudgetRow], calls: dict[str, int]) -> str:
    return json.dumps(
        {
            "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "hard_stop_active": any(row.rejecting for row in rows),
            "api_calls": dict(calls),
            "budgets": [asdict(row) for row in rows],
        },
        indent=2,
    )


def rows_from_json(text: str) -> list[BudgetRow]:
    return [BudgetRow.from_dict(item) for item in json.loads(text)["budgets"]]


# --- terminal table ----------------------------------------------------------------------------


def table(rows: list[BudgetRow]) -> Table:
    """A rich ``Table``: one section per team, a bar per budget."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    grid = Table(title="ml-budgets: spend against every cap", header_style="bold", expand=False)
    for column in ("team", "budget", "tier", "action", "spend", "cap", "used", "", "window", "resets (UTC)", "now"):
        grid.add_column(column, justify="right" if column in ("spend", "cap", "used") else "left", no_wrap=True)
    team = None
    for row in rows:
        if team is not None and row.team != team:
            grid.add_section()
        bar = (
            ProgressBar(
                total=100,
                completed=min(row.percent, 100),
                width=20,
                complete_style=_style(row),
                finished_style=_style(row),
            )
            if row.percent is not None
            else Text(_short(row.note), style="dim")
        )
        grid.add_row(
            row.team if row.team != team else "",
            row.budget,
            row.tier,
            row.action or "",
            _money(row.spend_usd),
            _money(row.cap_usd),
            f"{row.percent:.1f}%" if row.percent is not None else "n/a",
            bar,
            row.window or "",
            (row.resets_at or "")[:16].replace("T", " "),
            Text("REJECTING", style="bold red")
            if row.rejecting
            else Text("unavailable", style="yellow")
            if row.unavailable
            else Text("ok", style="green"),
        )
        team = row.team
    return grid


def _style(row: BudgetRow) -> str:
    if row.rejecting or (row.percent or 0) >= 100:
        return "red"
    return "yellow" if (row.percent or 0) >= 80 else "green"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _short(note: str) -> str:
    return note if len(note) <= 40 else note[:39] + "…"


# --- PNG ---------------------------------------------------------------------------------------


def figure(rows: list[BudgetRow]) -> Figure:
    """A horizontal bar per budget (percent of its cap), grouped by team, red where rejecting."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [f"{row.team} · {row.budget} · {row.tier}" for row in rows]
    values = [row.percent if row.percent is not None else 0.0 for row in rows]
    colors = [
        "#d62728"
        if row.rejecting
        else "#bbbbbb"
        if row.percent is None
        else "#ff7f0e"
        if row.percent >= 80
        else "#2ca02c"
        for row in rows
    ]
    fig = Figure(figsize=(10, max(2.5, 0.42 * len(rows) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    positions = list(range(len(rows)))[::-1]  # first row on top
    bars = ax.barh(positions, values, color=colors, label="percent of cap used")
    ax.set_yticks(positions, labels, fontsize=8)
    ax.axvline(100, color="#444444", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(110, max(values, default=0) * 1.1))
    ax.set_xlabel("percent of cap used")
    ax.set_title("ml-budgets: spend against every cap")
    for bar, row in zip(bars, rows, strict=True):
        text = "n/a" if row.percent is None else f"{row.percent:.0f}%  {_money(row.spend_usd)} / {_money(row.cap_usd)}"
        ax.annotate(
            text + ("  REJECTING" if row.rejecting else ""),
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    return fig
