"""Fault injection: make chosen requests fail the way a real network and a real Databricks do.

A fault matches requests by HTTP method (``"*"`` = any) and a path substring (or a regular
expression with ``regex=True``), fires ``count`` times (``None`` = until removed) after skipping
the first ``skip`` matches, optionally only with some ``probability``, and does one thing:

=============  ==============================================================================
kind           effect
=============  ==============================================================================
``"429"``      HTTP 429 REQUEST_LIMIT_EXCEEDED with ``Retry-After: <retry_after>`` (seconds)
``"503"``      HTTP 503 TEMPORARILY_UNAVAILABLE (``Retry-After`` only if ``retry_after`` given)
``"drop"``     the socket is closed without any answer: the client sees a connection error
``"slow"``     sleep ``seconds`` and then answer normally
``"error"``    any answer: ``status``, ``error_code``, ``message`` (e.g. 500 INTERNAL_ERROR)
=============  ==============================================================================

``phase="before"`` (default) acts before the request reaches the account: the request is
refused and nothing changes.  ``phase="after"`` lets the request change the account first and
then loses or replaces the answer ("applied, then failed"): the way to prove a create is
idempotent under retries, or that a retried DELETE copes with 404.

The same rules can be installed in-process (``emulator.faults.inject(...)``) or over HTTP
(``POST /_emulator/faults`` with the same fields as JSON) from another process.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("429", "503", "drop", "slow", "error")
PHASES = ("before", "after")
_ALIASES = {"throttle": "429", "unavailable": "503", "disconnect": "drop", "delay": "slow"}


@dataclass
class Fault:
    kind: str
    method: str = "*"
    path: str = ""
    count: int | None = 1
    phase: str = "before"
    retry_after: int | None = None
    seconds: float = 0.0
    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    skip: int = 0
    probability: float = 1.0
    regex: bool = False
    id: int = 0
    fired: int = 0
    seen: int = 0
    _pattern: re.Pattern | None = field(default=None, repr=False, compare=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        if self._pattern is not None:
            return self._pattern.search(path) is not None
        return self.path in path

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_pattern", None)
        data["remaining"] = None if self.count is None else max(self.count - self.fired, 0)
        return data


class FaultInjector:
    """Thread-safe set of fault rules; ``take(method, path, phase)`` consumes the first that fires."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)
        self.history: list[dict[str, Any]] = []  # every firing: {id, kind, phase, method, path}

    # ------------------------------------------------------------------ install

    def inject(
        self,
        kind: str,
        method: str = "*",
        path: str = "",
        *,
        count: int | None = 1,
        phase: str = "before",
        retry_after: int | None = None,
        seconds: float = 0.0,
        status: int | None = None,
        error_code: str | None = None,
        message: str | None = None,
        skip: int = 0,
        probability: float = 1.0,
        regex: bool = False,
    ) -> Fault:
        """Install a fault rule and return it (``fault.fired`` counts its firings)."""
        kind = _ALIASES.get(str(kind).lower(), str(kind).lower())
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        if phase not in PHASES:
            raise ValueError(f"phase must be 'before' or 'after', not {phase!r}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1, or None for a fault that fires until removed")
        if skip < 0 or not 0.0 <= probability <= 1.0:
            raise ValueError("skip must be >= 0 and probability within [0, 1]")
        if kind == "429" and retry_after is None:
            retry_after = 1
        if kind == "slow" and seconds <= 0:
            raise ValueError("a 'slow' fault needs seconds > 0")
        if kind == "error" and (status is None or not 400 <= int(status) <= 599):
            raise ValueError("an 'error' fault needs an HTTP error status (400-599)")
        fault = Fault(
            kind=kind,
            method=(method or "*").upper(),
            path=path or "",
            count=count,
            phase=phase,
            retry_after=None if retry_after is None else int(retry_after),
            seconds=float(seconds),
            status=None if status is None else int(status),
            error_code=error_code,
            message=message,
            skip=int(skip),
            probability=float(probability),
            regex=bool(regex),
            _pattern=re.compile(path) if regex else None,
        )
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def throttle(
        self, method: str = "*", path: str = "", *, retry_after: int = 1, count: int | None = 1, **kw: Any
    ) -> Fault:
        """429 with ``Retry-After: retry_after``."""
        return self.inject("429", method, path, retry_after=retry_after, count=count, **kw)

    def unavailable(self, method: str = "*", path: str = "", *, count: int | None = 1, **kw: Any) -> Fault:
        """503 TEMPORARILY_UNAVAILABLE."""
        return self.inject("503", method, path, count=count, **kw)

    def drop(self, method: str = "*", path: str = "", *, count: int | None = 1, **kw: Any) -> Fault:
        """Close the connection without answering."""
        return self.inject("drop", method, path, count=count, **kw)

    def slow(self, method: str = "*", path: str = "", *, seconds: float, count: int | None = 1, **kw: Any) -> Fault:
        """Sleep ``seconds`` before answering."""
        return self.inject("slow", method, path, seconds=seconds, count=count, **kw)

    def spurious_duplicate(self, *, count: int | None = 1, **kw: Any) -> Fault:
        """Refuse a budget policy create with 409 "Duplicate policy name found." although no policy
        has the name, as the real service sometimes does under load (terraform-provider-databricks
        #4600): nothing is created."""
        return self.error(
            "POST",
            "/budget-policies",
            status=409,
            error_code="RESOURCE_ALREADY_EXISTS",
            message="Duplicate policy name found.",
            count=count,
            **kw,
        )

    def error(
        self,
        method: str = "*",
        path: str = "",
        *,
        status: int,
        error_code: str,
        message: str = "injected error",
        count: int | None = 1,
        **kw: Any,
    ) -> Fault:
        """Answer with any Databricks error."""
        return self.inject(
            "error", method, path, status=status, error_code=error_code, message=message, count=count, **kw
        )

    # ------------------------------------------------------------------ manage

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.history.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def pending(self) -> int:
        """How many firings are still due from faults with a finite count."""
        with self._lock:
            return sum(max(f.count - f.fired, 0) for f in self._faults if f.count is not None)

    def fired(self, kind: str | None = None) -> int:
        """How many times faults (of ``kind``) have fired since the last ``clear()``."""
        with self._lock:
            return sum(1 for h in self.history if kind is None or h["kind"] == kind)

    def take(self, method: str, path: str, phase: str) -> Fault | None:
        """The fault that fires for this request in this phase, if any (its count is consumed)."""
        with self._lock:
            for fault in self._faults:
                if fault.phase != phase or fault.exhausted or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                self.history.append(
                    {"id": fault.id, "kind": fault.kind, "phase": phase, "method": method, "path": path}
                )
                if fault.count is not None and fault.fired >= fault.count:  # exhausted now
                    self._faults.remove(fault)
                return fault
        return None
