"""``python -m alert_relay``: waitress serving the Flask app, plus the delivery consumer.

waitress reads every request whole on its I/O loop before a worker thread sees it: a client that
sends slowly or stops mid-body holds a socket, never a worker, and is dropped after
``READ_TIMEOUT_SECONDS`` of silence; a body over ``MAX_BODY_BYTES`` is refused (413) unread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from types import FrameType

from waitress.server import create_server

from alert_relay.config import ConfigError, RelayConfig, load_config
from alert_relay.store import Store, open_store

WEB_THREADS = 8
READ_TIMEOUT_SECONDS = 10
MAX_HEADER_BYTES = 32 * 1024
CONNECTION_LIMIT = 500
log = logging.getLogger("alert_relay.server")


def open_queue(config: RelayConfig) -> Store:
    """The queue, checked before anything is served; one line and exit 2 if it is unusable."""
    where = "the Redis queue of `queue`" if config.redis_url else f"the queue file {config.queue}"
    try:
        store = open_store(config.queue, config.redis_url)
        store.check()
    except Exception as error:  # noqa: BLE001 (sqlite3, OSError, redis: each is one line for the operator)
        print(f"cannot open {where}: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
        raise SystemExit(2) from None
    return store


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
    store = open_queue(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")

    from alert_relay.app import MAX_BODY_BYTES, create_app
    from alert_relay.queue import Outbox

    app = create_app(config, Outbox(config, store))
    server = create_server(
        app,
        host=args.host,
        port=args.port,
        threads=WEB_THREADS,
        channel_timeout=READ_TIMEOUT_SECONDS,
        cleanup_interval=1,
        max_request_body_size=MAX_BODY_BYTES,
        max_request_header_size=MAX_HEADER_BYTES,
        connection_limit=CONNECTION_LIMIT,
        ident="alert-relay",
    )
    consumer = subprocess.Popen(
        [sys.executable, "-m", "alert_relay.consumer", "--config", os.path.abspath(args.config)]
        + ["--parent-pid", str(os.getpid())]
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    url_host = f"[{host}]" if ":" in str(host) else host
    print(
        json.dumps({"url": f"http://{url_host}:{port}", "pid": os.getpid(), "consumer_pid": consumer.pid}), flush=True
    )
    try:
        server.run()
    finally:
        server.close()
        store.close()
        if consumer.poll() is None:
            consumer.send_signal(signal.SIGINT)  # the consumer finishes the request at hand
            try:
                consumer.wait(timeout=20)
            except subprocess.TimeoutExpired:
                consumer.kill()
