"""A Slack incoming webhook that enforces what Slack documents, and can be made to fail.

Slack answers ``200 ok`` (text/plain) to a JSON body with ``text`` and/or valid Block Kit
``blocks``; ``400 invalid_payload`` to a body that is not a JSON object, ``400 no_text`` to one
with neither, ``400 invalid_blocks`` to blocks breaking the Block Kit limits (header plain_text
≤ 150 characters, section text ≤ 3000, at most 10 section fields of ≤ 2000, ≤ 50 blocks).
``fail_next(n, 503, retry_after=…)`` answers the next ``n`` posts with an error first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from harness.local_http import LocalFake

BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text", "input", "file"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def block_problem(blocks) -> str | None:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks must be a list of at most 50 blocks"
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return f"unknown block {block!r}"
        kind = block["type"]
        if kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text" or not 0 < len(text.get("text") or "") <= 150:
                return "header needs plain_text of 1-150 characters"
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                return "section needs text or fields"
            if text is not None and (text.get("type") not in TEXT_TYPES or not 0 < len(text.get("text") or "") <= 3000):
                return "section text must be 1-3000 characters"
            if fields is not None and (
                len(fields) > 10
                or any(f.get("type") not in TEXT_TYPES or not 0 < len(f.get("text") or "") <= 2000 for f in fields)
            ):
                return "section fields: at most 10, each 1-2000 characters"
        if kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                return "context needs 1-10 elements"
    return None


@dataclass
class SlackFake(LocalFake):
    messages: list[dict] = field(default_factory=list)
    """Messages Slack accepted (answered 200), in order."""
    attempts: int = 0
    _failures: list[tuple[int, str | None]] = field(default_factory=list)
    path: ClassVar[str] = "/services/T0TEST/B0TEST/not-a-real-token"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def recover(self) -> None:
        """Answer normally from now on (drop the failures still queued)."""
        with self._lock:
            self._failures.clear()

    def answer(self, raw: bytes) -> tuple[int, str, dict]:
        with self._lock:
            self.attempts += 1
            if self._failures:
                status, retry_after = self._failures.pop(0)
                return status, "service_unavailable", {"Retry-After": retry_after} if retry_after else {}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, "invalid_payload", {}
        if not isinstance(body, dict):
            return 400, "invalid_payload", {}
        if not body.get("text") and not body.get("blocks"):
            return 400, "no_text", {}
        if "blocks" in body and block_problem(body["blocks"]):
            return 400, "invalid_blocks", {}
        with self._lock:
            self.messages.append(body)
        return 200, "ok", {}

    def matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[dict], bool], count: int = 1, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.matching(predicate)) < count:
            time.sleep(0.05)
        return self.matching(predicate)


def _handler_for(fake: SlackFake):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers: dict[str, str]
            if not self.path.startswith("/services/"):
                status, text, headers = 404, "no_service", {}
            else:
                status, text, headers = fake.answer(raw)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args) -> None:
            pass

    return Handler


@pytest.fixture
def slack_fake() -> Iterator[SlackFake]:
    fake = SlackFake().start()
    yield fake
    fake.stop()
