"""(3) Program scale: time and peak memory to declare N resources under mocks, ours vs stock.

Each (variant, N) runs in a fresh ``python`` process which imports what it needs, declares N
resources inside ``harness.pulumi_program.run_program`` (``set_mocks``) and reports the
wall time of the program and its peak RSS (``getrusage`` in the child).

* ours:         N ``ServerlessBudgetPolicy`` (a ``DynamicResource``: provider serialized once per class);
* stock-main:   N stock ``pulumi.dynamic.Resource`` with a trivial provider defined in the program's
                ``__main__`` (as Pulumi's examples do; dill pickles it by value).  Stock pulumi 3.272
                raises ``RecursionError`` past a few hundred; the threshold is found by bisection;
* stock-module: the same stock resource with its provider in an importable module and no instance
                state (``bench/stock_resource.py``, pickled by reference like ours).  It survives
                because pickling it walks no dict; it is the fairest timing anchor at every N.

All variants declare the same properties, so only the dynamic-resource machinery differs.

    python -m bench.program_scale [--sizes 100,400,1000,5000] [--repeat 3] [--plot bench/results/program_scale.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import RESULTS_DIR, Progress, emit, machine_context, ratio, run_python, table

TARGET_RATIO = 1.5

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time

    count, variant = int(sys.argv[1]), sys.argv[2]
    started = time.perf_counter()
    from harness.pulumi_program import run_program

    if variant == "ours":
        from providers.serverless_budget_policy import ServerlessBudgetPolicy

        def declare(i):
            ServerlessBudgetPolicy(
                f"policy-{i}", policy_name=f"team-{i}", custom_tags={"team": f"t{i}"}, binding_workspace_ids=[]
            )
    else:
        if variant == "stock-main":
            # Defined in __main__, as Pulumi's examples write dynamic providers: dill pickles the
            # provider by value, every serialization walks its dicts through the stacked wrappers.
            import pulumi.dynamic as dyn

            class TrivialProvider(dyn.ResourceProvider):
                def create(self, props):
                    return dyn.CreateResult("id", props)

            class StockResource(dyn.Resource, module="bench", name="StockResource"):
                def __init__(self, name, props):
                    super().__init__(TrivialProvider(), name, props)
        else:
            from bench.stock_resource import StockResource

        def declare(i):
            StockResource(f"policy-{i}", {
                "policy_name": f"team-{i}", "custom_tags": {"team": f"t{i}"}, "binding_workspace_ids": [],
                "policy_id": None, "account_id": None,
            })

    imported = time.perf_counter()
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    declared = 0

    def program():
        global declared
        for i in range(count):
            declare(i)
            declared += 1

    outcome = "ok"
    try:
        mocks = run_program(program)
        assert len(mocks.registrations) == count, len(mocks.registrations)
    except RecursionError:
        outcome = "RecursionError"
    finished = time.perf_counter()
    print(json.dumps({
        "outcome": outcome, "declared": declared,
        "import_s": imported - started, "program_s": finished - imported,
        "rss_imported_kb": rss_imported, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    """
)


VARIANTS = ("ours", "stock-main", "stock-module")
LABELS = {
    "ours": "ours (DynamicResource)",
    "stock-main": "stock, provider in __main__",
    "stock-module": "stock, provider in a module",
}


@dataclass
class Sample:
    variant: str
    count: int
    outcome: str
    declared: int
    program_s: float
    peak_rss_mb: float
    rss_growth_mb: float

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def us_per_resource(self) -> float:
        return self.program_s / self.count * 1e6


def measure(variant: str, count: int) -> Sample:
    completed = run_python(CHILD, argv=(str(count), variant))
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(f"{variant} x {count} failed:\n{completed.stderr[-3000:]}")
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return Sample(
        variant=variant, count=count, outcome=data["outcome"], declared=data["declared"], program_s=data["program_s"],
        peak_rss_mb=data["peak_rss_kb"] / 1024, rss_growth_mb=(data["peak_rss_kb"] - data["rss_imported_kb"]) / 1024,
    )  # fmt: skip


def measure_median(variant: str, count: int, repeat: int) -> Sample:
    """The run with the median program time out of ``repeat`` fresh processes (one if it fails)."""
    first = measure(variant, count)
    if not first.ok:
        return first
    samples = sorted([first, *(measure(variant, count) for _ in range(repeat - 1))], key=lambda s: s.program_s)
    return samples[len(samples) // 2]


def stock_threshold(variant: str, low: int, high: int) -> tuple[int | None, list[tuple[int, bool]]]:
    """Largest N the stock variant can declare, by bisection between a working and a failing N.

    Returns (that N, or None if ``high`` works too; the probes made as (N, worked)).
    """
    probes = []

    def works(count: int) -> bool:
        worked = measure(variant, count).ok
        probes.append((count, worked))
        outcome = "works" if worked else "fails"
        print(f"[program_scale: {variant} threshold] N={count} {outcome}", file=sys.stderr, flush=True)
        return worked

    if not works(low):
        raise RuntimeError(f"{variant} already fails at {low}; lower --bisect-low")
    if works(high):
        return None, probes
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle):
            low = middle
        else:
            high = middle
    return low, probes


# --- report ------------------------------------------------------------------------------------


def scale_table(samples: dict[str, dict[int, Sample]]) -> str:
    headers = ["N", "variant", "outcome", "time s", "µs/resource", "peak RSS MB", "RSS growth MB",
               "time ours/this", "peak RSS ours/this", f"ours ≤ {TARGET_RATIO}x"]  # fmt: skip
    rows = []
    for count in sorted(samples["ours"]):
        ours = samples["ours"][count]
        for variant in VARIANTS:
            sample = samples[variant].get(count)
            if sample is None:
                continue
            if not sample.ok:
                rows.append([count, LABELS[variant], f"fails ({sample.outcome} at resource {sample.declared + 1})",
                             "–", "–", "–", "–", "–", "–", "–"])  # fmt: skip
                continue
            cells = [
                count,
                LABELS[variant],
                "ok",
                sample.program_s,
                sample.us_per_resource,
                sample.peak_rss_mb,
                sample.rss_growth_mb,
            ]
            if variant == "ours":
                rows.append([*cells, "", "", ""])
            else:
                time_ratio, rss_ratio = (
                    ratio(ours.program_s, sample.program_s),
                    ratio(ours.peak_rss_mb, sample.peak_rss_mb),
                )
                rows.append([*cells, time_ratio, rss_ratio, time_ratio <= TARGET_RATIO and rss_ratio <= TARGET_RATIO])
    return table(
        headers, rows, title="Declaring N resources under mocks (median of fresh processes; time excludes imports)"
    )


def linearity(samples: dict[str, dict[int, Sample]]) -> str:
    lines = []
    for variant in VARIANTS:
        good = {n: s for n, s in samples[variant].items() if s.ok}
        if len(good) < 2:
            continue
        counts = sorted(good)
        smallest, largest = good[counts[0]], good[counts[-1]]
        per_resource = ", ".join(f"{n}: {good[n].us_per_resource:.0f}" for n in counts)
        growth = ", ".join(f"{n}: {good[n].rss_growth_mb / n * 1024:.0f}" for n in counts)
        lines.append(
            f"{LABELS[variant]}: µs per resource {per_resource}; KB of RSS growth per resource {growth}; "
            f"{largest.count // smallest.count}x the resources took "
            f"{ratio(largest.program_s, smallest.program_s):.1f}x the time."
        )
    return "Linearity\n" + "\n".join(f"- {line}" for line in lines)


def plot(samples: dict[str, dict[int, Sample]], threshold: int | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    panels = (
        ("program wall time, s", lambda s: s.program_s, False),
        ("peak RSS of the process, MB", lambda s: s.peak_rss_mb, False),
        ("time per resource, µs", lambda s: s.us_per_resource, True),
    )
    for axis, (ylabel, value, log_x) in zip(axes, panels, strict=True):
        for variant, marker in zip(VARIANTS, "osd", strict=True):
            good = [samples[variant][n] for n in sorted(samples[variant]) if samples[variant][n].ok]
            axis.plot([s.count for s in good], [value(s) for s in good], marker=marker, label=LABELS[variant])
        if threshold is not None:
            axis.axvline(threshold + 1, color="red", linestyle="--", linewidth=1)
            axis.annotate(f" stock in __main__:\n RecursionError at {threshold + 1}", xy=(threshold + 1, 0.04),
                          xycoords=("data", "axes fraction"), color="red", fontsize=8)  # fmt: skip
        if log_x:
            axis.set_xscale("log")
            axis.set_ylim(bottom=0)
        axis.set_xlabel("resources declared" + (" (log scale)" if log_x else ""))
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="center right" if log_x else "upper left", fontsize=8)
    figure.suptitle("Declaring N dynamic resources under mocks (pulumi 3.272), fresh process per point")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.program_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,400,1000,5000", help="resource counts (default 100,400,1000,5000)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh processes per point; the median is kept (default 3)"
    )
    parser.add_argument("--bisect-low", type=int, default=100, help="a count stock-main declares (default 100)")
    parser.add_argument("--bisect-high", type=int, default=1000, help="a count stock-main fails at (default 1000)")
    parser.add_argument("--plot", type=Path, default=RESULTS_DIR / "program_scale.png", help="PNG to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    with Progress("program_scale: stock-main's threshold, by bisection"):
        threshold, probes = stock_threshold("stock-main", args.bisect_low, args.bisect_high)
    print(f"  stock-main: largest N that works = {threshold} (probes {probes})", flush=True)
    sizes = sorted({int(s) for s in args.sizes.split(",")} | ({threshold} if threshold else set()))
    samples: dict[str, dict[int, Sample]] = {variant: {} for variant in VARIANTS}
    for count in sizes:
        for variant in VARIANTS:
            with Progress(f"program_scale: {variant} x {count}, {args.repeat} processes"):
                samples[variant][count] = measure_median(variant, count, args.repeat)
        print(
            f"  N={count}: "
            + ", ".join(f"{v} {samples[v][count].outcome} {samples[v][count].program_s:.2f}s" for v in VARIANTS),
            flush=True,
        )
    plot(samples, threshold, args.plot)

    header = (
        "# (3) Program scale\n"
        f"{machine_context()}\n"
        "Each point: a fresh process declaring N resources in run_program (set_mocks); time = the program only "
        "(imports excluded); peak RSS = ru_maxrss of the child (whole process); growth = peak minus RSS after imports."
    )
    if threshold is None:
        threshold_line = f"stock in __main__ did not fail up to {args.bisect_high}."
    else:
        threshold_line = (
            f"Stock (provider in __main__) threshold by bisection between {args.bisect_low} and {args.bisect_high}: "
            f"{threshold} resources work, {threshold + 1} raise RecursionError. Probes (N, worked): {probes}."
        )
    blocks = [header, threshold_line, scale_table(samples), linearity(samples), f"Plot: {args.plot}",
              f"Runtime: {time.perf_counter() - started:.0f} s"]  # fmt: skip
    emit("program_scale", "\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
