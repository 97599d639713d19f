"""The delivery side: a huey consumer sending queued messages (``python -m alert_relay.consumer``).

``python -m alert_relay`` starts one beside the web server; run it alone to add delivery capacity
on a shared Redis queue.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

from alert_relay.config import load_config
from alert_relay.queue import HEARTBEAT_KEY, LEASE_SECONDS, Outbox

HEARTBEAT_SECONDS = 5.0
log = logging.getLogger("alert_relay.consumer")


def _watch(outbox: Outbox, parent_pid: int | None) -> None:
    """Heartbeat for /healthz; stop when the process that started us is gone."""
    while True:
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the relay process is gone; stopping")
            os.kill(os.getpid(), signal.SIGINT)  # huey's graceful stop
            return
        try:
            outbox.huey.put(HEARTBEAT_KEY, time.time())
        except Exception:  # noqa: BLE001 (the storage may be briefly busy)
            log.exception("heartbeat failed")
        time.sleep(HEARTBEAT_SECONDS)


def run(config_path: str, parent_pid: int | None = None, started_at: float | None = None) -> None:
    config = load_config(config_path)
    outbox = Outbox(config)
    if config.redis_url is None and started_at is not None:
        # A local SQLite queue has this one consumer: what the last run left behind was interrupted.
        outbox.recover_lost(started_before=started_at)
    else:
        outbox.recover(LEASE_SECONDS)
    threading.Thread(target=_watch, args=(outbox, parent_pid), daemon=True).start()
    consumer = outbox.huey.create_consumer(
        workers=config.workers,
        worker_type="thread",
        periodic=True,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=0.5,
        scheduler_interval=1,
    )
    consumer.run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m alert_relay.consumer", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--started-at", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [alert_relay.consumer] %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)
    run(args.config, args.parent_pid, args.started_at)


if __name__ == "__main__":
    main()
