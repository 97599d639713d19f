"""What the benchmark scripts share: servers on free 127.0.0.1 ports, statistics, tables."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


# --- statistics --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: Sequence[float]) -> float:
    """90th percentile, nearest rank (no interpolation past the largest sample)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * 9 // 10))  # ceil(0.9 n)
    return ordered[rank - 1]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


class Stopwatch:
    """``with watch: ...`` appends the elapsed milliseconds to ``watch.samples``."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.samples.append((time.perf_counter() - self._started) * 1000.0)


# --- tables ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain-text table, numbers right-aligned; also valid Markdown."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    numeric = [
        any(_is_number(row[i]) for row in rows) and all(_is_number(row[i]) or row[i] in PLACEHOLDERS for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    separator = (
        "|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    )
    out = [title, ""] if title else []
    out += [line([str(h) for h in headers]), separator, *(line(r) for r in cells)]
    return "\n".join(out)


PLACEHOLDERS = ("", "–", None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --- context -----------------------------------------------------------------------------------


def machine_context() -> str:
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs ({cpu}); pulumi {version('pulumi')}, "
        f"databricks-sdk {version('databricks-sdk')}, mlflow {version('mlflow')}; commit {commit or '?'}; "
        f"load average {load} at start"
    )


def emit(name: str, text: str) -> None:
    """Print a report and keep it in bench/results/<name>.txt."""
    print(text, flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.txt").write_text(text + "\n")


def run_python(
    code: str,
    argv: Sequence[str] = (),
    interpreter_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """``python [interpreter_args] -c code [argv]`` from the project root (project on ``PYTHONPATH``)."""
    process_env = {**os.environ, **(env or {})}
    process_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), process_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *interpreter_args, "-c", code, *argv],
        cwd=PROJECT_ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- progress ----------------------------------------------------------------------------------


class Progress:
    """Progress of a long step on stderr (reports stay on stdout): a line when it starts, ``done/total``
    at most every ``every_seconds`` while it runs, and the time it took, so a run of minutes is never
    a silent terminal. ``advance`` may be called from any thread.

        with Progress("up (first)", total=1600) as progress:
            engine.on_step = progress.advance
    """

    def __init__(self, label: str, total: int | None = None, every_seconds: float = 5.0) -> None:
        self.label, self.total, self.every_seconds = label, total, every_seconds
        self.done = 0
        self._lock = threading.Lock()
        self._started = self._last = time.perf_counter()

    def __enter__(self) -> Progress:
        self._started = self._last = time.perf_counter()
        self._say("started")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._say(" ".join(filter(None, [self._count(), "failed" if exc[0] else "done"])))

    def advance(self, steps: int = 1) -> None:
        with self._lock:
            self.done += steps
            now = time.perf_counter()
            if now - self._last < self.every_seconds:
                return
            self._last = now
        self._say(self._count())

    def _count(self) -> str:
        if not self.done and self.total is None:
            return ""
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def _say(self, what: str) -> None:
        elapsed = time.perf_counter() - self._started
        print(f"[{self.label}] {what} ({elapsed:.0f} s)", file=sys.stderr, flush=True)


# --- servers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def databricks_emulator() -> Iterator[Any]:
    """The Databricks account emulator as its own process (``python -m emulator``)."""
    from emulator.process import EmulatorProcess

    process = EmulatorProcess()
    process.start()
    try:
        yield process
    finally:
        process.close()


@contextlib.contextmanager
def mlflow_server() -> Iterator[Any]:
    """A real ``mlflow server`` (SQLite backend, one worker) counting requests in its access log."""
    from harness.mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as directory:
        server = MlflowServer(Path(directory)).start()
        try:
            _require_own_server(server)
            yield server
        finally:
            server.stop()


def _require_own_server(server) -> None:
    """Fail if the port answers for another suite's server (free-port races between processes)."""
    import requests

    response = requests.get(f"{server.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, timeout=10)
    location = response.json().get("experiment", {}).get("artifact_location", "")
    if str(server.directory) not in location:
        raise RuntimeError(f"{server.url} is another process's mlflow server (artifacts at {location!r}); run again")


def use_provider_env() -> dict[str, str]:
    """Env of the MLflow fixtures (telemetry off, http webhooks allowed), also for this process."""
    from harness.mlflow_server import provider_env

    env = provider_env()
    os.environ.update(env)
    return env


@contextlib.contextmanager
def provider_server(config: dict[str, Any]) -> Iterator[Any]:
    """The SDK's real dynamic provider server (``python -m pulumi.dynamic``), configured."""
    from harness.provider_server import ProviderServer

    server = ProviderServer(config=config, env=use_provider_env())
    try:
        yield server
    finally:
        server.close()


def cpu_seconds(pids: Sequence[int | str]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (from /proc; gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total
