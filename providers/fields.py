"""Field types shared by every resource, one rule each: workspace ids, US dollars, email
addresses, flags, choices.  (The emulator keeps its own rules on purpose: it plays Databricks.)

Each validator has the shape ``validate_x(value, failures, prop) -> normalized value``; those
that take parameters are built by a function (``usd(minimum=...)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from providers._base import Failures, Validator, control_character_failure, is_unknown, quoted

__all__ = [
    "EMAIL",
    "MAX_EXACT_INTEGER",
    "MAX_USD",
    "MIN_USD",
    "choice",
    "control_character_failure",
    "validate_emails",
    "validate_flag",
    "validate_workspace_ids",
    "usd",
    "workspace_id",
]

MAX_EXACT_INTEGER = 2**53  # numbers cross the Pulumi wire as doubles
MIN_USD = 0.01
MAX_USD = 1e9  # no real budget reaches it; 1e308 would, and a cap that high can never trip
EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")


# --- workspace ids -------------------------------------------------------------------------------


def workspace_id(value: Any) -> int | None:
    """A workspace id as an int: numbers cross the Pulumi wire as doubles (1234.0) and YAML may
    quote them ("1234"); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    # ASCII digits only: str.isdigit() accepts "²" (which int() refuses) and "١٢٣" (which it reads as 123).
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        return int(value.strip())
    return None


def validate_workspace_ids(ids: Any, failures: Failures, prop: str) -> list[int] | None:
    """A list of workspace ids, sorted and unique; absent is none."""
    if ids is None:
        return []
    if is_unknown(ids):
        return ids  # type: ignore[no-any-return]
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        failures.add(prop, "must be a list of workspace ids, e.g. [1234567890123456]")
        return None
    if any(is_unknown(value) for value in ids):
        return list(ids)  # preview: some ids are outputs not known yet
    normalized = set()
    for value in ids:
        number = workspace_id(value)
        if number is None or number <= 0:
            failures.add(prop, f"{quoted(value)} is not a workspace id (a positive integer of ASCII digits)")
        elif number > MAX_EXACT_INTEGER:
            failures.add(
                prop,
                f"{quoted(value)} is larger than 2^53: Pulumi carries numbers as doubles and would change it",
            )
        else:
            normalized.add(number)
    return sorted(normalized)


# --- money ---------------------------------------------------------------------------------------


def usd(minimum: float = MIN_USD, maximum: float = MAX_USD) -> Validator:
    """A validator of an amount of US dollars within ``[minimum, maximum]`` (a float)."""

    def validate_usd(value: Any, failures: Failures, prop: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            failures.add(prop, "must be a number of US dollars greater than 0")
            return value
        if not math.isfinite(value) or not minimum <= value <= maximum:
            failures.add(prop, f"must be between {minimum} and {maximum:.0e} US dollars (got {quoted(value)})")
            return value
        return float(value)

    return validate_usd


# --- flags and choices ---------------------------------------------------------------------------


def validate_flag(value: Any, failures: Failures, prop: str) -> Any:
    """true or false; absent is false."""
    if value is None:
        return False
    if not isinstance(value, bool):
        failures.add(prop, f"must be true or false (got {quoted(value)})")
    return value


def choice(choices: Sequence[str], default: str | None = None) -> Validator:
    """A validator of one of ``choices`` (case-insensitive, normalized to the choice's spelling)."""
    by_key = {c.upper(): c for c in choices}

    def validate_choice(value: Any, failures: Failures, prop: str) -> Any:
        if value is None and default is not None:
            return default
        if isinstance(value, str) and value.strip().upper() in by_key:
            return by_key[value.strip().upper()]
        failures.add(prop, f"must be one of {', '.join(choices)} (got {quoted(value)})")
        return value

    return validate_choice


# --- email addresses -----------------------------------------------------------------------------


def validate_emails(value: Any, failures: Failures, prop: str) -> Any:
    """A list of email addresses, sorted and unique; absent is none."""
    if value is None:
        return []
    if is_unknown(value):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence):
        failures.add(prop, 'must be a list of email addresses, e.g. ["finops@example.com"]')
        return None
    if any(is_unknown(address) for address in value):
        return list(value)
    bad = [a for a in value if not isinstance(a, str) or not EMAIL.fullmatch(a.strip())]
    for address in bad:
        failures.add(prop, f"{quoted(address)} is not an email address (name@domain)")
    return None if bad else sorted({a.strip() for a in value})
