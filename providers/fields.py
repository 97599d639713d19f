"""Field types shared by every resource, one rule each: workspace ids, US dollars, email
addresses, flags, choices.  (The emulator keeps its own rules on purpose: it plays Databricks.)

Each validator has the shape ``validate_x(value, failures, prop) -> normalized value``; those
that take parameters are built by a function (``usd(minimum=...)``).
"""

from __future__ import annotations

import math
import re
import unicodedata
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
    "email_problem",
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
#
# An alert nobody can receive is a control that looks on but is off: only addresses a mail server
# delivers are accepted.  The syntax is email-validator's (RFC 5321/5322 and special-use domains,
# no DNS); on top of it, ASCII only (an internationalized domain goes in its xn-- form) so that
# homographs, bidi and zero-width characters cannot hide in one, no xn-- label that mixes scripts
# (a homograph spelt in ASCII), a top-level domain of letters, and no ``mailto:``.

MAX_EMAIL_LENGTH = 254  # RFC 5321: a path is at most 256 octets including the angle brackets
MAX_EMAILS = 100  # per list; ml-budgets' bound (Databricks documents none)
MAX_LIBRARY_REASON_LENGTH = 120
_TOP_LEVEL = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")  # the shape only; see email_problem


def email_problem(address: Any) -> str | None:
    """Why ``address`` is not a deliverable email address (name@example.com), else None."""
    if not isinstance(address, str):
        return "must be a string"
    if len(address) > MAX_EMAIL_LENGTH:
        return f"is {len(address)} characters long; an address has at most {MAX_EMAIL_LENGTH}"
    if not address.isascii():
        position, char = next((i, c) for i, c in enumerate(address) if not c.isascii())
        return (
            f"has a character outside ASCII ({char!r} at position {position}); "
            "an internationalized domain goes in its xn-- form"
        )
    if (reason := control_character_failure(address)) is not None:
        return reason
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "is not an email address (name@domain)"
    if local.lower().startswith("mailto:"):
        return "starts with mailto: give the address alone"
    if (reason := _syntax_problem(address)) is not None:
        return reason
    if not _TOP_LEVEL.fullmatch(domain.rpartition(".")[2]):
        return "has an invalid top-level domain"
    if (label := next((label for label in domain.split(".") if _mixes_scripts(label)), None)) is not None:
        return f"has a domain label that mixes scripts ({label[:63]!r}): a homograph of another name"
    return None


def _syntax_problem(address: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(
            address,
            check_deliverability=False,  # no DNS at check time
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
        )
    except EmailNotValidError as error:
        reason = str(error).rstrip(".")
        if len(reason) > MAX_LIBRARY_REASON_LENGTH:
            reason = reason[: MAX_LIBRARY_REASON_LENGTH - 1] + "…"
        return f"is not a valid address: {reason}"
    return None


def _mixes_scripts(label: str) -> bool:
    """True for an IDNA label (xn--…) whose letters come from more than one script."""
    if not label.lower().startswith("xn--"):
        return False
    try:
        decoded = label.encode("ascii").decode("idna")
    except UnicodeError:
        return True  # not a valid IDNA label: nobody registers it
    scripts = {unicodedata.name(c, "?").split(" ")[0] for c in decoded if c.isalpha()}
    return len(scripts) > 1


def validate_emails(value: Any, failures: Failures, prop: str) -> Any:
    """A list of deliverable email addresses, sorted and unique; absent is none."""
    if value is None:
        return []
    if is_unknown(value):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence):
        failures.add(prop, 'must be a list of email addresses, e.g. ["finops@example.com"]')
        return None
    if len(value) > MAX_EMAILS:
        failures.add(prop, f"has {len(value)} addresses; at most {MAX_EMAILS} (use a mailing list)")
        return None
    if any(is_unknown(address) for address in value):
        return list(value)
    bad = False
    for address in value:
        cleaned = address.strip() if isinstance(address, str) else address
        if (reason := email_problem(cleaned)) is not None:
            failures.add(prop, f"{quoted(address)} {reason}")
            bad = True
    return None if bad else sorted({a.strip() for a in value})
