"""The relay's HTTP side: ``POST /mlflow/<route>`` receives MLflow webhooks, ``GET /healthz``.

The webhook URL says which budget policies the route owns and which of them mark a hard stop:
``/mlflow/<route>?policy=<id>&policy=<id>&hard_stop=<id>`` (a ``hard_stop`` id is owned too).
MLflow delivers every alert to every webhook, so events of other policies are acknowledged and
dropped; the gateway budget component builds this URL from its own policies' ids.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from alert_relay.alerts import BudgetAlert, NotABudgetAlert
from alert_relay.config import RelayConfig
from alert_relay.queue import Outbox
from alert_relay.signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verification_failure,
)

log = logging.getLogger("alert_relay.app")
CONSUMER_STALE_SECONDS = 30


def create_app(config: RelayConfig, outbox: Outbox) -> Flask:
    app = Flask("alert_relay")

    @app.post("/mlflow/<route_name>")
    def receive(route_name: str) -> ResponseReturnValue:
        route = config.routes.get(route_name)
        if route is None:
            return _answer(404, f"no route {route_name!r} in the relay config")
        body = request.get_data(cache=False)
        delivery_id = request.headers.get(DELIVERY_ID_HEADER)
        failure = verification_failure(
            route.secret,
            delivery_id,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
        )
        if failure or delivery_id is None:  # verification_failure names a missing delivery id
            log.warning("route %s: refused delivery %s: %s", route_name, delivery_id, failure)
            return _answer(401, failure or f"missing {DELIVERY_ID_HEADER}")

        hard_stops = set(request.args.getlist("hard_stop"))
        owned = set(request.args.getlist("policy")) | hard_stops
        try:
            envelope = json.loads(body)
            policy_id = envelope.get("data", {}).get("budget_policy_id") if isinstance(envelope, dict) else None
            if policy_id not in owned:
                return _answer(200, "not a policy of this route; dropped")
            alert = BudgetAlert.from_envelope(
                envelope, route=route.name, team=route.team, hard_stop=policy_id in hard_stops, delivery_id=delivery_id
            )
        except (ValueError, AttributeError, NotABudgetAlert) as error:
            return _answer(200, f"not a budget alert ({error}); dropped")

        if not outbox.claim_delivery(delivery_id):
            log.info("route %s: delivery %s already received; not forwarded again", route_name, delivery_id)
            return _answer(200, "duplicate delivery id; already queued")
        try:
            ids = outbox.enqueue(alert, route.destinations())
        except Exception:  # noqa: BLE001 (MLflow retries on 5xx: let it, with the id released)
            log.exception("route %s: could not queue delivery %s", route_name, delivery_id)
            outbox.release_delivery(delivery_id)
            return _answer(503, "the queue is unavailable; retry")
        log.info("route %s: policy %s queued for %s", route_name, policy_id, ", ".join(route.destinations()))
        return _answer(202, "queued", messages=ids)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        health = outbox.health()
        heartbeat = health["consumer_heartbeat_age_seconds"]
        # Accepting alerts that no consumer sends is an alert that cannot arrive: say so.
        healthy = heartbeat is not None and heartbeat < CONSUMER_STALE_SECONDS
        body = {"status": "ok" if healthy else "no delivery consumer", "routes": sorted(config.routes), **health}
        return jsonify(body), 200 if healthy else 503

    return app


def _answer(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"message": message, **extra}), status
