"""The delivery side (``python -m alert_relay.consumer``): one lane per route and destination.

``python -m alert_relay`` starts one beside the web server; run more beside other replicas on a
shared Redis queue (each lane is sent by one consumer at a time: one rate limit).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from types import FrameType

from alert_relay.config import ConfigError, RelayConfig, load_config
from alert_relay.lanes import Lane, lanes_for
from alert_relay.queue import CONSUMER_STATE_KEY
from alert_relay.store import DELIVERY_ID_MEMORY_SECONDS, Store, dead_record, lane_name, open_store

HEARTBEAT_SECONDS = 2.0
CHECKPOINT_SECONDS = 1.0
FORGET_SECONDS = 60.0
log = logging.getLogger("alert_relay.consumer")


def _housekeeping(
    store: Store, config: RelayConfig, lanes: list[Lane], stop: threading.Event, parent_pid: int | None
) -> None:
    """Heartbeat and destination states for /healthz, checkpoints, forgetting old delivery ids."""
    last_heartbeat = last_forget = 0.0
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the relay process is gone; stopping")
            stop.set()
            return
        now = time.monotonic()
        try:
            store.maintain()
            if now - last_heartbeat >= HEARTBEAT_SECONDS:
                wall = time.time()
                state = {"heartbeat": wall, "lanes": {lane.name: lane.status.as_dict(wall) for lane in lanes}}
                store.put_state(CONSUMER_STATE_KEY, state)
                last_heartbeat = now
            if now - last_forget >= FORGET_SECONDS:
                store.forget_deliveries(time.time() - DELIVERY_ID_MEMORY_SECONDS)
                _drop_unrouted(store, config)
                last_forget = now
        except Exception as error:  # noqa: BLE001 (the storage may be briefly busy)
            log.error("housekeeping: %s: %s", type(error).__name__, str(error)[:200])
        stop.wait(CHECKPOINT_SECONDS)


def _drop_unrouted(store: Store, config: RelayConfig) -> None:
    """Messages of a route or destination no longer in the config can never be sent."""
    configured = {lane_name(r.name, d) for r in config.routes.values() for d in r.destinations()}
    for lane in store.lanes() - configured:
        messages = store.pending(lane, 10_000)
        now = time.time()
        store.dead([dead_record(m, "the route or destination is no longer in the config", now) for m in messages])
        log.error("lane %s is not in the config: %d message(s) moved to the dead letters", lane[:100], len(messages))


def run(config: RelayConfig, parent_pid: int | None = None) -> None:
    store = open_store(config.queue, config.redis_url)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    holder = uuid.uuid4().hex
    lanes = lanes_for(config, store, holder)
    threads = [threading.Thread(target=lane.run, args=(stop,), name=f"lane {lane.name}") for lane in lanes]
    threads.append(
        threading.Thread(target=_housekeeping, args=(store, config, lanes, stop, parent_pid), name="housekeeping")
    )
    for thread in threads:
        thread.start()
    log.info("sending %d destination(s): %s", len(lanes), ", ".join(lane.name for lane in lanes))
    while not stop.is_set():
        stop.wait(1.0)
    for thread in threads:
        thread.join(timeout=30)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m alert_relay.consumer", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [alert_relay.consumer] %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    run(config, args.parent_pid)


if __name__ == "__main__":
    main()
