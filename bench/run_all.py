"""Run every benchmark, one fresh process each, and keep their reports in bench/results/*.txt.

    python -m bench.run_all [--quick] [--only startup,program_scale]

``--quick`` runs each with small settings (a smoke test of the scripts, not figures to quote).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import PROJECT_ROOT, RESULTS_DIR, emit, machine_context, table

BENCHMARKS = {
    "startup": ([], ["--repeat", "2"]),
    "program_scale": ([], ["--sizes", "100,1000", "--repeat", "1"]),
    "provider_overhead": (["--mlflow", "both"], ["--repeat", "5", "--warmup", "2", "--emulator-latency-ms", "0"]),
    "calls_per_run": ([], ["--teams", "10"]),
    "status_calls": ([], ["--budgets", "60", "--repeats", "1"]),
    "status_speed": ([], ["--budgets", "30", "--repeats", "1"]),
}


def run(name: str, args: list[str]) -> tuple[int, float]:
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=PROJECT_ROOT, env=env)
    return completed.returncode, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small settings: checks the scripts run, figures not quotable"
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [n for n in BENCHMARKS if not args.only or n in args.only.split(",")]
    rows = []
    for number, name in enumerate(names, 1):
        full, quick = BENCHMARKS[name]
        # Each benchmark prints its own progress on stderr; this says which of them is running.
        print(f"== bench.{name} ({number}/{len(names)})", flush=True)
        code, seconds = run(name, quick if args.quick else full)
        rows.append([f"python -m bench.{name}", "ok" if code == 0 else f"failed ({code})", round(seconds, 1),
                     str(RESULTS_DIR / f"{name}.txt")])  # fmt: skip
    emit("run_all", "\n\n".join([
        f"# Benchmark runs{' (quick)' if args.quick else ''}\n{machine_context()}",
        table(["script", "status", "runtime s", "report"], rows),
    ]))  # fmt: skip
    return 0 if all(row[1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
