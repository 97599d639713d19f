"""The alert relay catching up after its destinations were down (issue 25, item 1).

``python -m bench.relay_outage [--outage 300] [--deliveries 10000] [--policies 40] [--distinct]``

One route sends to Slack, PagerDuty and a JSON webhook, all three local receivers that refuse
connections during the outage.  While they are down, ``--deliveries`` signed MLflow deliveries are
posted, spread evenly over ``--outage`` seconds, for ``--policies`` budget policies in turn (each
delivery a newer alert of its policy's window, spend rising).  Then the three come back at the
same moment and the benchmark measures how long the relay takes to empty its queue (``/healthz``
``queue_depth`` 0), whether each lane kept its destination's rate limit (Slack 1/s per webhook,
PagerDuty Events v2 120/min per key: smallest gap between two requests) and whether each policy's
last message was its latest alert.  ``--distinct`` gives every delivery its own policy and sends
to the webhook only (no rate limit, nothing to coalesce): raw drain throughput.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.common import Progress, cpu_seconds, emit, machine_context, table
from harness.alert_relay import RelayProcess, SwitchableDestination, budget_envelope
from harness.webhook_receiver import mlflow_signature

SECRET = "whsec-bench-only"
PD_KEY = "R0UT1NGKEY0000000000000000000042"
LIMITS = {"slack": 1.0, "pagerduty": 0.5, "webhook": 0.0}  # the documented limits, as gaps


def post(session: requests.Session, url: str, envelope: dict) -> int:
    body = json.dumps(envelope).encode()
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": mlflow_signature(SECRET, delivery_id, stamp, body),
    }
    try:
        return session.post(url, data=body, headers=headers, timeout=30).status_code
    except requests.RequestException:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outage", type=float, default=300)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=40)
    parser.add_argument("--distinct", action="store_true")
    args = parser.parse_args()
    kinds = ["webhook"] if args.distinct else ["slack", "pagerduty", "webhook"]
    destinations = {kind: SwitchableDestination() for kind in kinds}
    route: dict = {"secret": "${BENCH_SECRET}"}
    env = {"BENCH_SECRET": SECRET}
    if "slack" in destinations:
        route["slack"], env["BENCH_SLACK"] = "${BENCH_SLACK}", destinations["slack"].url
        route["pagerduty"] = {"routing_key": "${BENCH_PD}", "url": destinations["pagerduty"].url}
        env["BENCH_PD"] = PD_KEY
    route["webhook"] = destinations["webhook"].url
    config = {"expire_after": "1h", "routes": {"bench": route}}
    context = machine_context()
    with tempfile.TemporaryDirectory(prefix="bench-relay-outage-") as directory:
        relay = RelayProcess(Path(directory), config, env).start()
        try:
            latest: dict[str, float] = {}
            statuses: list[int] = []
            lock = threading.Lock()
            sessions = threading.local()

            def send(index: int) -> None:
                session = getattr(sessions, "session", None) or requests.Session()
                sessions.session = session
                policy = f"bp-{index if args.distinct else index % args.policies:032x}"
                spend = round(1.0 + index / args.deliveries, 6)
                status = post(session, relay.webhook_url("bench", [policy]), budget_envelope(policy, spend=spend))
                with lock:
                    statuses.append(status)
                    if status == 202:
                        latest[policy] = max(latest.get(policy, 0.0), spend)

            started = time.monotonic()
            with (
                Progress("relay_outage: deliveries posted while down", total=args.deliveries) as progress,
                ThreadPoolExecutor(16) as pool,
            ):
                for index in range(args.deliveries):
                    delay = started + index * args.outage / args.deliveries - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(send, index)
                    progress.advance()
                remaining = started + args.outage - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            outage_seconds = time.monotonic() - started
            depth_before = relay.health()[1]["queue_depth"]
            pids = [relay.process.pid, relay.consumer_pid] if relay.process else []
            cpu_before = cpu_seconds(pids)

            recovered = time.monotonic()
            for destination in destinations.values():
                destination.up()
            drained_after = float("nan")
            with Progress("relay_outage: draining the queue", total=depth_before) as progress:
                while time.monotonic() - recovered < 900:
                    depth = relay.health()[1]["queue_depth"]
                    progress.advance(max(0, depth_before - depth - progress.done))
                    if depth == 0:
                        drained_after = time.monotonic() - recovered
                        break
                    time.sleep(0.1)
            cpu_used = cpu_seconds(pids) - cpu_before
            health = relay.health()[1]
        finally:
            relay.stop()
            for destination in destinations.values():
                destination.down()

    rows = []
    for kind, destination in destinations.items():
        arrivals = destination.received()
        times = [at for at, _, _ in arrivals]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        windows = max((sum(1 for t in times if start <= t < start + 10) for start in times), default=0)
        last = {}
        for _, _, body in arrivals:
            policy = body.get("policy_id") or body.get("payload", {}).get("custom_details", {}).get("policy_id")
            if policy is None:  # Slack: the policy is in the fields block
                policy = next((p for p in latest if p in json.dumps(body)), None)
            spend = body.get("spend") or body.get("payload", {}).get("custom_details", {}).get("spend")
            last[policy] = spend
        latest_kept = (
            sum(1 for p, s in latest.items() if last.get(p) == s)
            if kind != "slack"
            else sum(1 for p in latest if p in last)
        )
        rows.append(
            [
                kind,
                len(arrivals),
                (times[-1] - times[0]) if len(times) > 1 else 0.0,
                min(gaps, default=float("nan")),
                LIMITS[kind],
                windows,
                f"{latest_kept}/{len(latest)}",
            ]
        )
    accepted = sum(1 for s in statuses if s == 202)
    text = "\n".join(
        [
            f"Relay after a {outage_seconds:.0f} s outage of every destination: {args.deliveries:,} deliveries "
            f"({accepted:,} accepted) for {len(latest):,} policies"
            + (" (distinct, webhook only)" if args.distinct else ""),
            context,
            "",
            f"queue depth when the destinations came back: {depth_before:,} messages "
            f"({len(kinds)} destinations x {len(latest):,} policy windows after coalescing)",
            f"drained {drained_after:.1f} s after recovery (goal <= 60 s: ratio {drained_after / 60:.2f}); "
            f"relay CPU while draining {cpu_used:.1f} s; dead letters {health['dead_letters']}",
            "",
            table(
                [
                    "lane",
                    "delivered",
                    "send span s",
                    "min gap s",
                    "limit gap s",
                    "max in any 10 s",
                    "latest alert kept",
                ],
                rows,
            ),
        ]
    )
    emit("relay_outage_distinct" if args.distinct else "relay_outage", text)
    if health["dead_letters"] or math.isnan(drained_after):
        print("not drained or dead letters: see above", file=sys.stderr)


if __name__ == "__main__":
    main()
