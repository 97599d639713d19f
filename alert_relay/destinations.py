"""What each destination receives for a budget alert, and how its answer is read.

* Slack incoming webhook: Block Kit ``blocks`` plus ``text`` (the notification fallback).
* PagerDuty Events API v2: a ``trigger`` whose ``dedup_key`` is policy id + window start.
* Prometheus Alertmanager: ``POST /api/v2/alerts``, active until the budget window resets.
* Plain webhook: the alert as flat JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from alert_relay.alerts import BudgetAlert, iso
from alert_relay.config import Route

REQUEST_TIMEOUT_SECONDS = 15
USER_AGENT = "ml-budgets-alert-relay/1"
# Statuses worth another try; any other 4xx means the message itself is refused.
RETRYABLE_STATUSES = {408, 409, 425, 429}
SLACK_HEADER_LIMIT = 150


@dataclass(frozen=True)
class Request:
    url: str
    body: Any


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
        return Request(route.slack, slack_message(alert))
    if destination == "pagerduty" and route.pagerduty is not None:
        return Request(route.pagerduty.url, pagerduty_event(alert, route.pagerduty.routing_key))
    if destination == "alertmanager" and route.alertmanager is not None:
        return Request(route.alertmanager.rstrip("/") + "/api/v2/alerts", alertmanager_alerts(alert))
    if destination == "webhook" and route.webhook is not None:
        return Request(route.webhook, webhook_body(alert))
    raise ValueError(f"unknown or unconfigured destination {destination!r}")


def send(request: Request, session: requests.Session) -> Outcome:
    try:
        response = session.post(
            request.url, json=request.body, timeout=REQUEST_TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT}
        )
    except requests.RequestException as error:
        return Outcome(False, True, f"{type(error).__name__}")  # no URL: Slack's carries its token
    detail = f"HTTP {response.status_code} {response.text[:200]!r}"
    if response.status_code < 300:
        return Outcome(True, False, detail)
    retry = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
    return Outcome(False, retry, detail, retry_after(response.headers.get("Retry-After")))


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
