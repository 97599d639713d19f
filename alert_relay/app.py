"""The relay's HTTP side: ``POST /mlflow/<route>`` receives MLflow webhooks, ``GET /healthz``.

The webhook URL says which budget policies the route owns and which of them mark a hard stop:
``/mlflow/<route>?policy=<id>&policy=<id>&hard_stop=<id>`` (a ``hard_stop`` id is owned too).
MLflow delivers every alert to every webhook, so events of other policies are acknowledged and
dropped; the gateway budget component builds this URL from its own policies' ids.

Whatever a request holds, the answer is a 4xx naming no internals, or a 500 that says only that:
an unknown route is answered exactly like a bad signature (route names cannot be probed), and
nothing a caller sends is logged longer than ``LOGGED_CHARS``.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from alert_relay.alerts import EVENT, BudgetAlert, NotABudgetAlert
from alert_relay.config import RelayConfig
from alert_relay.destinations import request_for
from alert_relay.queue import Outbox
from alert_relay.signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verification_failure,
)

log = logging.getLogger("alert_relay.app")
CONSUMER_STALE_SECONDS = 30
# MLflow's budget_policy.exceeded body is under 1 KB; 64 KB leaves room for any future field.
MAX_BODY_BYTES = 64 * 1024
LOGGED_CHARS = 64


def create_app(config: RelayConfig, outbox: Outbox) -> Flask:
    app = Flask("alert_relay")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Unknown routes are checked against a secret nobody has: same checks, same answers.
    decoy_secret = secrets.token_urlsafe(32)

    @app.post("/mlflow/<route_name>")
    def receive(route_name: str) -> ResponseReturnValue:
        route = config.routes.get(route_name)
        body = request.get_data(cache=False)
        delivery_id = request.headers.get(DELIVERY_ID_HEADER)
        failure = verification_failure(
            route.secret if route else decoy_secret,
            delivery_id,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
        )
        if route is None or failure or delivery_id is None:
            failure = failure or "signature does not match"
            log.warning("refused a delivery to %s: %s", _loggable(route_name) if route else "an unknown route", failure)
            return _answer(401, failure)

        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            return _refuse(outbox, route.name, delivery_id, "the body is not a JSON document")
        if not isinstance(envelope, dict):
            return _refuse(outbox, route.name, delivery_id, "the body is not a JSON object")
        if (envelope.get("entity"), envelope.get("action")) != EVENT:
            return _answer(200, "not a budget_policy.exceeded event; dropped")
        data = envelope.get("data")
        policy_id = data.get("budget_policy_id") if isinstance(data, dict) else None
        if not isinstance(policy_id, str):
            return _refuse(outbox, route.name, delivery_id, "data.budget_policy_id is missing or not a string")
        hard_stops = set(request.args.getlist("hard_stop"))
        if policy_id not in set(request.args.getlist("policy")) | hard_stops:
            return _answer(200, "not a policy of this route; dropped")
        try:
            alert = BudgetAlert.from_envelope(
                envelope, route=route.name, team=route.team, hard_stop=policy_id in hard_stops, delivery_id=delivery_id
            )
            for destination in route.destinations():  # what every destination will be sent, now
                request_for(destination, route, alert).encoded()
        except NotABudgetAlert as error:
            return _refuse(outbox, route.name, delivery_id, str(error), policy_id=policy_id)
        except (ValueError, OverflowError) as error:
            reason = f"the alert cannot be rendered: {type(error).__name__}"
            return _refuse(outbox, route.name, delivery_id, reason, policy_id=policy_id)

        ids = outbox.accept(alert, route.destinations())
        if ids is None:
            log.info("route %s: delivery %s already received; not forwarded again", route.name, _loggable(delivery_id))
            return _answer(200, "duplicate delivery id; already queued")
        log.info("route %s: policy %s queued for %s", route.name, policy_id, ", ".join(route.destinations()))
        return _answer(202, "queued", messages=ids)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        health = outbox.health()
        heartbeat = health["consumer_heartbeat_age_seconds"]
        # Accepting alerts that no consumer sends is an alert that cannot arrive: say so.
        healthy = heartbeat is not None and heartbeat < CONSUMER_STALE_SECONDS
        body = {"status": "ok" if healthy else "no delivery consumer", "routes": sorted(config.routes), **health}
        return jsonify(body), 200 if healthy else 503

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        return _answer(error.code or 500, error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        # One bounded line, no traceback: a caller must not be able to fill the log or learn internals.
        log.error("%s %s failed: %s", request.method, _loggable(request.path), type(error).__name__)
        return _answer(503 if _is_storage_error(error) else 500, "internal error")

    return app


def _refuse(outbox: Outbox, route: str, delivery_id: str, reason: str, **facts: Any) -> ResponseReturnValue:
    """A signed delivery that no retry can make sendable: 422, and a dead letter the operator sees."""
    log.error("route %s: delivery %s cannot be sent: %s", route, _loggable(delivery_id), reason)
    facts = {k: _loggable(v) if isinstance(v, str) else None for k, v in facts.items()}
    outbox.refuse(route, delivery_id, reason, **facts)
    return _answer(422, f"not a deliverable budget alert: {reason}")


def _is_storage_error(error: Exception) -> bool:
    """MLflow retries on 5xx: a queue that is briefly unavailable answers 503 (retry)."""
    return type(error).__module__.split(".")[0] in ("sqlite3", "redis")


def _loggable(value: str) -> str:
    text = value if len(value) <= LOGGED_CHARS else value[:LOGGED_CHARS] + "…"
    return repr(text)[1:-1]


def _answer(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"message": message, **extra}), status
