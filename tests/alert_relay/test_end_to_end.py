"""Budget alerts from the real MLflow AI Gateway to people, through the relay.

The real stack program (``__main__.py`` through the test engine and the SDK's provider server)
declares two teams' gateway budgets on a running ``mlflow server`` whose endpoints call the
OpenAI-compatible fake ($0.21 a call); each team's webhook is a route of the relay started with
``python -m alert_relay``, whose destinations are the Slack and PagerDuty fakes and a real
Alertmanager.

Team search: limit $1.00, an ALERT tier at 50 % and a hard stop (REJECT at $1.00 announced by
an ALERT at $1.00, marked ``hard_stop`` in the URL the component builds).  Team recsys: limit
$0.80, one ALERT tier at 50 %.  MLflow delivers every alert to both teams' webhooks; each route
forwards only its own.
"""

from __future__ import annotations

import time

import pytest
import requests

from harness.engine import LocalEngine
from harness.mlflow_server import create_gateway_endpoint, provider_env
from harness.slack_fake import SlackFake

SEARCH_SECRET = "whsec-search-e2e"
RECSYS_SECRET = "whsec-recsys-e2e"
SEARCH_PD_KEY = "SEARCHR0UT1NGKEY0000000000000001"
RECSYS_PD_KEY = "RECSYSR0UT1NGKEY0000000000000002"


@pytest.fixture
def recsys_slack():
    fake = SlackFake().start()
    yield fake
    fake.stop()


def invoke(mlflow_server, endpoint_name: str) -> requests.Response:
    return requests.post(
        f"{mlflow_server.url}/gateway/{endpoint_name}/mlflow/invocations",
        json={"messages": [{"role": "user", "content": "How much is left?"}]},
        timeout=30,
    )


def mentions(policy_id: str):
    return lambda message: policy_id in str(message)


def team(name: str, endpoint, limit: float, hard_stop: bool, secret: str) -> dict:
    return {
        "name": name,
        "gateway": {
            "limitUsd": limit,
            "window": "daily",
            "scope": "ENDPOINT",
            "target": endpoint.name,
            "alertThresholds": [50],
            "hardStop": hard_stop,
            "webhook": {"route": name, "secret": secret},
        },
    }


def test_gateway_alerts_reach_each_teams_slack_pagerduty_and_alertmanager_once(
    request,
    mlflow_server,
    provider_server_factory,
    openai_fake,
    start_relay,
    slack_fake,
    recsys_slack,
    pagerduty_fake,
    alertmanager,
):
    relay = start_relay(
        {
            "expire_after": "1h",
            "routes": {
                "search": {
                    "secret": "${SEARCH_WEBHOOK_SECRET}",
                    "slack": "${SEARCH_SLACK_WEBHOOK_URL}",
                    "pagerduty": {"routing_key": "${SEARCH_PD_KEY}", "url": pagerduty_fake.url},
                    "alertmanager": alertmanager.url,
                },
                "recsys": {
                    "secret": "${RECSYS_WEBHOOK_SECRET}",
                    "slack": "${RECSYS_SLACK_WEBHOOK_URL}",
                    "pagerduty": {"routing_key": "${RECSYS_PD_KEY}", "url": pagerduty_fake.url},
                    "alertmanager": alertmanager.url,
                },
            },
        },
        {
            "SEARCH_WEBHOOK_SECRET": SEARCH_SECRET,
            "SEARCH_SLACK_WEBHOOK_URL": slack_fake.url,
            "SEARCH_PD_KEY": SEARCH_PD_KEY,
            "RECSYS_WEBHOOK_SECRET": RECSYS_SECRET,
            "RECSYS_SLACK_WEBHOOK_URL": recsys_slack.url,
            "RECSYS_PD_KEY": RECSYS_PD_KEY,
        },
    )
    search = create_gateway_endpoint(mlflow_server.tracking_uri, openai_fake.url)
    recsys = create_gateway_endpoint(mlflow_server.tracking_uri, openai_fake.url)
    engine = LocalEngine(
        provider_server_factory(config={"mlflow:trackingUri": mlflow_server.tracking_uri}, env=provider_env())
    )
    stack = {
        "mlflow:trackingUri": mlflow_server.tracking_uri,
        "ml-budgets:alertRelay": {"url": relay.url},
        "ml-budgets:teams": [
            team("search", search, 1.00, True, SEARCH_SECRET),
            team("recsys", recsys, 0.80, False, RECSYS_SECRET),
        ],
    }
    request.addfinalizer(engine.destroy)
    exports = engine.up(stack).exports["teams"]
    search_tier = exports["search"]["gateway_alert_policy_ids"]["50pct"]
    search_stop = exports["search"]["gateway_hard_stop_alert_policy_id"]
    recsys_tier = exports["recsys"]["gateway_alert_policy_ids"]["50pct"]
    time.sleep(1.2)  # the server caches the list of webhooks for MLFLOW_WEBHOOK_CACHE_TTL=1 s

    assert [invoke(mlflow_server, search.name).status_code for _ in range(6)] == [200] * 5 + [429]
    assert [invoke(mlflow_server, recsys.name).status_code for _ in range(2)] == [200, 200]

    # Each destination of each team: one message per crossed policy.
    assert len(slack_fake.wait_for(lambda m: True, count=2)) == 2
    assert len(recsys_slack.wait_for(lambda m: True, count=1)) == 1
    assert len(pagerduty_fake.wait_for(lambda e: True, count=3)) == 3
    relay.wait_drained()
    deadline = time.monotonic() + 30
    while alertmanager.received_firing() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)

    # Quiet now: the queue is empty and every route has what it was owed, no more.
    assert [len(slack_fake.matching(mentions(p))) for p in (search_tier, search_stop, recsys_tier)] == [1, 1, 0]
    assert [len(recsys_slack.matching(mentions(p))) for p in (search_tier, search_stop, recsys_tier)] == [0, 0, 1]
    assert len(slack_fake.messages) == 2 and len(recsys_slack.messages) == 1

    (tier_message,) = slack_fake.matching(mentions(search_tier))
    (stop_message,) = slack_fake.matching(mentions(search_stop))
    assert "[search]" in tier_message["text"] and "$0.50" in tier_message["text"] and "$0.63" in tier_message["text"]
    assert "traffic is now rejected" not in tier_message["text"]
    assert "$1.00" in stop_message["text"] and "$1.05" in stop_message["text"]
    assert "traffic is now rejected" in stop_message["text"]
    assert f"endpoint {search.endpoint_id}" in stop_message["text"]
    assert "[recsys]" in recsys_slack.messages[0]["text"] and "$0.40" in recsys_slack.messages[0]["text"]
    assert "$0.42" in recsys_slack.messages[0]["text"]

    events = {e["dedup_key"].split(":")[0]: e for e in pagerduty_fake.events}
    assert sorted(events) == sorted([search_tier, search_stop, recsys_tier]) and len(pagerduty_fake.events) == 3
    assert events[search_tier]["payload"]["severity"] == "warning"
    assert events[search_stop]["payload"]["severity"] == "critical"
    assert events[recsys_tier]["payload"]["severity"] == "warning"
    assert events[search_stop]["routing_key"] == SEARCH_PD_KEY
    assert events[recsys_tier]["routing_key"] == RECSYS_PD_KEY
    assert events[search_stop]["payload"]["custom_details"]["amount"] == 1.0
    assert events[search_stop]["payload"]["custom_details"]["spend"] == pytest.approx(1.05)
    assert pagerduty_fake.rejected == []

    assert alertmanager.received_firing() == 3
    held = {(a["labels"]["team"], a["labels"]["policy"], a["labels"]["severity"]) for a in alertmanager.alerts()}
    assert held == {
        ("search", search_tier, "warning"),
        ("search", search_stop, "critical"),
        ("recsys", recsys_tier, "warning"),
    }
