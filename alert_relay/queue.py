"""The durable outbox as the web side sees it: accept an alert, refuse one, report health.

Accepting writes, in one storage transaction, the MLflow delivery id (at most once) and one message
per destination of the route (see ``alert_relay.store``).  The consumer (``alert_relay.lanes``)
sends them and records what each destination is doing in the store's ``consumer`` state, which
``/healthz`` reports.

The queue stores no secret: destinations' URLs and keys are read from the config at send time.
"""

from __future__ import annotations

import time
from typing import Any

from alert_relay.alerts import BudgetAlert
from alert_relay.config import RelayConfig
from alert_relay.store import Message, Store, dead_record, open_store

CONSUMER_STATE_KEY = "consumer"
RECENT_DEAD_LETTERS = 5


class Outbox:
    def __init__(self, config: RelayConfig, store: Store | None = None):
        self.config = config
        self.store = store if store is not None else open_store(config.queue, config.redis_url)

    def accept(self, alert: BudgetAlert, destinations: list[str]) -> list[str] | None:
        """The new messages' ids, or None when this delivery id was already accepted."""
        now = time.time()
        messages = [Message(alert.route, destination, alert.to_dict(), now) for destination in destinations]
        if not self.store.accept(alert.delivery_id, messages, now):
            return None
        return [m.id for m in messages]

    def refuse(self, route: str, delivery_id: str, reason: str, **facts: Any) -> None:
        """An authentic delivery that no destination could ever be sent: a dead letter at once."""
        self.store.dead([dead_record(None, reason, time.time(), route=route, delivery_id=delivery_id, **facts)])

    def health(self) -> dict[str, Any]:
        now = time.time()
        depth = self.store.depth()
        consumer = self.store.get_state(CONSUMER_STATE_KEY) or {}
        heartbeat = consumer.get("heartbeat")
        recent = self.store.dead_letters(RECENT_DEAD_LETTERS) if depth.dead_letters else []
        return {
            "consumer_heartbeat_age_seconds": None if heartbeat is None else round(now - heartbeat, 3),
            "queue_depth": depth.pending,
            "oldest_pending_age_seconds": (
                None if depth.oldest_created_at is None else round(now - depth.oldest_created_at, 3)
            ),
            "dead_letters": depth.dead_letters,
            "recent_dead_letters": [
                {k: r.get(k) for k in ("route", "destination", "reason", "dropped_at")} for r in recent
            ],
            "destinations": consumer.get("lanes", {}),
        }
