"""What each destination receives for a budget alert, and how its answer is read.

* Slack incoming webhook: Block Kit ``blocks`` plus ``text`` (the notification fallback).
* PagerDuty Events API v2: a ``trigger`` whose ``dedup_key`` is policy id + window start.
* Prometheus Alertmanager: ``POST /api/v2/alerts``, active until the budget window resets.
* Plain webhook: the alert as flat JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from alert_relay.alerts import BudgetAlert, iso
from alert_relay.config import Route

# (connect, read): a destination that accepts connections and never answers is down, not slow.
REQUEST_TIMEOUT_SECONDS = (5.0, 10.0)
USER_AGENT = "ml-budgets-alert-relay/1"
# Statuses worth another try; any other 4xx means the message itself is refused.
RETRYABLE_STATUSES = {408, 409, 425, 429}
SLACK_HEADER_LIMIT = 150
DETAIL_LIMIT = 200
MAX_RETRY_AFTER_SECONDS = 86_400.0
# The least time between two requests to one destination (one webhook URL, one integration key):
# Slack's incoming webhooks allow 1 message per second (docs.slack.dev, "Rate limits"); PagerDuty's
# Events API v2, 120 events per minute per integration key.  Alertmanager and plain webhooks are
# the operator's own servers: no documented limit.  5 % above each limit: arrivals jitter.
MIN_INTERVAL_SECONDS = {"slack": 1.05, "pagerduty": 0.525, "alertmanager": 0.0, "webhook": 0.0}


@dataclass(frozen=True)
class Request:
    url: str
    body: Any
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """What the destination's answer must never carry into a log or a dead letter."""

    def encoded(self) -> bytes:
        """The JSON body; raises ValueError for what no destination accepts (NaN, infinities)."""
        return json.dumps(self.body, allow_nan=False).encode()


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool
    detail: str
    retry_after_seconds: float | None = None


def slack_message(alert: BudgetAlert) -> dict[str, Any]:
    title = ("Budget hard stop: traffic is now rejected" if alert.hard_stop else "Budget alert") + f" ({alert.team})"
    fields = [
        ("Team", alert.team),
        ("Scope", alert.scope_text),
        ("Spend", alert.money(alert.spend)),
        ("Cap", f"{alert.money(alert.amount)} {alert.window_text}"),
        ("Used", f"{alert.percent:.0f}%"),
        ("Window", f"{iso(alert.window_start)} to {iso(alert.window_end)} (resets then)"),
        ("Traffic", "rejected with HTTP 429 until the reset" if alert.hard_stop else "still flowing"),
        ("Policy", f"`{alert.policy_id}`"),
    ]
    return {
        "text": alert.summary,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_HEADER_LIMIT]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.summary}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"MLflow AI Gateway · route `{alert.route}`"}]},
        ],
    }


def pagerduty_event(alert: BudgetAlert, routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.summary[:1024],
            "source": "mlflow-ai-gateway",
            "severity": alert.severity,
            "component": alert.scope_text,
            "group": alert.team,
            "class": "budget_hard_stop" if alert.hard_stop else "budget_alert",
            "custom_details": _details(alert),
        },
    }


def alertmanager_alerts(alert: BudgetAlert) -> list[dict[str, Any]]:
    labels = {
        "alertname": "AIGatewayBudgetHardStop" if alert.hard_stop else "AIGatewayBudgetExceeded",
        "team": alert.team,
        "policy": alert.policy_id,
        "scope": alert.scope,
        "severity": alert.severity,
    }
    if alert.target:
        labels["target"] = str(alert.target)
    return [
        {
            "labels": labels,
            "annotations": {
                "summary": alert.summary,
                "spend": f"{alert.spend:.6g}",
                "amount": f"{alert.amount:.6g}",
                "percent": f"{alert.percent:.1f}",
                "window_start": iso(alert.window_start),
                "window_end": iso(alert.window_end),
            },
            "startsAt": iso(datetime.now(UTC)),
            "endsAt": iso(alert.window_end),  # the budget window resets: the condition is over
        }
    ]


def webhook_body(alert: BudgetAlert) -> dict[str, Any]:
    return {"summary": alert.summary, **_details(alert)}


def _details(alert: BudgetAlert) -> dict[str, Any]:
    return {
        "team": alert.team,
        "route": alert.route,
        "policy_id": alert.policy_id,
        "hard_stop": alert.hard_stop,
        "traffic_rejected": alert.hard_stop,
        "severity": alert.severity,
        "amount": alert.amount,
        "spend": alert.spend,
        "percent": round(alert.percent, 2),
        "unit": alert.unit,
        "scope": alert.scope,
        "target": alert.target,
        "workspace": alert.workspace,
        "window": {
            "unit": alert.duration_unit,
            "value": alert.duration_value,
            "start": iso(alert.window_start),
            "end": iso(alert.window_end),
        },
        "mlflow_delivery_id": alert.delivery_id,
    }


def request_for(destination: str, route: Route, alert: BudgetAlert) -> Request:
    if destination == "slack" and route.slack is not None:
        return Request(route.slack, slack_message(alert), _url_secrets(route.slack))
    if destination == "pagerduty" and route.pagerduty is not None:
        key = route.pagerduty.routing_key
        return Request(route.pagerduty.url, pagerduty_event(alert, key), (key, *_url_secrets(route.pagerduty.url)))
    if destination == "alertmanager" and route.alertmanager is not None:
        url = route.alertmanager.rstrip("/") + "/api/v2/alerts"
        return Request(url, alertmanager_alerts(alert), _url_secrets(route.alertmanager))
    if destination == "webhook" and route.webhook is not None:
        return Request(route.webhook, webhook_body(alert), _url_secrets(route.webhook))
    raise ValueError(f"unknown or unconfigured destination {destination!r}")


def _url_secrets(url: str) -> tuple[str, ...]:
    """A URL may be a credential (Slack's), or carry one in its path, user info or query."""
    parts = [p for p in re.split(r"[/?&=@:#]", url) if len(p) >= 8]
    return (url, *parts)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            for form in {secret, json.dumps(secret)[1:-1]}:
                text = text.replace(form, "***")
    return text


def send(request: Request, session: requests.Session) -> Outcome:
    try:
        response = session.post(
            request.url,
            data=request.encoded(),
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
        )
    except requests.RequestException as error:
        return Outcome(False, True, f"{type(error).__name__}")  # no URL: Slack's carries its token
    # Redacted before it is cut: a cut could leave part of a key that the full text would match.
    answer = redact(response.text[: DETAIL_LIMIT * 10], request.secrets)[:DETAIL_LIMIT]
    detail = f"HTTP {response.status_code} {answer!r}"
    if response.status_code < 300:
        return Outcome(True, False, detail)
    retry = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
    return Outcome(False, retry, detail, retry_after(response.headers.get("Retry-After")))


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(MAX_RETRY_AFTER_SECONDS, max(0.0, (when - datetime.now(UTC)).total_seconds()))
