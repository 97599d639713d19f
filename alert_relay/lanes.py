"""Sending: one lane per route and destination, each with its own pace and its own outage.

A lane sends its oldest messages first, never faster than the destination's documented rate limit
(``MIN_INTERVAL_SECONDS``).  When a send fails for a reason a retry can fix, the destination is
*down*: the lane holds every message and probes with its oldest one on a short schedule
(``PROBE_SCHEDULE_SECONDS``); the first probe that gets through releases the whole backlog at
once, at the rate limit.  A 429 or 503 with ``Retry-After`` pauses the lane for that long.  No
message waits on a timer of its own, so how long an outage lasted does not change how fast the
backlog drains.  A message nothing can fix (refused by the destination, impossible to encode,
expired) goes to the dead letters at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from alert_relay.alerts import BudgetAlert
from alert_relay.config import RelayConfig, Route
from alert_relay.destinations import MIN_INTERVAL_SECONDS, Outcome, request_for, send
from alert_relay.store import Message, RedisStore, Store, dead_record

log = logging.getLogger("alert_relay.lanes")

PROBE_SCHEDULE_SECONDS = (1.0, 2.0, 4.0, 5.0)
"""Waits between probes of a down destination: its recovery is noticed within 5 s."""
BATCH = 200
IDLE_POLL_SECONDS = 0.05
DONE_FLUSH_SECONDS = 0.1
LEASE_SECONDS = 15.0


@dataclass
class LaneStatus:
    state: str = "up"  # up | down | paused
    since: float = 0.0
    failures: int = 0
    last_failure: str | None = None

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state,
            "for_seconds": round(now - self.since, 1) if self.state != "up" else None,
            "last_failure": self.last_failure if self.state != "up" else None,
        }


class Lane:
    def __init__(
        self,
        route: Route,
        destination: str,
        store: Store,
        config: RelayConfig,
        holder: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.route = route
        self.destination = destination
        self.name = f"{route.name}/{destination}"
        self.store = store
        self.config = config
        self.holder = holder
        self.clock = clock
        self.min_interval = MIN_INTERVAL_SECONDS.get(destination, 0.0)
        # Without a rate limit a lane may send several requests at once; with one, one at a time.
        self.parallel = 1 if self.min_interval else max(1, config.workers)
        self.status = LaneStatus()
        self.next_send_at = 0.0
        self._done: list[str] = []
        self._done_since = 0.0
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_maxsize=self.parallel))
        self.session.mount("https://", HTTPAdapter(pool_maxsize=self.parallel))
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix=f"lane-{self.name}")

    # --- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if not self._holds_lease():
                    stop.wait(LEASE_SECONDS / 3)
                    continue
                if not self.step(stop):
                    stop.wait(IDLE_POLL_SECONDS)
            except Exception as error:  # noqa: BLE001 (a storage hiccup must not end the lane)
                log.error("lane %s: %s: %s; retrying in 1 s", self.name, type(error).__name__, str(error)[:200])
                stop.wait(1.0)
        self._flush_done(force=True)
        self._pool.shutdown(wait=True)

    def step(self, stop: threading.Event) -> bool:
        """Send what is due; False when there was nothing to do."""
        self._flush_done()
        if self._wait_until(self.next_send_at, stop):
            return True
        batch = self.store.pending(self.name, BATCH)
        batch = self._drop_expired(batch)
        if not batch:
            self._flush_done(force=True)
            return False
        for start in range(0, len(batch), self.parallel):
            if self._wait_until(self.next_send_at, stop) or stop.is_set():
                break
            chunk = batch[start : start + self.parallel]
            self.next_send_at = self.clock() + self.min_interval
            outcomes = list(self._pool.map(self._attempt, chunk))
            if not all(self._settle(message, outcome) for message, outcome in zip(chunk, outcomes, strict=True)):
                break
        self._flush_done(force=True)
        return True

    def _wait_until(self, moment: float, stop: threading.Event) -> bool:
        """Sleep until ``moment`` unless stopping; True if the caller should look again first."""
        delay = moment - self.clock()
        if delay <= 0:
            return False
        stop.wait(min(delay, 1.0))
        return True

    # --- one message -----------------------------------------------------------------------

    def _attempt(self, message: Message) -> Outcome:
        try:
            request = request_for(self.destination, self.route, BudgetAlert.from_dict(message.alert))
            request.encoded()
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            return Outcome(False, False, f"cannot be sent: {type(error).__name__}: {str(error)[:200]}")
        return send(request, self.session)

    def _settle(self, message: Message, outcome: Outcome) -> bool:
        """Record the outcome; False when the lane must stop sending for now."""
        if outcome.delivered:
            self._done.append(message.id)
            if self.status.state != "up":
                log.info("%s is back after %.1f s; sending what it held", self.name, time.time() - self.status.since)
                self.status = LaneStatus()
            return True
        if not outcome.retry:
            log.error("%s refused message %s: %s; not retried", self.name, message.id, outcome.detail)
            self.store.dead([dead_record(message, f"refused: {outcome.detail}", time.time())])
            return True
        self._hold(outcome)
        return False

    def _hold(self, outcome: Outcome) -> None:
        status = self.status
        if status.state == "up":
            status.since = time.time()
        status.failures += 1
        status.last_failure = outcome.detail
        if outcome.retry_after_seconds is not None:
            status.state = "paused"
            delay = outcome.retry_after_seconds
        else:
            status.state = "down"
            delay = PROBE_SCHEDULE_SECONDS[min(status.failures, len(PROBE_SCHEDULE_SECONDS)) - 1]
        delay = max(delay, self.min_interval)
        self.next_send_at = self.clock() + delay
        if status.failures == 1 or status.failures % 30 == 0:  # one line per outage, not one per probe
            log.warning(
                "%s %s (%s); holding its messages, next try in %.1f s", self.name, status.state, outcome.detail, delay
            )

    def _drop_expired(self, batch: list[Message]) -> list[Message]:
        cutoff = time.time() - self.config.expire_after_seconds
        expired = [m for m in batch if m.created_at < cutoff]
        if expired:
            now = time.time()
            reason = f"expired: not delivered within {self.config.expire_after_seconds:.0f} s"
            log.error("%s: %d message(s) expired into the dead letters", self.name, len(expired))
            self.store.dead([dead_record(m, reason, now) for m in expired])
        return [m for m in batch if m.created_at >= cutoff]

    def _flush_done(self, force: bool = False) -> None:
        if not self._done:
            self._done_since = self.clock()
            return
        if force or self.clock() - self._done_since >= DONE_FLUSH_SECONDS:
            self.store.done(self._done)
            self._done = []
            self._done_since = self.clock()

    def _holds_lease(self) -> bool:
        if isinstance(self.store, RedisStore):
            return self.store.lease(self.name, self.holder, LEASE_SECONDS)
        return True  # a SQLite queue has one consumer


def lanes_for(config: RelayConfig, store: Store, holder: str) -> list[Lane]:
    return [
        Lane(route, destination, store, config, holder)
        for route in config.routes.values()
        for destination in route.destinations()
    ]
