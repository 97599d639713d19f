"""(4) Start-up: what the program process imports to declare a 10-team stack, next to ``import pulumi``.

The program process runs ``__main__.py`` under mocks (``harness.pulumi_program.run_program``)
with a generated 10-team config, in a fresh ``python -X importtime``; it must not import mlflow
or databricks-sdk (the providers import them in the provider process, when the engine calls
them).  The anchor is a fresh ``python -X importtime -c "import pulumi"``.  Wall times come from
separate runs without ``-X importtime`` (it slows imports down).

    python -m bench.startup [--teams 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from dataclasses import dataclass

from bench.common import Progress, emit, machine_context, median, ratio, run_python, table

FORBIDDEN = ("mlflow", "databricks")

PROGRAM = textwrap.dedent(
    """
    import json, runpy, sys, time

    started = time.perf_counter()
    import pulumi
    from harness.pulumi_program import run_program
    sdk_loaded = time.perf_counter()
    config = json.loads(sys.argv[1])
    mocks = run_program(lambda: runpy.run_path("__main__.py", run_name="__main__"), config=config)
    finished = time.perf_counter()
    print(json.dumps({
        "sdk_import_s": sdk_loaded - started, "program_s": finished - sdk_loaded, "total_s": finished - started,
        "resources": sum(1 for r in mocks.registrations if r.custom),
        "modules": sorted({name.split(".")[0] for name in sys.modules}),
    }))
    """
)

PULUMI_ONLY = textwrap.dedent(
    """
    import json, sys, time

    started = time.perf_counter()
    import pulumi
    finished = time.perf_counter()
    print(json.dumps({"sdk_import_s": finished - started, "program_s": 0.0, "total_s": finished - started,
                      "resources": 0, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
    """
)


@dataclass
class ImportProfile:
    """``-X importtime`` totals: microseconds per module (self) and in all."""

    self_us: dict[str, int]

    @classmethod
    def parse(cls, stderr: str) -> ImportProfile:
        self_us: dict[str, int] = {}
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
            self_us[name.strip()] = int(own)
        return cls(self_us)

    @property
    def total_ms(self) -> float:
        return sum(self.self_us.values()) / 1000

    def ms_of(self, top_level: set[str]) -> float:
        return sum(us for name, us in self.self_us.items() if name.split(".")[0] in top_level) / 1000

    @property
    def top_level(self) -> set[str]:
        return {name.split(".")[0] for name in self.self_us}


@dataclass
class Measurement:
    label: str
    profile: ImportProfile
    modules: set[str]
    resources: int
    wall_s: list[float]
    sdk_import_s: list[float]
    program_s: list[float]


def measure(label: str, code: str, argv: tuple[str, ...], repeat: int) -> Measurement:
    _run(code, argv)  # warm-up: bytecode caches written, files in the page cache
    runs = [_run(code, argv, ("-X", "importtime")) for _ in range(repeat)]
    profiles = sorted(((ImportProfile.parse(r["stderr"]), r) for r in runs), key=lambda pr: pr[0].total_ms)
    profile, profiled = profiles[len(profiles) // 2]  # the run with the median import time
    walls, sdk, program = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        data = _run(code, argv)["data"]
        walls.append(time.perf_counter() - started)
        sdk.append(data["sdk_import_s"])
        program.append(data["program_s"])
    return Measurement(
        label=label, profile=profile, modules=set(profiled["data"]["modules"]),
        resources=profiled["data"]["resources"], wall_s=walls, sdk_import_s=sdk, program_s=program,
    )  # fmt: skip


def _run(code: str, argv: tuple[str, ...], interpreter_args: tuple[str, ...] = ()) -> dict:
    completed = run_python(code, argv=argv, interpreter_args=interpreter_args)
    if completed.returncode != 0:
        raise RuntimeError(f"start-up child failed:\n{completed.stderr[-3000:]}")
    return {"data": json.loads(completed.stdout.strip().splitlines()[-1]), "stderr": completed.stderr}


def program_config(teams: int) -> dict[str, str]:
    from bench.calls_per_run import teams_config

    return {
        "databricks:host": "http://127.0.0.1:9",
        "databricks:accountId": "0d6f1e5c-4a7b-4c1e-9f3a-2b8c7d6e5f40",
        "mlflow:trackingUri": "http://127.0.0.1:9",
        "ml-budgets:teams": json.dumps(teams_config([str(i + 1) for i in range(teams)])),
    }


PROJECT_PACKAGES = {"components", "providers", "stack_config", "evaluation"}


def report(program: Measurement, anchor: Measurement, teams: int) -> str:
    forbidden = sorted(m for m in program.modules if m.startswith(FORBIDDEN))
    extra_top_level = sorted(program.modules - anchor.modules)
    extra = {name: us for name, us in program.profile.self_us.items() if name not in anchor.profile.self_us}
    groups = {"project (components, providers, stack_config)": 0, "pulumi submodules (dynamic, runtime.mocks, …)": 0,
              "test harness (harness.pulumi_program)": 0, "other (stdlib, third party)": 0}  # fmt: skip
    for name, us in extra.items():
        groups[_group_of(name)] += us
    headers = ["process", "resources", "modules imported", "import time ms (-X importtime)", "wall ms (median)",
               "import pulumi ms", "rest of program ms"]  # fmt: skip
    rows = [
        [m.label, m.resources, len(m.profile.self_us), m.profile.total_ms, median(m.wall_s) * 1000,
         median(m.sdk_import_s) * 1000, median(m.program_s) * 1000]
        for m in (anchor, program)
    ]  # fmt: skip
    split = table(["modules the program imports beyond `import pulumi`", "modules", "import time ms"], [
        [group, sum(1 for n in extra if _group_of(n) == group), us / 1000] for group, us in groups.items()
    ])  # fmt: skip
    lines = [
        table(headers, rows, title="Start-up (fresh processes)"),
        f"Ratios program/anchor: import time {ratio(program.profile.total_ms, anchor.profile.total_ms):.2f}x, "
        f"wall {ratio(median(program.wall_s), median(anchor.wall_s)):.2f}x.",
        split,
        f"New top-level modules: {', '.join(extra_top_level) or 'none'}.",
        "mlflow / databricks imported by the program process: "
        f"{', '.join(forbidden) if forbidden else 'no (target met)'}.",
        "Slowest imports beyond `import pulumi` (self time, ms): "
        + ", ".join(f"{name} {us / 1000:.1f}" for name, us in sorted(extra.items(), key=lambda kv: -kv[1])[:8]),
    ]
    return "\n\n".join(lines)


def _group_of(name: str) -> str:
    top = name.split(".")[0]
    if top in PROJECT_PACKAGES:
        return "project (components, providers, stack_config)"
    if top == "pulumi":
        return "pulumi submodules (dynamic, runtime.mocks, …)"
    if top == "tests":
        return "test harness (harness.pulumi_program)"
    return "other (stdlib, third party)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=10, help="teams in the program's config (default 10)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each process (default 7)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = json.dumps(program_config(args.teams))
    with Progress(f"startup: python -c 'import pulumi', {2 * args.repeat + 1} processes"):
        anchor = measure('python -c "import pulumi"', PULUMI_ONLY, (), args.repeat)
    with Progress(f"startup: __main__.py, {2 * args.repeat + 1} processes"):
        program = measure(f"__main__.py, {args.teams} teams, under mocks", PROGRAM, (config,), args.repeat)
    header = f"# (4) Start-up\n{machine_context()}"
    emit(
        "startup",
        "\n\n".join([header, report(program, anchor, args.teams), f"Runtime: {time.perf_counter() - started:.0f} s"]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
