"""The relay as a process: signature checks, at-most-once, retries, restarts, expiry.

Deliveries are posted exactly as MLflow signs them; destinations are the Slack and PagerDuty fakes
(which answer 400 to what the real services refuse) and a real Alertmanager.  "Nothing forwarded"
is confirmed by a condition: a valid delivery posted afterwards arrives and the queue drains, so
anything queued before it would have been sent first.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from harness.alert_relay import budget_envelope, signed_post

SECRET = "whsec-search-test-only"
PD_KEY = "R0UT1NGKEY0000000000000000000042"  # 32 characters, like a real integration key


def policy_id() -> str:
    return "bp-" + uuid.uuid4().hex


def search_route(slack_fake, pagerduty_fake=None, alertmanager=None, **extra) -> tuple[dict, dict]:
    route = {"secret": "${SEARCH_WEBHOOK_SECRET}", "slack": "${SEARCH_SLACK_WEBHOOK_URL}"}
    env = {"SEARCH_WEBHOOK_SECRET": SECRET, "SEARCH_SLACK_WEBHOOK_URL": slack_fake.url}
    if pagerduty_fake is not None:
        route["pagerduty"] = {"routing_key": "${SEARCH_PD_KEY}", "url": pagerduty_fake.url}
        env["SEARCH_PD_KEY"] = PD_KEY
    if alertmanager is not None:
        route["alertmanager"] = alertmanager.url
    return {"expire_after": "1h", "routes": {"search": route}, **extra}, env


def about(policy: str):
    return lambda message: policy in message["text"] or any(policy in str(b) for b in message.get("blocks", []))


def deliver_sentinel(relay, slack_fake) -> None:
    """A valid delivery sent last: once it arrived and the queue is empty, nothing else is coming."""
    sentinel = policy_id()
    assert signed_post(relay.webhook_url("search", [sentinel]), SECRET, budget_envelope(sentinel)).status_code == 202
    assert len(slack_fake.wait_for(about(sentinel))) == 1
    relay.wait_drained()


def test_forged_stale_and_unsigned_deliveries_are_refused_and_forward_nothing(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    policy = policy_id()
    url = relay.webhook_url("search", [policy])
    envelope = budget_envelope(policy)

    forged = signed_post(url, "not-the-route-secret", envelope)
    stale = signed_post(url, SECRET, envelope, timestamp=int(time.time()) - 301)
    future = signed_post(url, SECRET, envelope, timestamp=int(time.time()) + 301)
    tampered = signed_post(url, SECRET, envelope, signature="v1,AAAA")
    unsigned = signed_post(url, SECRET, envelope, signature="")
    assert [r.status_code for r in (forged, stale, future, tampered, unsigned)] == [401] * 5
    assert "5-minute" in stale.json()["message"]

    deliver_sentinel(relay, slack_fake)
    assert slack_fake.matching(about(policy)) == []
    assert len(slack_fake.messages) == 1


def test_a_replayed_delivery_id_is_forwarded_once(start_relay, slack_fake, pagerduty_fake):
    config, env = search_route(slack_fake, pagerduty_fake)
    relay = start_relay(config, env)
    policy = policy_id()
    url = relay.webhook_url("search", [policy])
    delivery_id = str(uuid.uuid4())

    first = signed_post(url, SECRET, budget_envelope(policy), delivery_id=delivery_id)
    replay = signed_post(url, SECRET, budget_envelope(policy), delivery_id=delivery_id)
    assert (first.status_code, replay.status_code) == (202, 200)
    assert "duplicate" in replay.json()["message"]

    deliver_sentinel(relay, slack_fake)
    assert len(slack_fake.matching(about(policy))) == 1
    assert len(pagerduty_fake.wait_for(lambda e: e["dedup_key"].startswith(policy))) == 1


def test_events_of_policies_the_route_does_not_own_are_acknowledged_and_dropped(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    ours, theirs = policy_id(), policy_id()
    response = signed_post(relay.webhook_url("search", [ours]), SECRET, budget_envelope(theirs))
    assert response.status_code == 200 and "dropped" in response.json()["message"]
    deliver_sentinel(relay, slack_fake)
    assert slack_fake.matching(about(theirs)) == []


def test_slack_down_three_times_then_up_gets_the_message_exactly_once(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    slack_fake.fail_next(3, status=503, retry_after="1")
    policy = policy_id()

    assert signed_post(relay.webhook_url("search", [policy]), SECRET, budget_envelope(policy)).status_code == 202
    assert len(slack_fake.wait_for(about(policy))) == 1
    health = relay.wait_drained()
    assert slack_fake.attempts == 4  # three 503s, one 200
    assert len(slack_fake.matching(about(policy))) == 1
    assert health["dead_letters"] == 0


def test_a_relay_killed_with_a_delivery_pending_delivers_it_after_restart(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    slack_fake.fail_next(10_000, status=503, retry_after="2")
    policy = policy_id()
    assert signed_post(relay.webhook_url("search", [policy]), SECRET, budget_envelope(policy)).status_code == 202

    deadline = time.monotonic() + 60
    while slack_fake.attempts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slack_fake.attempts >= 1
    status, health = relay.health()
    assert health["queue_depth"] == 1 and health["oldest_pending_age_seconds"] >= 0

    relay.kill()  # SIGKILL to the whole process group: web workers and consumer
    slack_fake.recover()
    restarted = start_relay(config, env, name="relay")  # same directory: same queue file
    assert len(slack_fake.wait_for(about(policy))) == 1
    restarted.wait_drained()
    assert len(slack_fake.matching(about(policy))) == 1


def test_a_message_no_destination_accepts_expires_into_the_dead_letters(start_relay, slack_fake):
    config, env = search_route(slack_fake, expire_after="3s")
    relay = start_relay(config, env)
    slack_fake.fail_next(10_000, status=503)
    policy = policy_id()
    assert signed_post(relay.webhook_url("search", [policy]), SECRET, budget_envelope(policy)).status_code == 202

    health = relay.wait_drained()
    assert health["dead_letters"] == 1
    assert slack_fake.messages == []


def test_a_refused_message_is_not_retried(start_relay, pagerduty_fake, slack_fake):
    config, env = search_route(slack_fake, pagerduty_fake)
    env["SEARCH_PD_KEY"] = "too-short"  # PagerDuty answers 400 "Event object is invalid"
    relay = start_relay(config, env)
    deliver_sentinel(relay, slack_fake)
    status, health = relay.health()
    assert health["dead_letters"] == 1
    assert len(pagerduty_fake.rejected) == 1 and pagerduty_fake.events == []


def test_alertmanager_holds_one_alert_per_policy_labelled_with_team_policy_and_scope(
    start_relay, slack_fake, alertmanager
):
    config, env = search_route(slack_fake, alertmanager=alertmanager)
    relay = start_relay(config, env)
    tier, stop = policy_id(), policy_id()
    url = relay.webhook_url("search", [tier], hard_stops=[stop])
    assert signed_post(url, SECRET, budget_envelope(tier, amount=0.5, spend=0.63)).status_code == 202
    assert signed_post(url, SECRET, budget_envelope(stop, amount=1.0, spend=1.05)).status_code == 202
    deliver_sentinel(relay, slack_fake)

    alerts = {a["labels"]["policy"]: a for a in alertmanager.alerts(team="search")}
    assert set(alerts) == {tier, stop, *[p for p in alerts if p not in (tier, stop)]}
    assert alerts[tier]["labels"]["severity"] == "warning"
    assert alerts[stop]["labels"]["severity"] == "critical"
    assert alerts[stop]["labels"]["scope"] == "ENDPOINT"
    assert "traffic is now rejected" in alerts[stop]["annotations"]["summary"]
    assert alertmanager.received_firing() == 3  # tier, hard stop, sentinel


@pytest.mark.parametrize(
    "route, env, expected",
    [
        (
            {"secret": "inline-secret", "webhook": "http://127.0.0.1:9/x"},
            {},
            "routes.search.secret: must be an environment variable reference",
        ),
        ({"secret": "${MISSING_SECRET}", "webhook": "http://127.0.0.1:9/x"}, {}, "MISSING_SECRET is not set"),
        (
            {"secret": "${S}", "slack": "https://hooks.slack.com/services/T/B/token"},
            {"S": "x"},
            "routes.search.slack: must be an environment variable reference",
        ),
        ({"secret": "${S}"}, {"S": "x"}, "has no destination"),
        ({"secret": "${S}", "pagerduty": {"routing_key": "abc"}}, {"S": "x"}, "routes.search.pagerduty.routing_key"),
    ],
)
def test_a_config_that_could_not_deliver_or_would_leak_a_secret_stops_the_relay(route, env, expected, tmp_path):
    import subprocess
    import sys

    import yaml

    from harness.provider_server import PROJECT_ROOT

    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump({"routes": {"search": route}}))
    result = subprocess.run(
        [sys.executable, "-m", "alert_relay", "--config", str(path), "--port", "0"],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""


def test_healthz_says_so_when_no_consumer_delivers(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    assert relay.health()[0] == 200
    os.kill(relay.consumer_pid, signal.SIGKILL)  # the web side keeps accepting; nothing would be sent

    deadline = time.monotonic() + 120
    while relay.health()[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    status, body = relay.health()
    assert status == 503 and body["status"] == "no delivery consumer"
