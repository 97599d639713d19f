"""Rows of the status (one per budget), and the three ways to show them: table, JSON, PNG."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from budget_status.sources import AccountState, GatewayState
from budget_status.stack import ACCOUNT, BudgetRef

if TYPE_CHECKING:
    from databricks.sdk.service.billing import AlertSpendStatus, BudgetConfiguration
    from matplotlib.figure import Figure
    from rich.console import Console
    from rich.text import Text

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
        """A row of a saved ``--json`` report; ``ValueError`` names the first field of a wrong type."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            value = data.get(spec.name, spec.default if spec.default is not MISSING else None)
            if not isinstance(value, _FIELD_TYPES[str(spec.type)]) or isinstance(value, bool) is not (
                spec.type == "bool"
            ):
                raise ValueError(f"`{spec.name}` is {type(value).__name__}, expected {spec.type}")
            values[spec.name] = value
        return cls(**values)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "float | None": (int, float, type(None)),
    "bool": (bool,),
}


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
    row.action = policy.action
    row.cap_usd = policy.amount
    row.window = _window_text(policy.duration_value, policy.duration_unit)
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
    """The rows of a report saved with ``--json``."""
    from budget_status.stack import OutputsError

    try:
        items = json.loads(text)["budgets"]
        return [BudgetRow.from_dict(item) for item in items]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        reason = error if isinstance(error, ValueError) and not isinstance(error, json.JSONDecodeError) else ""
        raise OutputsError(
            f"not a report saved with `python -m budget_status --json`{f': {reason}' if reason else ''}"
        ) from None


# --- terminal table ----------------------------------------------------------------------------

BAR_WIDTH = 20
GAP = "  "


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[BudgetRow], str]
    right: bool = False


_COLUMNS = {
    "tier": _Column("tier", lambda row: row.tier),
    "action": _Column("action", lambda row: row.action or ""),
    "spend": _Column("spend", lambda row: _money(row.spend_usd), right=True),
    "cap": _Column("cap", lambda row: _money(row.cap_usd), right=True),
    "used": _Column("used", lambda row: f"{row.percent:.1f}%" if row.percent is not None else "n/a", right=True),
    "bar": _Column("", lambda row: " " * BAR_WIDTH),
    "window": _Column("window", lambda row: row.window or ""),
    "resets": _Column("resets (UTC)", lambda row: (row.resets_at or "")[:16].replace("T", " ")),
    "now": _Column("now", lambda row: _now_text(row)),
}
_REQUIRED = ("tier", "spend", "cap", "used", "now")
_OPTIONAL = ("action", "resets", "window", "bar")  # added in this order while they fit


def render_table(rows: list[BudgetRow], console: Console | None = None) -> None:
    """Print the table at the terminal's width (``COLUMNS``), notes numbered below it."""
    from rich.console import Console

    console = console or Console()
    console.print(table(rows, console.width), highlight=False, markup=False)


def table(rows: list[BudgetRow], width: int = 160) -> Text:
    """The status for a terminal ``width`` columns wide: a line per team and budget, a row per tier.

    Columns never shrink: spend, cap, percent, tier and status always show whole; the action,
    reset time, window and a bar are added, in that order, while they fit.  Team and budget names
    head their rows (wrapping if they must) and notes are numbered below the table."""
    from rich.text import Text

    notes: dict[str, int] = {}
    markers = [f" [{notes.setdefault(row.note, len(notes) + 1)}]" if row.note else "" for row in rows]
    names = _columns_that_fit(rows, markers, width)
    widths = {name: _width(name, rows, markers) for name in names}
    header = GAP.join(
        _COLUMNS[name].header.rjust(widths[name]) if _COLUMNS[name].right else _COLUMNS[name].header.ljust(widths[name])
        for name in names
    )
    lines = [
        Text("ml-budgets: spend against every cap".center(min(width, len(header))).rstrip(), style="bold"),
        Text(header.rstrip(), style="bold"),
        Text("─" * min(width, len(header))),
    ]
    group = None
    for row, marker in zip(rows, markers, strict=True):
        if (row.team, row.budget) != group:
            if group is not None and row.team != group[0]:
                lines.append(Text(""))
            lines.append(Text(f"{_plain(row.team)} · {_plain(row.budget)}", style="bold"))
            group = (row.team, row.budget)
        lines.append(_line(row, marker, names, widths))
    if notes:
        lines.append(Text(""))
    lines += [Text(f"[{number}] {_plain(note)}", style="dim") for note, number in notes.items()]
    return Text("\n").join(lines)


def _columns_that_fit(rows: list[BudgetRow], markers: list[str], width: int) -> list[str]:
    chosen = list(_REQUIRED)
    used = sum(_width(name, rows, markers) for name in chosen) + len(GAP) * (len(chosen) - 1)
    for name in _OPTIONAL:
        extra = _width(name, rows, markers) + len(GAP)
        if used + extra <= width:
            chosen.append(name)
            used += extra
    return [name for name in _COLUMNS if name in chosen]


def _width(name: str, rows: list[BudgetRow], markers: list[str]) -> int:
    column = _COLUMNS[name]
    cells = [
        _plain(column.cell(row)) + (marker if name == "now" else "") for row, marker in zip(rows, markers, strict=True)
    ]
    return max([len(column.header), *map(len, cells)])


def _line(row: BudgetRow, marker: str, names: list[str], widths: dict[str, int]) -> Text:
    from rich.text import Text

    line = Text()
    for index, name in enumerate(names):
        if index:
            line.append(GAP)
        width = widths[name]
        if name == "bar":
            line.append_text(_bar(row))
        elif name == "now":
            line.append((_now_text(row) + marker).ljust(width), style=_now_style(row))
        else:
            cell = _plain(_COLUMNS[name].cell(row))
            line.append(cell.rjust(width) if _COLUMNS[name].right else cell.ljust(width))
    line.rstrip()
    return line


def _bar(row: BudgetRow) -> Text:
    from rich.text import Text

    if row.percent is None:
        return Text(" " * BAR_WIDTH)
    done = round(min(max(row.percent, 0.0), 100.0) / 100 * BAR_WIDTH)
    return Text.assemble(("━" * done, _style(row)), ("━" * (BAR_WIDTH - done), "grey23"))


def _now_text(row: BudgetRow) -> str:
    return "REJECTING" if row.rejecting else "unavailable" if row.unavailable else "ok"


def _now_style(row: BudgetRow) -> str:
    return "bold red" if row.rejecting else "yellow" if row.unavailable else "green"


def _style(row: BudgetRow) -> str:
    if row.rejecting or (row.percent or 0) >= 100:
        return "red"
    return "yellow" if (row.percent or 0) >= 80 else "green"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _plain(text: str) -> str:
    """Server- or outputs-supplied text without control or bidi characters (no terminal escapes)."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in text)


# --- PNG ---------------------------------------------------------------------------------------


def figure(rows: list[BudgetRow]) -> Figure:
    """A horizontal bar per budget (percent of its cap), grouped by team, red where rejecting."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [_chart_text(f"{row.team} · {row.budget} · {row.tier}") for row in rows]
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
            _chart_text(text + ("  REJECTING" if row.rejecting else "")),
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    return fig


def _chart_text(text: str) -> str:
    # matplotlib reads text between two "$" as math: "$0.63 / $0.50" must stay money.
    return _plain(text).replace("$", r"\$")
