"""The alert relay at a steady rate of signed MLflow deliveries (issue 25, item 2).

``python -m bench.relay_load [--runs 5] [--seconds 60] [--rate 100]``

Each run starts a fresh relay (its own queue file) whose one route sends to a local JSON receiver,
then posts signed ``budget_policy.exceeded`` deliveries open-loop at ``--rate`` per second (each
for its own policy, so nothing is coalesced) from 32 client threads.  Per delivery: *accept* = the
relay's answer time; *end to end* = arrival at the receiver minus the moment the delivery was
due to be sent (so a late client counts against the relay, never for it).  A *stall* is an
accept or end to end over 1 s.  ``--project DIR`` runs the relay of another checkout (the same
CLI), to measure a former version on the same machine.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.common import PROJECT_ROOT, Progress, cpu_seconds, emit, machine_context, median, table
from harness import alert_relay as relay_harness
from harness.alert_relay import RelayProcess, budget_envelope, free_port
from harness.webhook_receiver import mlflow_signature

SECRET = "whsec-bench-only"
CLIENT_THREADS = 32


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-len(ordered) * q // 100)) - 1))]


def post(session: requests.Session, url: str, envelope: dict) -> tuple[int, float, float]:
    body = json.dumps(envelope).encode()
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": mlflow_signature(SECRET, delivery_id, stamp, body),
    }
    started = time.monotonic()
    try:
        status = session.post(url, data=body, headers=headers, timeout=30).status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started, time.time()


def relay_processes(relay: RelayProcess) -> list[str]:
    """Every process of the relay: web server (and workers, if any) and consumer."""
    assert relay.process is not None
    return subprocess.run(["pgrep", "-g", str(relay.process.pid)], capture_output=True, text=True).stdout.split()


def trace_syncs(relay: RelayProcess, output: Path) -> subprocess.Popen[bytes]:
    """``strace -c`` of every process of the relay (web server, workers, consumer): fsync calls."""
    pids = relay_processes(relay)
    command = ["strace", "-c", "-w", "-f", "-e", "trace=fsync,fdatasync", "-o", str(output)]
    for pid in pids:
        command += ["-p", pid]
    tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first request
    return tracer


def sync_summary(output: Path) -> tuple[int, float]:
    """(calls, seconds) of fsync + fdatasync from an ``strace -c`` table."""
    calls, seconds = 0, 0.0
    for line in output.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync"):
            seconds += float(fields[1])
            calls += int(fields[3])
    return calls, seconds


class Receiver:
    """``bench.relay_receiver`` in its own process; ``arrivals()`` reads what it recorded."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.out = directory / "arrivals.txt"
        self.out.touch()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.relay_receiver", "--port", str(self.port), "--out", str(self.out)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "ready"
        self.url = f"http://127.0.0.1:{self.port}/hooks/budget"

    def arrivals(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for line in self.out.read_text().splitlines():
            at, policy = line.split(" ", 1)
            found.setdefault(policy, float(at))
        return found

    def wait_for(self, count: int, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while len(found := self.arrivals()) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def one_run(directory: Path, seconds: float, rate: float, count_syncs: bool = False) -> dict[str, float]:
    receiver = Receiver(directory)
    config = {"expire_after": "1h", "routes": {"bench": {"secret": "${BENCH_SECRET}", "webhook": receiver.url}}}
    relay = RelayProcess(directory, config, {"BENCH_SECRET": SECRET}).start()
    trace_output = directory / "strace.txt"
    tracer = trace_syncs(relay, trace_output) if count_syncs else None
    relay_pids = relay_processes(relay)
    cpu_before = cpu_seconds(relay_pids)
    sessions = threading.local()
    due: dict[str, float] = {}
    accepts: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def send(index: int, due_at: float) -> None:
        session = getattr(sessions, "session", None) or requests.Session()
        sessions.session = session
        policy = f"bp-{index:032x}"
        result = post(session, relay.webhook_url("bench", [policy]), budget_envelope(policy))
        with lock:
            accepts.append(result)

    try:
        count = int(seconds * rate)
        started = time.monotonic()
        with (
            Progress("relay_load: deliveries posted", total=count) as progress,
            ThreadPoolExecutor(CLIENT_THREADS) as pool,
        ):
            for index in range(count):
                due_at = started + index / rate
                delay = due_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                due[f"bp-{index:032x}"] = due_at - time.monotonic() + time.time()
                pool.submit(send, index, due_at)
                progress.advance()
        arrived = receiver.wait_for(count, timeout=120)
        relay_cpu = cpu_seconds(relay_pids) - cpu_before
    finally:
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        relay.stop()
        receiver.stop()
    # Wall clock on both sides (the receiver is another process): due times converted to it.
    end_to_end = [at - due[policy] for policy, at in arrived.items() if policy in due]
    accept_seconds = [s for status, s, _ in accepts if status == 202]
    # When the slow answers came (second of the minute): the relay's periodic work runs on the minute.
    slow = sorted({f"{time.gmtime(at).tm_min:02d}:{time.gmtime(at).tm_sec:02d}" for _, s, at in accepts if s > 1})
    if slow:
        print(f"accepts over 1 s answered at (mm:ss UTC): {', '.join(slow)}", file=sys.stderr, flush=True)
    syncs = sync_summary(trace_output) if count_syncs else (0, 0.0)
    return {
        "fsyncs_per_alert": syncs[0] / max(1, len(accept_seconds)),
        "fsync_seconds_per_second": syncs[1] / seconds,
        "relay_cpu_ms_per_alert": relay_cpu * 1000 / max(1, count),
        "sent": count,
        "accepted": len(accept_seconds),
        "delivered": len(end_to_end),
        "accept_p50_ms": median(accept_seconds) * 1000,
        "accept_p99_ms": percentile(accept_seconds, 99) * 1000,
        "accept_max_ms": max(accept_seconds, default=float("nan")) * 1000,
        "e2e_p50_ms": median(end_to_end) * 1000,
        "e2e_p99_ms": percentile(end_to_end, 99) * 1000,
        "e2e_max_ms": max(end_to_end, default=float("nan")) * 1000,
        "stalls": sum(1 for s in accept_seconds if s > 1) + sum(1 for s in end_to_end if s > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--project", type=Path, default=PROJECT_ROOT, help="checkout whose relay runs")
    parser.add_argument("--same-queue", action="store_true", help="back-to-back runs on one queue file")
    parser.add_argument(
        "--count-syncs", action="store_true", help="count the relay's fsync calls with strace (slows it: no latencies)"
    )
    args = parser.parse_args()
    setattr(relay_harness, "PROJECT_ROOT", args.project.resolve())  # noqa: B010 (RelayProcess starts the relay there)
    runs = []
    shared = tempfile.TemporaryDirectory(prefix="bench-relay-load-")
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-relay-load-") as directory:
            result = one_run(
                Path(shared.name if args.same_queue else directory), args.seconds, args.rate, args.count_syncs
            )
        runs.append(result)
        print(f"run {number}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), file=sys.stderr, flush=True)
    keys = ["accept_p50_ms", "accept_p99_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_max_ms", "relay_cpu_ms_per_alert"]
    rows = [
        [n, r["sent"], r["delivered"], *(r[k] for k in keys), r["accept_max_ms"], r["stalls"]]
        for n, r in enumerate(runs, 1)
    ]
    p99s = [r["e2e_p99_ms"] for r in runs]
    clean = sum(1 for r in runs if r["e2e_p99_ms"] <= 1000 and r["delivered"] == r["sent"])
    text = "\n".join(
        [
            f"Relay at {args.rate:.0f} alerts/s for {args.seconds:.0f} s, {args.runs} runs "
            f"(relay of {args.project.resolve()})",
            machine_context(),
            "",
            table(
                [
                    "run",
                    "sent",
                    "delivered",
                    "accept p50",
                    "accept p99",
                    "e2e p50",
                    "e2e p99",
                    "e2e max",
                    "relay CPU ms/alert",
                    "accept max",
                    "stalls > 1 s",
                ],
                rows,
            ),
            "",
            f"end-to-end p99 over runs: min {min(p99s):.1f} ms, median {median(p99s):.1f} ms, max {max(p99s):.1f} ms; "
            f"runs with p99 <= 1 s and every alert delivered: {clean}/{args.runs} "
            f"(ratio of worst p99 to the 1 s goal: {max(p99s) / 1000:.2f})",
        ]
    )
    if args.count_syncs:
        text = (
            f"fsync calls per accepted alert (web + consumer, strace -c, relay of {args.project.resolve()}): "
            + ", ".join(f"{r['fsyncs_per_alert']:.2f}" for r in runs)
            + "; seconds spent in fsync per second of load: "
            + ", ".join(f"{r['fsync_seconds_per_second']:.2f}" for r in runs)
        )
        print(text)
        return
    emit("relay_load", text)


if __name__ == "__main__":
    main()
