"""Sending lanes (issue 25): a down destination is probed on a short schedule and its backlog is
released at once when it is back; destinations' rate limits and Retry-After are kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from alert_relay.alerts import BudgetAlert
from alert_relay.config import parse_config
from alert_relay.destinations import Outcome
from alert_relay.lanes import PROBE_SCHEDULE_SECONDS, Lane
from alert_relay.queue import Outbox
from alert_relay.store import SqliteStore
from harness.alert_relay import SwitchableDestination, budget_envelope


@pytest.fixture
def destination() -> Iterator[SwitchableDestination]:
    target = SwitchableDestination()
    yield target
    target.down()


def _outbox(tmp_path, kind: str, url: str) -> Outbox:
    route = {"secret": "${S}", kind: url if kind != "slack" else "${SLACK}"}
    config = parse_config({"routes": {"search": route}}, tmp_path, env={"S": "k", "SLACK": url})
    return Outbox(config, SqliteStore(tmp_path / "queue.db"))


def _accept(outbox: Outbox, kind: str, policy: str, spend: float = 1.05) -> None:
    alert = BudgetAlert.from_envelope(
        budget_envelope(policy, spend=spend),
        route="search",
        team="search",
        hard_stop=False,
        delivery_id=f"d-{policy}-{spend}",
    )
    outbox.accept(alert, [kind])


@pytest.fixture
def run_lane() -> Iterator:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(outbox: Outbox, kind: str) -> Lane:
        lane = Lane(outbox.config.routes["search"], kind, outbox.store, outbox.config, holder="test")
        thread = threading.Thread(target=lane.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)
        return lane

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=20)


def test_a_down_destination_is_probed_and_its_backlog_released_at_once_when_back(tmp_path, destination, run_lane):
    outbox = _outbox(tmp_path, "webhook", destination.url)
    for n in range(30):
        _accept(outbox, "webhook", f"bp-{n}")
    for spend in (1.2, 1.5, 1.9):  # three alerts of one policy and window: only the latest is sent
        _accept(outbox, "webhook", "bp-same", spend)
    lane = run_lane(outbox, "webhook")
    time.sleep(3.5)
    assert lane.status.state == "down"
    assert lane.status.failures <= 3  # probes at 0, 1 and 3 s: the 31 messages were held, not tried

    destination.up()
    arrivals = destination.wait_for(31, timeout=PROBE_SCHEDULE_SECONDS[-1] + 5)
    assert len(arrivals) == 31
    assert [body["spend"] for _, _, body in arrivals if body["policy_id"] == "bp-same"] == [1.9]
    # Released together once a probe got through: none waited for another probe (or its own timer).
    assert arrivals[-1][0] - arrivals[0][0] < PROBE_SCHEDULE_SECONDS[-1]
    deadline = time.monotonic() + 5
    while outbox.health()["queue_depth"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outbox.health()["queue_depth"] == 0 and lane.status.state == "up"


def test_the_wait_for_a_down_destination_does_not_grow_with_its_backlog_age(tmp_path):
    outbox = _outbox(tmp_path, "webhook", "http://127.0.0.1:9/x")
    lane = Lane(outbox.config.routes["search"], "webhook", outbox.store, outbox.config, holder="test")
    waits = []
    for _ in range(500):  # an outage of hours: hundreds of failed probes
        before = lane.clock()
        lane._hold(Outcome(False, True, "ConnectionError"))
        waits.append(lane.next_send_at - before)
    assert max(waits) <= PROBE_SCHEDULE_SECONDS[-1] + 0.01
    lane._pool.shutdown()


def test_slack_gets_at_most_one_message_a_second(tmp_path, destination, run_lane, monkeypatch):
    destination.up()
    outbox = _outbox(tmp_path, "slack", destination.url)
    for n in range(4):
        _accept(outbox, "slack", f"bp-{n}")
    # When the relay starts each request (arrival times at a loaded receiver jitter by themselves).
    sent: list[float] = []
    post = requests.Session.post

    def timed_post(self, *args, **kwargs):
        sent.append(time.monotonic())
        return post(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", timed_post)
    run_lane(outbox, "slack")
    arrivals = destination.wait_for(4, timeout=30)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert len(arrivals) == 4 and len(sent) == 4 and min(gaps) >= 1.0, gaps


def test_a_429_with_retry_after_pauses_the_lane_that_long(tmp_path, destination, run_lane):
    destination.answers = [(429, {"Retry-After": "2"})]
    destination.up()
    outbox = _outbox(tmp_path, "slack", destination.url)
    _accept(outbox, "slack", "bp-1")
    started = time.monotonic()
    lane = run_lane(outbox, "slack")
    arrivals = destination.wait_for(1, timeout=15)
    assert len(arrivals) == 1 and arrivals[0][0] - started >= 2.0
    assert lane.status.state == "up"
