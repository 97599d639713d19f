"""Where the outbox keeps its messages: one SQLite file (one node) or Redis (several replicas).

A message is one alert for one destination of one route: its *lane* (``route/destination``).  Both
stores give the same guarantees:

* ``accept`` is one transaction: the MLflow delivery id is claimed (at most once) and its messages
  are written, or nothing is;
* a lane holds at most one pending message per budget policy and window: a newer alert replaces
  the one still waiting (a backlog sends the latest state, not every step of it);
* a message stays until it is delivered (``done``) or moved to the dead letters (``dead``).
"""

from __future__ import annotations

import json
import pickle
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

# MLflow signs a timestamp: a delivery older than the signature window is refused anyway, so
# remembering ids for an hour (with margin for clock skew) is enough.
DELIVERY_ID_MEMORY_SECONDS = 3600.0
BUSY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Message:
    route: str
    destination: str
    alert: dict[str, Any]
    created_at: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def lane(self) -> str:
        return lane_name(self.route, self.destination)

    @property
    def coalesce_key(self) -> str:
        """One pending message per policy and window (MLflow's window start identifies it)."""
        return f"{self.alert['policy_id']}:{self.alert['window_start_ms']}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Message:
        return cls(**json.loads(raw))


def lane_name(route: str, destination: str) -> str:
    return f"{route}/{destination}"


@dataclass(frozen=True)
class Depth:
    pending: int
    oldest_created_at: float | None
    dead_letters: int


class Store(Protocol):
    def accept(self, delivery_id: str, messages: list[Message], now: float) -> bool: ...
    def pending(self, lane: str, limit: int) -> list[Message]: ...
    def lanes(self) -> set[str]: ...
    def done(self, message_ids: Iterable[str]) -> None: ...
    def dead(self, records: list[dict[str, Any]]) -> None: ...
    def depth(self) -> Depth: ...
    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]: ...
    def put_state(self, key: str, value: Any) -> None: ...
    def get_state(self, key: str) -> Any: ...
    def forget_deliveries(self, before: float) -> None: ...
    def maintain(self) -> None: ...
    def check(self) -> None: ...
    def close(self) -> None: ...


def dead_record(message: Message | None, reason: str, now: float, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = asdict(message) if message is not None else {"id": uuid.uuid4().hex}
    return {**base, **extra, "reason": reason, "dropped_at": now}


# --- SQLite ----------------------------------------------------------------------------------

SCHEMA = """
create table if not exists delivery (id text primary key, received_at real not null) without rowid;
create index if not exists delivery_received on delivery (received_at);
create table if not exists message (
    id text primary key, lane text not null, coalesce_key text not null,
    body text not null, created_at real not null
);
create unique index if not exists message_lane_key on message (lane, coalesce_key);
create index if not exists message_lane_created on message (lane, created_at);
create table if not exists dead_letter (id text primary key, body text not null, dropped_at real not null);
create table if not exists state (key text primary key, value text not null);
"""


@dataclass
class _Acceptance:
    delivery_id: str
    messages: list[Message]
    now: float
    done: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False
    error: BaseException | None = None


class _GroupCommit:
    """Accepts from every request thread, written by one thread in shared transactions.

    A synced commit takes milliseconds (4 ms median, 16 ms p99 on the benchmark machine's disk,
    more when it is busy) and SQLite has one writer at a time: one transaction per request caps a
    relay at a few hundred alerts a second at best, and queues requests for seconds when the disk
    slows.  Requests that arrive while a commit is syncing go into the next one together; each
    request still returns only once its own alert is on disk.
    """

    MAX_BATCH = 256

    def __init__(self, write: Callable[[list[_Acceptance]], None]) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[_Acceptance] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, delivery_id: str, messages: list[Message], now: float) -> bool:
        self._ensure_writer()
        item = _Acceptance(delivery_id, messages, now)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.claimed

    def _ensure_writer(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="queue writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as error:  # noqa: BLE001 (each waiting request answers it: 503, MLflow retries)
                for item in batch:
                    item.error = error
            for item in batch:
                item.done.set()


class SqliteStore:
    """One file in WAL mode; every commit is synced (an accepted alert survives a power cut).

    Web threads and the consumer never checkpoint on commit (``wal_autocheckpoint=0``): the
    consumer checkpoints in the background (``maintain``), so no request waits for one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._group_commit = _GroupCommit(self._accept_batch)
        self._conn().executescript(SCHEMA)
        self._adopt_huey_queue()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Closed by close() from the stopping thread, hence check_same_thread=False; each thread
            # still uses only its own connection.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=full")
            conn.execute("pragma wal_autocheckpoint=0")
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def _adopt_huey_queue(self) -> None:
        """Messages still pending in a 0.2.0 queue file (huey's ``kv`` table) join this queue."""
        conn = self._conn()
        if not conn.execute("select 1 from sqlite_master where name = 'kv' and type = 'table'").fetchone():
            return
        with self._transaction() as db:
            rows = db.execute("select value from kv where key like 'pending:%'").fetchall()
            adopted = []
            for (raw,) in rows:
                try:
                    # Our own queue file, written by the relay's previous version (huey pickles).
                    old = pickle.loads(raw)  # noqa: S301
                    adopted.append(
                        Message(old["route"], old["destination"], old["alert"], old["created_at"], old["id"])
                    )
                except Exception:  # noqa: BLE001, S112 (an unreadable entry stays where it is)
                    continue
            db.executemany(
                "insert or ignore into message values (?, ?, ?, ?, ?)",
                [(m.id, m.lane, m.coalesce_key, m.to_json(), m.created_at) for m in adopted],
            )
            db.executemany("delete from kv where key = ?", [(f"pending:{m.id}",) for m in adopted])

    def close(self) -> None:
        """Close every connection: the last one to close folds the WAL back and removes -wal/-shm."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("begin immediate")
        try:
            yield conn
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")

    def accept(self, delivery_id: str, messages: list[Message], now: float) -> bool:
        return self._group_commit.submit(delivery_id, messages, now)

    def _accept_batch(self, batch: list[_Acceptance]) -> None:
        """One transaction, one fsync, for every alert accepted while the last commit was syncing."""
        with self._transaction() as db:
            for item in batch:
                claimed = db.execute("insert or ignore into delivery values (?, ?)", (item.delivery_id, item.now))
                item.claimed = bool(claimed.rowcount)
                if item.claimed:
                    db.executemany(
                        "insert into message values (?, ?, ?, ?, ?) on conflict (lane, coalesce_key) do update set"
                        " id = excluded.id, body = excluded.body, created_at = excluded.created_at",
                        [(m.id, m.lane, m.coalesce_key, m.to_json(), m.created_at) for m in item.messages],
                    )

    def pending(self, lane: str, limit: int) -> list[Message]:
        rows = (
            self._conn()
            .execute("select body from message where lane = ? order by created_at limit ?", (lane, limit))
            .fetchall()
        )
        return [Message.from_json(body) for (body,) in rows]

    def lanes(self) -> set[str]:
        return {lane for (lane,) in self._conn().execute("select distinct lane from message")}

    def done(self, message_ids: Iterable[str]) -> None:
        ids = [(i,) for i in message_ids]
        if ids:
            with self._transaction() as db:
                db.executemany("delete from message where id = ?", ids)

    def dead(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self._transaction() as db:
            db.executemany("delete from message where id = ?", [(r["id"],) for r in records])
            db.executemany(
                "insert or replace into dead_letter values (?, ?, ?)",
                [(r["id"], json.dumps(r, allow_nan=False, default=str), r["dropped_at"]) for r in records],
            )

    def depth(self) -> Depth:
        conn = self._conn()
        pending, oldest = conn.execute("select count(*), min(created_at) from message").fetchone()
        (dead,) = conn.execute("select count(*) from dead_letter").fetchone()
        return Depth(pending, oldest, dead)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._conn().execute("select body from dead_letter order by dropped_at desc limit ?", (limit,))
        return [json.loads(body) for (body,) in rows]

    def put_state(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute("insert or replace into state values (?, ?)", (key, json.dumps(value)))

    def get_state(self, key: str) -> Any:
        row = self._conn().execute("select value from state where key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def forget_deliveries(self, before: float) -> None:
        with self._transaction() as db:
            db.execute("delete from delivery where received_at < ?", (before,))

    def maintain(self) -> None:
        # PASSIVE never waits for readers or writers: it copies what it can and returns.
        self._conn().execute("pragma wal_checkpoint(passive)")

    def check(self) -> None:
        self._conn().execute("select count(*) from state").fetchone()
        with self._transaction() as db:  # writable, not only readable
            db.execute("insert or replace into state values ('checked', '1')")


# --- Redis -----------------------------------------------------------------------------------

# KEYS: delivery key, messages hash.  ARGV: now, delivery memory, then (lane zset, lane keymap,
# coalesce key, id, body, created_at) per message.  Atomic: Redis runs a script alone.
ACCEPT_SCRIPT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) == false then return 0 end
for i = 3, #ARGV, 6 do
  local zset, keymap, ckey, id, body, created = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  local old = redis.call('hget', keymap, ckey)
  if old then redis.call('zrem', zset, old); redis.call('hdel', KEYS[2], old) end
  redis.call('hset', KEYS[2], id, body)
  redis.call('zadd', zset, created, id)
  redis.call('hset', keymap, ckey, id)
end
return 1
"""

# KEYS: messages hash.  ARGV: prefix, then ids.  Removes each message from its lane and key map.
DONE_SCRIPT = """
for i = 2, #ARGV do
  local body = redis.call('hget', KEYS[1], ARGV[i])
  if body then
    local message = cjson.decode(body)
    local lane = message['route'] .. '/' .. message['destination']
    local ckey = message['alert']['policy_id'] .. ':' .. string.format('%d', message['alert']['window_start_ms'])
    redis.call('zrem', ARGV[1] .. ':lane:' .. lane, ARGV[i])
    if redis.call('hget', ARGV[1] .. ':keys:' .. lane, ckey) == ARGV[i] then
      redis.call('hdel', ARGV[1] .. ':keys:' .. lane, ckey)
    end
    redis.call('hdel', KEYS[1], ARGV[i])
  end
end
return 1
"""


class RedisStore:
    """Redis keys under ``alert-relay:``: a sorted set per lane (by age), a hash of messages."""

    def __init__(self, url: str, prefix: str = "alert-relay") -> None:
        import redis

        self.prefix = prefix
        # redis-py annotates every command as "result or Awaitable" (one class for sync and async
        # clients): this client is synchronous, so its answers are typed where they are used.
        self.redis: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._accept = self.redis.register_script(ACCEPT_SCRIPT)
        self._done = self.redis.register_script(DONE_SCRIPT)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def accept(self, delivery_id: str, messages: list[Message], now: float) -> bool:
        args: list[Any] = [now, int(DELIVERY_ID_MEMORY_SECONDS)]
        for m in messages:
            args += [self._key("lane", m.lane), self._key("keys", m.lane), m.coalesce_key, m.id, m.to_json()]
            args.append(m.created_at)
        return bool(self._accept(keys=[self._key("delivery", delivery_id), self._key("messages")], args=args))

    def pending(self, lane: str, limit: int) -> list[Message]:
        ids: list[Any] = list(self.redis.zrange(self._key("lane", lane), 0, limit - 1))
        if not ids:
            return []
        bodies = self.redis.hmget(self._key("messages"), ids)
        return [Message.from_json(body) for body in bodies if body is not None]

    def lanes(self) -> set[str]:
        head = len(self._key("lane", ""))
        return {key.decode()[head:] for key in self.redis.scan_iter(match=self._key("lane", "*"))}

    def done(self, message_ids: Iterable[str]) -> None:
        ids = list(message_ids)
        if ids:
            self._done(keys=[self._key("messages")], args=[self.prefix, *ids])

    def dead(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self.done([r["id"] for r in records])
        self.redis.hset(
            self._key("dead"), mapping={r["id"]: json.dumps(r, allow_nan=False, default=str) for r in records}
        )

    def depth(self) -> Depth:
        pending, oldest = 0, None
        for lane in self.lanes():
            key = self._key("lane", lane)
            pending += int(self.redis.zcard(key))
            head: list[Any] = list(self.redis.zrange(key, 0, 0, withscores=True))
            if head and (oldest is None or head[0][1] < oldest):
                oldest = float(head[0][1])
        return Depth(pending, oldest, self.redis.hlen(self._key("dead")))

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        records = [json.loads(v) for v in self.redis.hvals(self._key("dead"))]
        return sorted(records, key=lambda r: r.get("dropped_at", 0), reverse=True)[:limit]

    def put_state(self, key: str, value: Any) -> None:
        self.redis.set(self._key("state", key), json.dumps(value))

    def get_state(self, key: str) -> Any:
        raw = self.redis.get(self._key("state", key))
        return None if raw is None else json.loads(raw)

    def forget_deliveries(self, before: float) -> None:
        """Delivery ids expire by themselves (``EX``)."""

    def maintain(self) -> None:
        """Redis needs no housekeeping from the relay."""

    def check(self) -> None:
        self.redis.ping()

    def close(self) -> None:
        self.redis.close()

    def lease(self, lane: str, holder: str, seconds: float) -> bool:
        """One sender per lane across replicas (so one rate limit): take or renew the lane's lease."""
        key = self._key("lease", lane)
        if self.redis.set(key, holder, nx=True, px=int(seconds * 1000)):
            return True
        if self.redis.get(key) == holder.encode():
            self.redis.pexpire(key, int(seconds * 1000))
            return True
        return False


def open_store(queue: Path, redis_url: str | None) -> Store:
    if redis_url:
        return RedisStore(redis_url)
    queue.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(queue)
