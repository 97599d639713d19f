"""PagerDuty's Events API v2 (``POST /v2/enqueue``), enforcing its documented event schema.

``202 {"status": "success", "message": "Event processed", "dedup_key": …}`` for a valid event;
``400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`` when
``routing_key`` is not 32 characters, ``event_action`` is not trigger/acknowledge/resolve, or a
trigger lacks ``payload.summary`` (≤ 1024), ``payload.source`` or ``payload.severity``
(critical/error/warning/info); ``dedup_key`` is at most 255 characters.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from harness.local_http import LocalFake

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def event_errors(event) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if event.get("event_action") not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not isinstance(payload.get("source"), str) or not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
    return errors


@dataclass
class PagerDutyFake(LocalFake):
    events: list[dict] = field(default_factory=list)
    """Events accepted (answered 202), in order."""
    rejected: list[list[str]] = field(default_factory=list)
    path: ClassVar[str] = "/v2/enqueue"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def answer(self, raw: bytes) -> tuple[int, dict]:
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        errors = event_errors(event)
        with self._lock:
            if errors:
                self.rejected.append(errors)
                return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            self.events.append(event)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    def matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [e for e in self.events if predicate(e)]

    def wait_for(self, predicate: Callable[[dict], bool], count: int = 1, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.matching(predicate)) < count:
            time.sleep(0.05)
        return self.matching(predicate)


def _handler_for(fake: PagerDutyFake):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v2/enqueue":
                status, body = 404, {"status": "not found"}
            else:
                status, body = fake.answer(raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args) -> None:
            pass

    return Handler


@pytest.fixture
def pagerduty_fake() -> Iterator[PagerDutyFake]:
    fake = PagerDutyFake().start()
    yield fake
    fake.stop()
