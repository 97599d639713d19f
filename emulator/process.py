"""The emulator as a separate process (``python -m emulator``), and its HTTP control client.

Used for the restart test and by benchmarks that run the emulator apart from the code under
test.  ``EmulatorProcess`` starts it, reads the JSON line it prints when listening, and can
``restart()`` it on the same port with the same state file.  ``RemoteControl`` is the
``/_emulator/...`` API as Python calls (request log, faults, reset).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

import requests

from emulator.server import PULUMI_TOKEN, account_client, pulumi_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class RemoteControl:
    """Client for an emulator's control endpoints (``/_emulator/...``) over HTTP."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._session.request(method, f"{self.url}/_emulator/{path}", json=body, timeout=self.timeout)
        if not response.ok:
            raise RuntimeError(f"emulator control {method} {path} failed: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "requests")["requests"]

    def reset_requests(self) -> None:
        self._call("DELETE", "requests")

    def count(self, method: str | None = None, path_contains: str = "", *, status: int | None = None) -> int:
        method = None if method in (None, "*") else method.upper()
        return sum(
            1
            for entry in self.requests
            if (method is None or entry["method"] == method)
            and path_contains in entry["path"]
            and (status is None or entry["status"] == status)
        )

    def inject_fault(self, kind: str, method: str = "*", path: str = "", **options: Any) -> dict[str, Any]:
        """Same arguments as :meth:`emulator.faults.FaultInjector.inject`; returns the fault as JSON."""
        return self._call("POST", "faults", {"kind": kind, "method": method, "path": path, **options})["fault"]

    def faults(self) -> dict[str, Any]:
        """``{"faults": [...installed...], "history": [...firings...]}``."""
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def reset(self, *, state: bool = True, faults: bool = True, requests: bool = True) -> None:
        self._call("POST", "reset", {"state": state, "faults": faults, "requests": requests})

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def add_grant(self, policy_id: str, role: str, principal: str) -> str:
        """Play another writer: grant ``role`` to ``principal`` on a policy; returns the new etag."""
        return self._call("POST", f"policies/{policy_id}/grants", {"role": role, "principal": principal})["etag"]

    def add_budget_usage(
        self, budget_id: str, usd: str, principal_id: int | None = None, external: bool = False
    ) -> None:
        """Feed spend (this month, list-price USD) to a budget; ``principal_id`` defaults to the caller."""
        self._call(
            "POST", f"budgets/{budget_id}/usage", {"usd": str(usd), "principal_id": principal_id, "external": external}
        )

    def reorder_budget(self, budget_id: str) -> dict[str, Any]:
        """Reverse the order of a budget's alerts, actions and overrides, as a server rewrite may."""
        return self._call("POST", f"budgets/{budget_id}/reorder")["budget"]


class EmulatorProcess:
    """``python -m emulator`` in a child process.

    :param state_path: the state file (default: a fresh file in a temporary directory).
    :param port: 0 picks a free port on first start; restarts reuse the port.
    """

    def __init__(
        self,
        *,
        state_path: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        account_id: str | None = None,
        creator_manager: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        if state_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="databricks-emulator-")
            state_path = os.path.join(self._tmpdir.name, "state.json")
        self.state_path = str(state_path)
        self.host = host
        self.port = port
        self.account_id = account_id
        self.creator_manager = creator_manager
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = self.state_path + ".stderr.log"
        self._stderr: IO[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control(self) -> RemoteControl:
        return RemoteControl(self.url)

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        if self.proc is not None:
            raise RuntimeError("already running")
        cmd = [
            sys.executable,
            "-u",
            "-m",
            "emulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state",
            self.state_path,
        ]
        if self.account_id:
            cmd += ["--account-id", self.account_id]
        if self.creator_manager:
            cmd += ["--creator-manager", self.creator_manager]
        cmd += self.extra_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 (the child's stderr until stop() closes it)
        self.proc = subprocess.Popen(
            cmd, cwd=str(PROJECT_ROOT), env=env, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL
        )
        line = _read_line(self.proc, timeout)
        if not line:
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(f"emulator did not start (exit {code}); stderr:\n{self.stderr_text()}")
        info = json.loads(line)
        self.port = int(info["port"])
        self.account_id = info["account_id"]
        self.starts += 1
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
            code = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code

    def kill(self) -> None:
        """SIGKILL (no shutdown at all): what survives is what was already written."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stop()

    def restart(self, timeout: float = 30.0) -> EmulatorProcess:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stderr_text(self) -> str:
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    def account_client(self, **kwargs: Any):
        return account_client(self.url, self._started_account_id(), **kwargs)

    def config(self, token: str = PULUMI_TOKEN) -> dict[str, str]:
        return pulumi_config(self.url, self._started_account_id(), token)

    def _started_account_id(self) -> str:
        if self.account_id is None:
            raise RuntimeError("the emulator's account id is known once it has started: call start() first")
        return self.account_id


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    result: list[bytes] = []

    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE

    def reader() -> None:
        result.append(stdout.readline())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0].decode("utf-8", "replace").strip() if result else ""
