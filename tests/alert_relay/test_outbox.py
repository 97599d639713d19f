"""The outbox's stores, SQLite and Redis, keep the same promises (issue 25): one transaction per
accepted alert, at most once per delivery id, one pending message per policy and window."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from alert_relay.alerts import BudgetAlert
from alert_relay.config import parse_config
from alert_relay.queue import Outbox
from alert_relay.store import Message, RedisStore, SqliteStore, dead_record
from harness.alert_relay import budget_envelope

ROUTES = {"search": {"secret": "${S}", "webhook": "http://127.0.0.1:9/x", "slack": "${SLACK}"}}
ENV = {"S": "k", "SLACK": "https://hooks.slack.com/services/T/B/x"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server (apt redis-server) on a free port, nothing persisted."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt-get install redis-server)"
    port = _free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(params=["sqlite", "redis"])
def outbox(request, tmp_path) -> Outbox:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store = RedisStore(url, prefix=f"test-{time.monotonic_ns()}")
    else:
        store = SqliteStore(tmp_path / "queue.db")
    config = parse_config({"routes": ROUTES}, tmp_path, env=ENV)
    return Outbox(config, store)


def alert(policy: str = "bp-1", delivery_id: str = "d-1", spend: float = 1.05, **data) -> BudgetAlert:
    return BudgetAlert.from_envelope(
        budget_envelope(policy, spend=spend, **data),
        route="search",
        team="search",
        hard_stop=False,
        delivery_id=delivery_id,
    )


def test_a_delivery_id_is_accepted_once(outbox):
    assert outbox.accept(alert(delivery_id="d-1"), ["webhook", "slack"]) is not None
    assert outbox.accept(alert(delivery_id="d-1"), ["webhook", "slack"]) is None
    assert outbox.health()["queue_depth"] == 2


def test_a_backlog_keeps_the_latest_alert_per_policy_and_window(outbox):
    today = datetime.now(UTC)  # the envelopes' windows are the day of `now`
    for n, spend in enumerate((1.05, 1.30, 1.80)):
        outbox.accept(alert("bp-1", delivery_id=f"d-{n}", spend=spend, now=today), ["webhook"])
    outbox.accept(alert("bp-2", delivery_id="d-other", now=today), ["webhook"])
    outbox.accept(alert("bp-1", delivery_id="d-next", now=today + timedelta(days=1)), ["webhook"])  # next window
    pending = outbox.store.pending("search/webhook", 100)
    latest = {(m.alert["policy_id"], m.alert["window_start_ms"]): m.alert["spend"] for m in pending}
    assert len(pending) == 3
    assert sorted(latest.values()) == [1.05, 1.05, 1.80]


def test_a_message_replaced_while_it_was_being_sent_is_still_sent(outbox):
    (first,) = outbox.accept(alert("bp-1", delivery_id="d-1"), ["webhook"])
    (newer,) = outbox.accept(alert("bp-1", delivery_id="d-2", spend=2.0), ["webhook"])
    outbox.store.done([first])  # the sender finished the one it had read before the replacement
    assert [m.id for m in outbox.store.pending("search/webhook", 10)] == [newer]
    outbox.store.done([newer])
    assert outbox.health()["queue_depth"] == 0


def test_dead_letters_leave_the_queue_and_show_in_health(outbox):
    (message_id,) = outbox.accept(alert(), ["webhook"])
    (message,) = outbox.store.pending("search/webhook", 10)
    outbox.store.dead([dead_record(message, "refused: HTTP 400", time.time())])
    outbox.refuse("search", "d-9", "budget_amount must be a number", policy_id="bp-9")
    health = outbox.health()
    assert health["queue_depth"] == 0 and health["dead_letters"] == 2
    assert {r["reason"] for r in health["recent_dead_letters"]} == {
        "refused: HTTP 400",
        "budget_amount must be a number",
    }


def test_accepting_an_alert_is_one_sqlite_transaction(tmp_path):
    store = SqliteStore(tmp_path / "queue.db")
    config = parse_config({"routes": ROUTES}, tmp_path, env=ENV)
    outbox = Outbox(config, store)
    outbox.accept(alert(delivery_id="d-warm"), ["webhook"])  # the queue writer's connection exists
    (writer,) = [c for c in store._opened if c is not store._conn()]
    statements: list[str] = []
    writer.set_trace_callback(statements.append)
    outbox.accept(alert(delivery_id="d-1"), ["webhook", "slack"])
    keywords = [s.split()[0].lower() for s in statements]
    assert [k for k in keywords if k in ("begin", "commit", "rollback")] == ["begin", "commit"]
    with sqlite3.connect(tmp_path / "queue.db") as db:
        assert db.execute("select count(*) from message").fetchone() == (2,)  # the warm-up one was replaced
        assert db.execute("select count(*) from delivery").fetchone() == (2,)


def test_alerts_accepted_together_share_one_commit_and_each_keeps_its_answer(tmp_path):
    store = SqliteStore(tmp_path / "queue.db")
    outbox = Outbox(parse_config({"routes": ROUTES}, tmp_path, env=ENV), store)
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda n: outbox.accept(alert(f"bp-{n % 50}", delivery_id=f"d-{n % 100}"), ["webhook"]), range(200)
            )
        )
    assert sum(1 for a in answers if a is not None) == 100  # each delivery id once, whichever request came first
    assert outbox.health()["queue_depth"] == 50  # one per policy and window


def test_messages_serialise_what_the_sender_needs():
    message = Message("search", "slack", alert().to_dict(), 1.0)
    assert Message.from_json(message.to_json()) == message
    assert message.lane == "search/slack" and message.coalesce_key.startswith("bp-1:")


def test_messages_pending_in_a_0_2_0_queue_file_are_adopted(tmp_path):
    """0.2.0 kept messages in huey's kv table (pickled, as huey's Serializer writes them)."""
    import pickle

    old = {"id": "m-old", "route": "search", "destination": "slack", "alert": alert().to_dict(), "created_at": 5.0}
    with sqlite3.connect(tmp_path / "queue.db") as db:
        db.execute(
            "create table kv (queue text not null, key text not null, value blob not null, primary key(queue, key))"
        )
        db.execute("insert into kv values ('alert-relay', 'pending:m-old', ?)", (pickle.dumps({**old, "attempts": 2}),))
        db.execute("insert into kv values ('alert-relay', 'delivery:d-1', ?)", (pickle.dumps(1.0),))
    store = SqliteStore(tmp_path / "queue.db")
    (adopted,) = store.pending("search/slack", 10)
    assert (adopted.id, adopted.created_at, adopted.alert) == ("m-old", 5.0, old["alert"])
    assert SqliteStore(tmp_path / "queue.db").pending("search/slack", 10) == [adopted]  # adopted once


def test_one_consumer_at_a_time_holds_a_lane_of_a_shared_redis_queue(redis_url):
    store = RedisStore(redis_url, prefix=f"test-{time.monotonic_ns()}")
    assert store.lease("search/slack", "replica-a", 0.3) is True
    assert store.lease("search/slack", "replica-b", 0.3) is False  # one sender: one rate limit
    assert store.lease("search/slack", "replica-a", 0.3) is True  # renewed by its holder
    time.sleep(0.4)  # replica-a died: its lease runs out
    assert store.lease("search/slack", "replica-b", 0.3) is True


def test_messages_of_a_route_no_longer_in_the_config_become_dead_letters(outbox, tmp_path):
    from alert_relay.consumer import _drop_unrouted

    outbox.accept(alert(delivery_id="d-kept"), ["webhook"])
    gone = BudgetAlert.from_envelope(
        budget_envelope("bp-9"), route="retired", team="retired", hard_stop=False, delivery_id="d-gone"
    )
    outbox.accept(gone, ["slack"])
    _drop_unrouted(outbox.store, outbox.config)
    health = outbox.health()
    assert health["queue_depth"] == 1 and health["dead_letters"] == 1
    assert "no longer in the config" in health["recent_dead_letters"][0]["reason"]
