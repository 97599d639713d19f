"""``python -m alert_relay``: gunicorn serving the Flask app, plus the delivery consumer."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from gunicorn.app.base import BaseApplication

from alert_relay.config import ConfigError, RelayConfig, load_config

if TYPE_CHECKING:
    from gunicorn._types import _WSGIAppType
    from gunicorn.arbiter import Arbiter

WEB_WORKERS = 2


class RelayServer(BaseApplication):
    def __init__(self, config_path: str, config: RelayConfig, host: str, port: int, web_workers: int = WEB_WORKERS):
        self.config_path = config_path
        self.relay_config = config
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.web_workers = web_workers
        self.consumer: subprocess.Popen[bytes] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in {
            "bind": [self.bind],
            "workers": self.web_workers,
            "worker_class": "sync",
            "timeout": 30,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "alert-relay",
            "when_ready": self._when_ready,
            "on_exit": self._on_exit,
            "control_socket_disable": True,  # gunicorn >= 25.1: no shared ~/.gunicorn/gunicorn.ctl
        }.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> _WSGIAppType:
        from alert_relay.app import create_app
        from alert_relay.queue import Outbox

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
        # gunicorn's stubs type the WSGI environ as a MutableMapping; Flask, like PEP 3333, takes the
        # dict that gunicorn actually passes.
        return create_app(self.relay_config, Outbox(self.relay_config))  # type: ignore[return-value]

    def _when_ready(self, arbiter: Arbiter) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        self.consumer = subprocess.Popen(
            # Before any web worker of this run exists: older pending messages are the last run's.
            [
                sys.executable,
                "-m",
                "alert_relay.consumer",
                "--config",
                self.config_path,
                "--parent-pid",
                str(os.getpid()),
                "--started-at",
                repr(time.time()),
            ]
        )
        url_host = f"[{host}]" if ":" in host else host
        print(
            json.dumps({"url": f"http://{url_host}:{port}", "pid": os.getpid(), "consumer_pid": self.consumer.pid}),
            flush=True,
        )

    def _on_exit(self, arbiter: Arbiter) -> None:
        if self.consumer is not None and self.consumer.poll() is None:
            self.consumer.send_signal(2)  # SIGINT: huey finishes the task at hand
            try:
                self.consumer.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.consumer.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m alert_relay",
        description="Relay MLflow budget webhooks to Slack, PagerDuty, Alertmanager and JSON webhooks.",
    )
    parser.add_argument("--config", required=True, help="the relay's YAML config")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 = any free port (default 8080)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    RelayServer(os.path.abspath(args.config), config, args.host, args.port).run()
