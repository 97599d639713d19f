"""The durable outbox: huey's task queue (SqliteHuey on disk; RedisHuey to scale out).

One message per (MLflow delivery, destination).  Bookkeeping lives in huey's own key-value store,
so it moves with the queue when the storage changes:

* ``delivery:<id>`` claims an MLflow delivery id (``put_if_empty``, atomic): at most once;
* ``pending:<message id>`` exists from enqueue until the message is delivered or dropped (the
  queue depth and oldest age of ``/healthz``: huey's own queue misses a task being run);
* ``inflight:<message id>`` holds a message while it is being sent, with its attempt count;
* huey takes a task off the queue before running it, so a relay killed at that moment or
  mid-request would lose it: a relay starting on its SQLite queue puts back every pending message
  of the previous run that is neither queued nor scheduled (``recover_lost``); on a shared Redis
  queue, in-flight messages whose consumer went silent for a minute are put back (``recover``);
* ``dead:<message id>`` keeps a message refused by its destination or expired, for the operator.

The queue stores no secret: destinations' URLs and keys are read from the config at send time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import requests
from huey import Huey, RedisHuey, SqliteHuey, crontab

from alert_relay.alerts import BudgetAlert
from alert_relay.config import RelayConfig
from alert_relay.destinations import Outcome, request_for, send

log = logging.getLogger("alert_relay.queue")

QUEUE_NAME = "alert-relay"
TASK_NAME = "deliver"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 600.0
# An in-flight entry older than this belongs to a consumer that died (requests time out at 15 s).
LEASE_SECONDS = 60.0
# MLflow signs a timestamp: a delivery older than the signature window is refused anyway, so
# remembering ids for longer than that (with margin for clock skew) is enough.
DELIVERY_ID_MEMORY_SECONDS = 3600.0
HEARTBEAT_KEY = "consumer:heartbeat"


def make_huey(config: RelayConfig) -> Huey:
    if config.redis_url:
        return RedisHuey(QUEUE_NAME, url=config.redis_url, results=True, utc=True)
    config.queue.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(config.queue), results=True, utc=True, timeout=30)


def backoff_seconds(age_seconds: float) -> float:
    """Grows with the message's age (each wait half its age): 1, 1, 1.5, 2.25 … capped at 10 min."""
    return min(MAX_RETRY_SECONDS, max(FIRST_RETRY_SECONDS, age_seconds / 2))


class Outbox:
    def __init__(
        self,
        config: RelayConfig,
        huey: Huey | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ):
        self.config = config
        self.huey = huey if huey is not None else make_huey(config)
        self._session_factory = session_factory
        self._session: requests.Session | None = None
        self.deliver = self.huey.task(name=TASK_NAME)(self._deliver)
        self.huey.periodic_task(crontab(), name="sweep")(self.sweep)

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    # --- receiving side (web workers) ------------------------------------------------------

    def claim_delivery(self, delivery_id: str) -> bool:
        """True the first time a delivery id is seen, False for a replay or a retry by MLflow."""
        return bool(self.huey.put_if_empty(f"delivery:{delivery_id}", time.time()))

    def release_delivery(self, delivery_id: str) -> None:
        self.huey.delete(f"delivery:{delivery_id}")

    def enqueue(self, alert: BudgetAlert, destinations: list[str]) -> list[str]:
        ids: list[str] = []
        for destination in destinations:
            message: dict[str, Any] = {
                "id": uuid.uuid4().hex,
                "route": alert.route,
                "destination": destination,
                "alert": alert.to_dict(),
                "created_at": time.time(),
                "attempts": 0,
            }
            self.huey.put(f"pending:{message['id']}", message)
            self.deliver(message)
            ids.append(message["id"])
        return ids

    # --- sending side (the consumer) -------------------------------------------------------

    def _deliver(self, message: dict[str, Any]) -> None:
        self.huey.put(f"inflight:{message['id']}", {**message, "leased_at": time.time()})
        try:
            self._attempt(message)
        finally:
            self.huey.delete(f"inflight:{message['id']}")

    def _attempt(self, message: dict[str, Any]) -> None:
        label = f"{message['destination']} message {message['id']} (route {message['route']})"
        route = self.config.routes.get(message["route"])
        if route is None or getattr(route, message["destination"], None) is None:
            self._dead(message, "the route or destination is no longer in the config")
            return
        age = time.time() - message["created_at"]
        if age > self.config.expire_after_seconds:
            self._dead(message, f"expired after {message['attempts']} attempts")
            return
        alert = BudgetAlert.from_dict(message["alert"])
        outcome: Outcome = send(request_for(message["destination"], route, alert), self.session)
        attempts = message["attempts"] + 1
        if outcome.delivered:
            log.info("delivered %s after %d attempt(s)", label, attempts)
            self.huey.delete(f"pending:{message['id']}")
            return
        if not outcome.retry:
            log.error("%s refused: %s; not retried", label, outcome.detail)
            self._dead({**message, "attempts": attempts}, f"refused: {outcome.detail}")
            return
        delay = outcome.retry_after_seconds if outcome.retry_after_seconds is not None else backoff_seconds(age)
        delay = min(delay, max(0.0, self.config.expire_after_seconds - age))
        log.warning("%s failed (%s); attempt %d, next in %.1f s", label, outcome.detail, attempts, delay)
        # Scheduled before the in-flight entry is dropped: a crash in between duplicates, never loses.
        self.deliver.schedule(args=({**message, "attempts": attempts},), delay=delay)

    def _dead(self, message: dict[str, Any], reason: str) -> None:
        log.error(
            "dropping %s message %s of route %s: %s", message["destination"], message["id"], message["route"], reason
        )
        self.huey.put(f"dead:{message['id']}", {**message, "reason": reason, "dropped_at": time.time()})
        self.huey.delete(f"pending:{message['id']}")

    def recover(self, min_age_seconds: float = LEASE_SECONDS) -> int:
        """Put messages whose sender died mid-request back on the queue."""
        now, recovered = time.time(), 0
        for key, message in self._entries("inflight:"):
            if now - message.get("leased_at", 0) >= min_age_seconds:
                message = {k: v for k, v in message.items() if k != "leased_at"}
                self.deliver(message)
                self.huey.delete(key)
                recovered += 1
                log.warning("re-queued %s message %s interrupted mid-delivery", message["destination"], message["id"])
        return recovered

    def recover_lost(self, started_before: float) -> int:
        """Re-queue the previous run's pending messages that huey no longer holds (one consumer only)."""
        queued = {
            t.args[0]["id"] for t in [*self.huey.pending(), *self.huey.scheduled()] if t.name == TASK_NAME and t.args
        }
        inflight = dict(self._entries("inflight:"))
        recovered = 0
        for key, message in self._entries("pending:"):
            message_id = key.split(":", 1)[1]
            if message.get("created_at", started_before) >= started_before or message_id in queued:
                continue
            latest = inflight.get(f"inflight:{message_id}", message)
            self.deliver({k: v for k, v in latest.items() if k != "leased_at"})
            recovered += 1
            log.warning("re-queued %s message %s interrupted by the last stop", message["destination"], message_id)
        for key in inflight:
            self.huey.delete(key)
        return recovered

    def sweep(self) -> None:
        self.recover(LEASE_SECONDS)
        cutoff = time.time() - DELIVERY_ID_MEMORY_SECONDS
        for key, received_at in self._entries("delivery:"):
            if isinstance(received_at, (int, float)) and received_at < cutoff:
                self.huey.delete(key)

    # --- health ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        messages = [m for _, m in self._entries("pending:")]
        now = time.time()
        oldest = max((now - m["created_at"] for m in messages), default=None)
        dead = [m for _, m in self._entries("dead:")]
        heartbeat = self.huey.get(HEARTBEAT_KEY, peek=True)
        return {
            "consumer_heartbeat_age_seconds": None if heartbeat is None else round(now - heartbeat, 3),
            "queue_depth": len(messages),
            "oldest_pending_age_seconds": None if oldest is None else round(oldest, 3),
            "dead_letters": len(dead),
        }

    def _entries(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for key, raw in self.huey.all_results().items():
            key = key.decode() if isinstance(key, bytes) else key
            if key.startswith(prefix):
                try:
                    yield key, self.huey.serializer.deserialize(raw)
                except Exception:  # noqa: BLE001 (one unreadable entry must not hide the rest)
                    log.exception("unreadable queue entry %s", key)
