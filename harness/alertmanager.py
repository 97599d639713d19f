"""A real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``, installed by .ci/run).

Started on a free 127.0.0.1 port with a throwaway config (one receiver that sends nowhere) and
storage path, clustering off.  ``alerts(team=…)`` reads ``GET /api/v2/alerts``;
``received_firing()`` reads the server's own ``alertmanager_alerts_received_total`` counter, so a
test can count the alerts posted, not only the (deduplicated) alerts held.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from harness.mlflow_server import free_port

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
CONFIG = """\
route:
  receiver: nowhere
  group_wait: 1h
receivers:
  - name: nowhere
"""
RECEIVED = re.compile(r"^alertmanager_alerts_received_total\{([^}]*)\}\s+([0-9.e+]+)$", re.M)


def alertmanager_binary() -> str | None:
    return next((path for name in BINARY_NAMES if (path := shutil.which(name))), None)


@dataclass
class Alertmanager:
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        binary = alertmanager_binary()
        if binary is None:
            raise RuntimeError(f"no Alertmanager binary on PATH (looked for {', '.join(BINARY_NAMES)})")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "alertmanager.yml"
        config.write_text(CONFIG)
        with open(self.directory / "alertmanager.log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited:\n{(self.directory / 'alertmanager.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("alertmanager did not become ready in 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)

    def alerts(self, **labels: str) -> list[dict]:
        filters = [f'{k}="{v}"' for k, v in labels.items()]
        response = requests.get(f"{self.url}/api/v2/alerts", params={"filter": filters}, timeout=10)
        response.raise_for_status()
        return response.json()

    def received_firing(self) -> int:
        metrics = requests.get(f"{self.url}/metrics", timeout=10).text
        return int(sum(float(v) for labels, v in RECEIVED.findall(metrics) if 'status="firing"' in labels))


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[Alertmanager]:
    if alertmanager_binary() is None:
        pytest.fail("prometheus-alertmanager is not installed: .ci/run installs it with apt-get")
    server = Alertmanager(tmp_path / "alertmanager").start()
    yield server
    server.stop()
