"""An MLflow ``budget_policy.exceeded`` event as the relay understands it, and its wording."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT = ("budget_policy", "exceeded")
UNIT_DELTAS = {"MINUTES": "minutes", "HOURS": "hours", "DAYS": "days", "WEEKS": "weeks"}


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
        if not isinstance(envelope, Mapping) or (envelope.get("entity"), envelope.get("action")) != EVENT:
            raise NotABudgetAlert("not a budget_policy.exceeded event")
        data = envelope.get("data")
        if not isinstance(data, Mapping):
            raise NotABudgetAlert("budget_policy.exceeded data is incomplete: no data object")
        try:
            return cls(
                route=route,
                team=team,
                policy_id=str(data["budget_policy_id"]),
                hard_stop=hard_stop,
                amount=float(data["budget_amount"]),
                spend=float(data["current_spend"]),
                unit=str(data.get("budget_unit") or "USD"),
                scope=str(data.get("target_scope") or "GLOBAL"),
                target=data.get("target_value"),
                workspace=data.get("workspace"),
                duration_unit=str(data["duration_unit"]),
                duration_value=int(data["duration_value"]),
                window_start_ms=int(data["window_start"]),
                delivery_id=delivery_id,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise NotABudgetAlert(f"budget_policy.exceeded data is incomplete: {error}") from error

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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
