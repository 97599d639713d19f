"""The alert relay as users run it: ``python -m alert_relay --config FILE --port 0``.

``RelayProcess`` writes the YAML config, starts the relay in its own process group, reads the
``url`` from its first stdout line and waits for ``/healthz`` (consumer running).  ``kill()``
SIGKILLs the whole group (web workers and consumer), as a crashed container would be.
``signed_post`` sends a delivery exactly as MLflow signs one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from harness.provider_server import PROJECT_ROOT
from harness.webhook_receiver import mlflow_signature

STARTUP_TIMEOUT_SECONDS = 60


class RelayProcess:
    def __init__(self, directory: Path, config: dict[str, Any], env: dict[str, str]) -> None:
        self.directory = directory
        self.config = config
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.consumer_pid = 0
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "relay.yaml"
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self) -> RelayProcess:
        with open(self.directory / "relay.log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alert_relay", "--config", str(self.config_path), "--port", "0"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"alert relay exited before printing its url:\n{self.log_tail()}")
        started = json.loads(line)
        self.url, self.consumer_pid = started["url"], started["consumer_pid"]
        self.wait_healthy()
        return self

    def health(self) -> tuple[int, dict]:
        response = requests.get(f"{self.url}/healthz", timeout=10)
        return response.status_code, response.json()

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                status, body = self.health()
                if status == 200:
                    return body
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"alert relay not healthy in {STARTUP_TIMEOUT_SECONDS}s:\n{self.log_tail()}")

    def wait_drained(self, timeout: float = 60.0) -> dict:
        """Health once the queue is empty (every message delivered or dropped)."""
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            status, body = self.health()
            if body.get("queue_depth") == 0:
                return body
            time.sleep(0.1)
        raise AssertionError(f"queue not drained in {timeout}s: {body}\n{self.log_tail()}")

    def webhook_url(self, route: str, policies=(), hard_stops=()) -> str:
        query = "&".join([f"policy={p}" for p in policies] + [f"hard_stop={p}" for p in hard_stops])
        return f"{self.url}/mlflow/{route}" + (f"?{query}" if query else "")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self._wait_group_gone()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self._wait_group_gone()

    def _wait_group_gone(self) -> None:
        if self.process is None:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.directory / "relay.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no relay log)"


def budget_envelope(
    policy_id: str, amount: float = 1.0, spend: float = 1.05, now: datetime | None = None, **data: Any
) -> dict:
    """The body MLflow's gateway posts for ``budget_policy.exceeded`` (mlflow/gateway/budget.py).

    Its times come from ``now`` (the test's clock, the current time by default): the 1-day window
    starts at that day's UTC midnight, so the alert is live whenever the test runs.
    """
    now = now or datetime.now(UTC)
    window_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "entity": "budget_policy",
        "action": "exceeded",
        "timestamp": now.isoformat(),
        "data": {
            "budget_policy_id": policy_id,
            "budget_unit": "USD",
            "budget_amount": amount,
            "current_spend": spend,
            "duration_unit": "DAYS",
            "duration_value": 1,
            "target_scope": "ENDPOINT",
            "workspace": "default",
            "target_value": "e-" + "0" * 32,
            "window_start": int(window_start.timestamp() * 1000),
            **data,
        },
    }


def signed_post(
    url: str,
    secret: str,
    envelope: dict,
    delivery_id: str | None = None,
    timestamp: int | None = None,
    signature: str | None = None,
) -> requests.Response:
    """POST as MLflow does: same headers, same signing (json.dumps body)."""
    body = json.dumps(envelope).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": mlflow_signature(secret, delivery_id, stamp, body) if signature is None else signature,
    }
    if not headers["X-MLflow-Signature"]:  # signature="" sends none, as a webhook without a secret
        del headers["X-MLflow-Signature"]
    return requests.post(url, data=body, headers=headers, timeout=30)


@pytest.fixture
def start_relay(tmp_path) -> Iterator:
    """``start_relay(config, env)`` → a running ``RelayProcess``; all are stopped at the end."""
    relays: list[RelayProcess] = []

    def start(config: dict[str, Any], env: dict[str, str], name: str = "relay") -> RelayProcess:
        relay = RelayProcess(tmp_path / name, config, env).start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _ReusableServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


@dataclass
class SwitchableDestination:
    """A JSON destination on a fixed port that can go down (refusing connections) and come back.

    ``answers`` are (status, headers) given in turn before answering 200; ``arrivals`` holds the
    accepted bodies with their arrival time (``time.monotonic()`` and ``time.time()``).
    """

    port: int = field(default_factory=free_port)
    path: str = "/services/T0BENCH/B0BENCH/not-a-real-token"
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    arrivals: list[tuple[float, float, dict]] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def up(self) -> SwitchableDestination:
        destination = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with destination._lock:
                    destination.attempts += 1
                    status, headers = destination.answers.pop(0) if destination.answers else (200, {})
                    if status < 300:
                        destination.arrivals.append((time.monotonic(), time.time(), json.loads(raw)))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format, *args) -> None:
                pass

        self._server = _ReusableServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[tuple[float, float, dict]]:
        with self._lock:
            return list(self.arrivals)

    def wait_for(self, count: int, timeout: float) -> list[tuple[float, float, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.received()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received()
