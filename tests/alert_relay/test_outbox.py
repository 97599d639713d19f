"""The outbox's crash recovery, in process (no consumer running): what a restarted consumer does."""

from __future__ import annotations

import time

from alert_relay.alerts import BudgetAlert
from alert_relay.config import parse_config
from alert_relay.queue import Outbox, backoff_seconds
from harness.alert_relay import budget_envelope


def outbox(tmp_path) -> Outbox:
    config = parse_config(
        {"routes": {"search": {"secret": "${S}", "webhook": "http://127.0.0.1:9/x"}}}, tmp_path, env={"S": "k"}
    )
    return Outbox(config)


def alert(policy: str = "bp-1") -> BudgetAlert:
    return BudgetAlert.from_envelope(
        budget_envelope(policy), route="search", team="search", hard_stop=False, delivery_id="d-1"
    )


def test_a_message_left_in_flight_by_a_dead_consumer_is_queued_again(tmp_path):
    box = outbox(tmp_path)
    message = {
        "id": "m-1",
        "route": "search",
        "destination": "webhook",
        "alert": alert().to_dict(),
        "created_at": time.time() - 5,
        "attempts": 2,
    }
    box.huey.put("pending:m-1", {"route": "search", "destination": "webhook", "created_at": message["created_at"]})
    box.huey.put("inflight:m-1", {**message, "leased_at": time.time()})  # what _deliver writes first
    assert box.health()["queue_depth"] == 1

    assert box.recover(min_age_seconds=60) == 0  # a live sender's lease is left alone
    assert box.recover(min_age_seconds=0) == 1
    pending = [t.args[0] for t in box.huey.pending()]
    assert pending == [message]
    assert box.huey.get("inflight:m-1", peek=True) is None
    health = box.health()
    assert health["queue_depth"] == 1 and health["oldest_pending_age_seconds"] >= 5


def test_the_queue_depth_counts_a_message_from_enqueue_until_it_is_dropped(tmp_path):
    box = outbox(tmp_path)
    box.enqueue(alert(), ["webhook"])
    assert box.health()["queue_depth"] == 1
    (task,) = box.huey.pending()
    box.huey.storage.dequeue()  # what the consumer does before running it: still pending
    assert box.health()["queue_depth"] == 1
    box._dead(task.args[0], "test")
    assert box.health()["queue_depth"] == 0 and box.health()["dead_letters"] == 1


def test_a_delivery_id_is_claimed_once_and_can_be_released(tmp_path):
    box = outbox(tmp_path)
    assert box.claim_delivery("d-1") is True
    assert box.claim_delivery("d-1") is False
    box.release_delivery("d-1")
    assert box.claim_delivery("d-1") is True


def test_backoff_grows_with_the_messages_age_and_is_capped():
    waits = [backoff_seconds(age) for age in (0, 1, 3, 10, 100, 10_000)]
    assert waits == sorted(waits) and waits[0] == 1.0 and waits[-1] == 600.0


def test_the_window_end_follows_mlflows_calendar():
    monthly = BudgetAlert.from_envelope(
        budget_envelope("bp-1", duration_unit="MONTHS", duration_value=1, window_start=1796083200000),  # 2026-12-01
        route="r",
        team="t",
        hard_stop=True,
        delivery_id="d",
    )
    assert (monthly.window_end.year, monthly.window_end.month, monthly.window_end.day) == (2027, 1, 1)
    assert monthly.severity == "critical" and monthly.dedup_key == "bp-1:1796083200000"


def test_a_restart_requeues_a_message_the_killed_consumer_had_taken_off_the_queue(tmp_path):
    box = outbox(tmp_path)
    taken = box.enqueue(alert("bp-taken"), ["webhook"])
    box.huey.storage.dequeue()  # taken by a consumer that was SIGKILLed before it ran
    waiting = box.enqueue(alert("bp-waiting"), ["webhook"])
    restart = time.time()
    # Accepted by this run and being sent by its consumer right now: not the last run's.
    box.huey.put("pending:m-new", {"id": "m-new", "destination": "webhook", "created_at": restart + 1})

    assert box.recover_lost(started_before=restart) == 1
    assert sorted(t.args[0]["id"] for t in box.huey.pending()) == sorted(taken + waiting)
    assert box.recover_lost(started_before=restart) == 0  # nothing is queued twice
