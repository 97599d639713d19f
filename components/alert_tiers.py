"""Alert tiers: percentages of a dollar limit, and the dollars they stand for. One rule for every
budget (serverless, Databricks AI Gateway, MLflow AI Gateway):

* a tier is a percentage in (0, 100]; the same percentage twice is refused;
* its amount is ``limit_usd × percent / 100`` rounded to the cent;
* a tier at 100 % is the limit itself: where a component already alerts at the limit (a hard
  stop, a Databricks AI Gateway cap), the two are one alert, not two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.core import Failures, quoted
from providers.fields import usd

MAX_PERCENT = 100.0
_tier_bounds = usd()


def tier_usd(limit_usd: float, percent: float) -> float:
    """The dollars a tier at ``percent`` of ``limit_usd`` stands for, to the cent."""
    return round(limit_usd * percent / 100, 2)


def validate_percentages(values: Any, failures: Failures, prop: str) -> list[float]:
    """The valid tiers among ``values`` (floats, in the order given); a failure for each other one."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        failures.add(prop, f"must be a list of percentages of the limit, e.g. [50, 80] (got {quoted(values)})")
        return []
    tiers: list[float] = []
    for i, percent in enumerate(values):
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= MAX_PERCENT:
            failures.add(f"{prop}[{i}]", f"must be a percentage in (0, 100], got {quoted(percent)}")
        elif float(percent) in tiers:
            failures.add(f"{prop}[{i}]", f"{percent:g} % appears twice; each tier needs its own percentage")
        else:
            tiers.append(float(percent))
    return tiers


def tier_failure(limit_usd: float, percent: float) -> str | None:
    """Why a tier at ``percent`` of ``limit_usd`` cannot be an alert (its exact amount is outside
    $0.01 to $10^9, the bounds of every amount here), else None."""
    checked = Failures()
    _tier_bounds(limit_usd * percent / 100, checked, "tier")
    return checked.items[0].reason if checked.items else None


def below_the_limit(percentages: Sequence[float]) -> list[float]:
    """The tiers that are not the limit itself (for components that alert at the limit anyway)."""
    return [percent for percent in percentages if percent < MAX_PERCENT]
