"""The emulator's request log: every API request, counted from its arrival."""

from __future__ import annotations

import threading
import time
from typing import Any


class RequestLog:
    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._seq = 0

    def entries(self) -> list[dict[str, Any]]:
        """A copy in arrival order: dicts with seq, time, method, path, query, body (parsed JSON
        request body, if any), status (None while pending or when dropped), error_code, fault
        (e.g. ``"429/before"``), outcome (``pending``, ``ok``, ``error``, ``dropped``) and
        duration_ms."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, method: str | None = None, path_contains: str = "", *, status: int | None = None) -> int:
        """How many logged requests match (``method`` None or ``"*"`` = any method)."""
        method = None if method in (None, "*") else method.upper()
        with self._lock:
            return sum(
                1
                for entry in self._entries
                if (method is None or entry["method"] == method)
                and path_contains in entry["path"]
                and (status is None or entry["status"] == status)
            )

    def arrived(self, method: str, path: str, query: dict[str, Any]) -> dict[str, Any]:
        """Log a request as it arrives (so one still being served is already counted)."""
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "body": None,
            "status": None,
            "error_code": None,
            "fault": None,
            "outcome": "pending",
            "duration_ms": None,
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
            if len(self._entries) > self.max_entries:
                del self._entries[: len(self._entries) - self.max_entries]
        return entry

    def finish(
        self, entry: dict[str, Any], started: float, status: int | None, error_code: str | None, outcome: str
    ) -> None:
        with self._lock:
            entry["status"] = status
            entry["error_code"] = error_code
            entry["outcome"] = outcome
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
