"""An MLflow ``budget_policy.exceeded`` event as the relay understands it, and its wording."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT = ("budget_policy", "exceeded")
UNIT_DELTAS = {"MINUTES": "minutes", "HOURS": "hours", "DAYS": "days", "WEEKS": "weeks"}
DURATION_UNITS = (*UNIT_DELTAS, "MONTHS")
SCOPES = ("GLOBAL", "WORKSPACE", "ENDPOINT", "USER")
# Bounds that every destination can render (dates, JSON numbers, message lengths); MLflow's own
# values are far inside them.
MAX_DURATION_VALUE = 10_000
MIN_WINDOW_START_MS = 946_684_800_000  # 2000-01-01
MAX_WINDOW_START_MS = 7_258_118_400_000  # 2200-01-01
MAX_AMOUNT = 1e15
MAX_TEXT = 256
POLICY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNIT = re.compile(r"[A-Za-z]{1,16}")


class NotABudgetAlert(ValueError):
    """The body is not a ``budget_policy.exceeded`` envelope the relay can forward."""


@dataclass(frozen=True)
class BudgetAlert:
    route: str
    team: str
    policy_id: str
    hard_stop: bool
    amount: float
    spend: float
    unit: str
    scope: str
    target: str | None
    workspace: str | None
    duration_unit: str
    duration_value: int
    window_start_ms: int
    delivery_id: str

    @classmethod
    def from_envelope(cls, envelope: Any, *, route: str, team: str, hard_stop: bool, delivery_id: str) -> BudgetAlert:
        """The alert, or ``NotABudgetAlert`` naming the first field that no destination could be sent."""
        if not isinstance(envelope, Mapping) or (envelope.get("entity"), envelope.get("action")) != EVENT:
            raise NotABudgetAlert("not a budget_policy.exceeded event")
        data = envelope.get("data")
        if not isinstance(data, Mapping):
            raise NotABudgetAlert("budget_policy.exceeded data is incomplete: no data object")
        alert = cls(
            route=route,
            team=team,
            policy_id=_text(data, "budget_policy_id", required=True, pattern=POLICY_ID),
            hard_stop=hard_stop,
            amount=_amount(data, "budget_amount"),
            spend=_amount(data, "current_spend"),
            unit=_text(data, "budget_unit", pattern=UNIT) or "USD",
            scope=_choice(data, "target_scope", SCOPES, default="GLOBAL"),
            target=_text(data, "target_value"),
            workspace=_text(data, "workspace"),
            duration_unit=_choice(data, "duration_unit", DURATION_UNITS),
            duration_value=_whole(data, "duration_value", 1, MAX_DURATION_VALUE),
            window_start_ms=_whole(data, "window_start", MIN_WINDOW_START_MS, MAX_WINDOW_START_MS),
            delivery_id=delivery_id,
        )
        try:
            alert.window_end  # noqa: B018 (computed once here: a window that cannot end is refused now)
        except (OverflowError, ValueError) as error:
            raise NotABudgetAlert(f"the budget window cannot be computed: {error}") from None
        return alert

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BudgetAlert:
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- derived facts ---------------------------------------------------------------------

    @property
    def window_start(self) -> datetime:
        return datetime.fromtimestamp(self.window_start_ms / 1000, tz=UTC)

    @property
    def window_end(self) -> datetime:
        """When the window resets (MLflow's fixed, UTC-aligned windows)."""
        start = self.window_start
        if self.duration_unit == "MONTHS":
            months = start.month - 1 + self.duration_value
            return start.replace(year=start.year + months // 12, month=months % 12 + 1, day=1)
        return start + timedelta(**{UNIT_DELTAS.get(self.duration_unit, "days"): self.duration_value})

    @property
    def percent(self) -> float:
        return 100.0 * self.spend / self.amount if self.amount > 0 else 100.0

    @property
    def severity(self) -> str:
        return "critical" if self.hard_stop else "warning"

    @property
    def dedup_key(self) -> str:
        """One page per policy and window: MLflow fires once per window, retries must not page twice."""
        return f"{self.policy_id}:{self.window_start_ms}"

    @property
    def window_text(self) -> str:
        unit = self.duration_unit.lower()
        if self.duration_value == 1:
            return {"days": "daily", "weeks": "weekly", "months": "monthly", "hours": "hourly"}.get(
                unit, f"1 {unit[:-1]}"
            )
        return f"{self.duration_value} {unit}"

    @property
    def scope_text(self) -> str:
        if self.scope == "ENDPOINT":
            return f"endpoint {self.target}"
        if self.scope == "USER":
            return f"user {self.target}"
        if self.scope == "WORKSPACE":
            return f"workspace {self.workspace or 'default'}"
        return "the whole gateway"

    def money(self, value: float) -> str:
        return f"${value:,.2f}" if self.unit == "USD" else f"{value:,.2f} {self.unit}"

    @property
    def summary(self) -> str:
        head = (
            f"[{self.team}] AI Gateway spend {self.money(self.spend)} reached {self.percent:.0f}% of the "
            f"{self.money(self.amount)} {self.window_text} budget for {self.scope_text}"
        )
        if self.hard_stop:
            return f"{head}: traffic is now rejected (HTTP 429) until {iso(self.window_end)}"
        return f"{head}; the window resets {iso(self.window_end)}"


def _field(data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise NotABudgetAlert(f"budget_policy.exceeded data is incomplete: no {name}")
    return data[name]


def _amount(data: Mapping[str, Any], name: str) -> float:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotABudgetAlert(f"{name} must be a number")
    if not (math.isfinite(value) and 0 <= value <= MAX_AMOUNT):
        raise NotABudgetAlert(f"{name} must be a finite amount between 0 and {MAX_AMOUNT:.0e}")
    return float(value)


def _whole(data: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NotABudgetAlert(f"{name} must be a whole number in {low}..{high}")
    return value


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = data.get(name) if default is not None else _field(data, name)
    if value is None and default is not None:
        return default
    if value not in choices:
        raise NotABudgetAlert(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _text(data: Mapping[str, Any], name: str, *, required: bool = False, pattern: re.Pattern[str] | None = None) -> Any:
    value = _field(data, name) if required else data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT or not value.isprintable():
        raise NotABudgetAlert(f"{name} must be printable text of 1-{MAX_TEXT} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise NotABudgetAlert(f"{name} is not in the form MLflow gives it")
    return value


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
