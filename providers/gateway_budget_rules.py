"""GatewayBudgetPolicy's rules, checked before any API call: amounts, windows MLflow can compute,
actions, scopes and their targets."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from providers import fields
from providers._base import Failures, control_character_failure, is_unknown, quoted

# --- constants -----------------------------------------------------------------------------------


WINDOW_PRESETS = {
    "daily": {"unit": "DAYS", "value": 1},
    "weekly": {"unit": "WEEKS", "value": 1},
    "monthly": {"unit": "MONTHS", "value": 1},
}
WINDOW_UNITS = ("MINUTES", "HOURS", "DAYS", "WEEKS", "MONTHS")
ACTIONS = ("ALERT", "REJECT")
SCOPES = ("GLOBAL", "WORKSPACE", "ENDPOINT", "USER")
TARGETED_SCOPES = ("ENDPOINT", "USER")
ENDPOINT_ID = re.compile(r"e-[0-9a-f]{32}")

WINDOW_HELP = (
    '"daily", "weekly", "monthly" or {unit, value} with unit one of '
    + ", ".join(WINDOW_UNITS)
    + " and value a whole number from 1 up to one year"
)
MIN_AMOUNT_USD = fields.MIN_USD
MAX_AMOUNT_USD = fields.MAX_USD
# One year in each unit.  MLflow's gateway loads every policy at once and computes each window
# with datetime arithmetic: one window it cannot compute (10^18 days, 10^6 months) makes the
# whole load fail and no budget is enforced at all, every team's included.
MAX_WINDOW = {"MINUTES": 366 * 24 * 60, "HOURS": 366 * 24, "DAYS": 366, "WEEKS": 52, "MONTHS": 12}
MAX_WINDOW_HELP = ", ".join(f"{unit} <= {limit}" for unit, limit in MAX_WINDOW.items())


# --- field validators ----------------------------------------------------------------------------


validate_amount = fields.usd(MIN_AMOUNT_USD, MAX_AMOUNT_USD)


def validate_window(value: Any, failures: Failures, prop: str = "window") -> Any:
    normalized, reason = _normalized_window(value)
    if reason:
        failures.add(prop, reason)
    return normalized


def _normalized_window(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        preset = WINDOW_PRESETS.get(value.strip().lower())
        if preset is None:
            return value, f"unknown window {quoted(value)}: use {WINDOW_HELP}"
        return dict(preset), None
    if not isinstance(value, Mapping):
        return value, f"must be {WINDOW_HELP}"
    extra = sorted(set(value) - {"unit", "value"})
    if extra:
        return value, f"unknown keys {extra}: use {WINDOW_HELP}"
    unit = value.get("unit")
    unit = unit.strip().upper() if isinstance(unit, str) else unit
    if unit not in WINDOW_UNITS:
        return value, f"unit {quoted(value.get('unit'))} is not one of " + ", ".join(WINDOW_UNITS)
    length = value.get("value")
    if not _is_whole_number(length):
        return value, f"value must be an integer >= 1 (got {quoted(length)})"
    if length < 1:
        return value, f"value must be >= 1 (got {int(length)})"
    if length > MAX_WINDOW[unit]:
        return value, (
            f"at most one year: {unit} value must be <= {MAX_WINDOW[unit]} (got {int(length)}); "
            f"windows: {MAX_WINDOW_HELP}"
        )
    return {"unit": unit, "value": int(length)}, None


def _is_whole_number(value: Any) -> TypeGuard[int | float]:
    # Pulumi sends every number as a float: 1.0 is a valid window length, 1.5 is not.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or (math.isfinite(value) and value == int(value))


def validate_action(value: Any, failures: Failures, prop: str = "action") -> Any:
    return _choice(value, ACTIONS, failures, prop)


def validate_scope(value: Any, failures: Failures, prop: str = "scope") -> Any:
    return _choice("GLOBAL" if value is None else value, SCOPES, failures, prop)


def _choice(value: Any, choices: tuple[str, ...], failures: Failures, prop: str) -> Any:
    if isinstance(value, str) and value.strip().upper() in choices:
        return value.strip().upper()
    failures.add(prop, f"must be one of {', '.join(choices)} (got {quoted(value)})")
    return value


def validate_target(target: Any, failures: Failures, prop: str = "target", scope: Any = "GLOBAL") -> Any:
    """``target`` for ``scope`` (already validated): required by ENDPOINT and USER, refused otherwise."""
    if isinstance(target, str):
        target = target.strip() or None
    if scope not in SCOPES or is_unknown(target):
        return target
    if scope in TARGETED_SCOPES:
        if not isinstance(target, str):
            what = "an endpoint name or id" if scope == "ENDPOINT" else "a username"
            failures.add(prop, f"scope {scope} needs target = {what}")
        elif reason := control_character_failure(target):
            failures.add(prop, f"{quoted(target)} {reason}")
    elif target is not None:
        failures.add(prop, f"scope {scope} takes no target (got {quoted(target)}); use ENDPOINT or USER to target")
    return target


validate_allow_untracked = fields.validate_flag


def validate_declared_at(value: Any, failures: Failures, prop: str = "declared_at") -> Any:
    if value is not None and not isinstance(value, str):
        failures.add(prop, f"must be a config path string (got {value!r})")
    return value
