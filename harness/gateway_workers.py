"""Talk to one chosen worker of a multi-worker ``mlflow server``.

Uvicorn's workers share one listening socket and the kernel hands each new connection to one of
them; a kept-alive HTTP/1.1 connection stays with that worker.  ``pin_every_worker`` opens
connections until it holds one per worker, telling the workers apart by the process that owns the
server side of each connection (``/proc/net/tcp`` and ``/proc/<pid>/fd``: Linux, same machine).
So a test decides which worker serves each request instead of hoping the kernel spreads them.

A budget write served by a worker makes that worker (and only it) reload every policy at once
(mlflow/server/handlers.py: ``invalidate()`` then ``maybe_refresh_budget_policies``):
``WorkerConnection.reload_budgets`` uses that to bring a chosen worker up to date without waiting.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.mlflow_server import MlflowServer

BUDGETS = "/api/3.0/mlflow/gateway/budgets"
QUESTION = {"messages": [{"role": "user", "content": "How much is left?"}]}


@dataclass
class WorkerConnection:
    """One kept-alive connection, hence one worker (``pid``)."""

    server: MlflowServer
    connection: http.client.HTTPConnection
    pid: int = 0
    statuses: list[int] = field(default_factory=list)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.getheader("connection", "").lower() == "close":
            raise AssertionError(f"worker {self.pid} closed the kept-alive connection")
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, data.decode(errors="replace")

    def invoke(self, endpoint_name: str) -> int:
        """One gateway call; its HTTP status (200 admitted, 429 rejected by a budget)."""
        status, _ = self.request("POST", f"/gateway/{endpoint_name}/mlflow/invocations", QUESTION)
        self.statuses.append(status)
        return status

    def windows(self) -> dict[str, float]:
        """This worker's view of every window: policy id -> current spend."""
        status, body = self.request("GET", f"{BUDGETS}/windows")
        assert status == 200, body
        return {w["budget_policy_id"]: float(w.get("current_spend", 0.0)) for w in body.get("windows", [])}

    def update_budget(self, policy_id: str, amount_usd: float) -> dict[str, Any]:
        status, body = self.request(
            "POST", f"{BUDGETS}/update", {"budget_policy_id": policy_id, "budget_amount": amount_usd}
        )
        assert status == 200, body
        policy: dict[str, Any] = body["budget_policy"]
        return policy

    def reload_budgets(self, policy_id: str, amount_usd: float) -> None:
        """Make this worker reload every policy now: a budget write it serves (same amount)."""
        self.update_budget(policy_id, amount_usd)

    def close(self) -> None:
        self.connection.close()


def pin_every_worker(server: MlflowServer, workers: int, attempts: int = 400) -> list[WorkerConnection]:
    """One kept-alive connection on each of ``workers`` distinct worker processes."""
    pinned: dict[int, WorkerConnection] = {}
    extra: list[WorkerConnection] = []
    for _ in range(attempts):
        connection = WorkerConnection(server, http.client.HTTPConnection("127.0.0.1", server.port, timeout=60))
        status, _ = connection.request("GET", "/health")
        assert status == 200
        connection.pid = serving_pid(server, connection.connection)
        if connection.pid in pinned:
            extra.append(connection)
        else:
            pinned[connection.pid] = connection
        if len(pinned) == workers:
            break
    for connection in extra:
        connection.close()
    assert len(pinned) == workers, (
        f"{attempts} new connections reached only {len(pinned)} of {workers} workers: the kernel no longer "
        "spreads connections over uvicorn's workers, or the server runs fewer workers"
    )
    return sorted(pinned.values(), key=lambda c: c.pid)


def serving_pid(server: MlflowServer, connection: http.client.HTTPConnection) -> int:
    """The server process holding the other end of ``connection`` (already answered once)."""
    assert connection.sock is not None and server.process is not None
    client_port = connection.sock.getsockname()[1]
    inode = _server_socket_inode(server.port, client_port)
    target = f"socket:[{inode}]"
    for pid in _process_group(server.process.pid):
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            if any(os.readlink(fd) == target for fd in fd_dir.iterdir()):
                return pid
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    raise AssertionError(f"no process of the server holds the connection from port {client_port}")


def _server_socket_inode(server_port: int, client_port: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                return inode
        time.sleep(0.05)
    raise AssertionError(f"no server socket for the connection from port {client_port}")


def _process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        fields_after_comm = stat.rsplit(")", 1)[1].split()
        if int(fields_after_comm[2]) == pgid:
            pids.append(int(entry.name))
    return pids
