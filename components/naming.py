"""Child resource names derived from a component's name."""

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, max_length: int = 63) -> str:
    """A name made of ``[A-Za-z0-9._-]``, at most ``max_length`` long, distinct for distinct texts."""
    cleaned = _UNSAFE.sub("-", text).strip("-") or "x"
    if cleaned == text and len(text) <= max_length:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{cleaned[: max_length - 9]}-{digest}"


def percent_label(percent: float) -> str:
    return f"{percent:g}".replace(".", "_") + "pct"
