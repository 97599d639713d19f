"""``python -m budget_status``: every budget of a stack against its cap, live, grouped by team.

    pulumi stack output --json | python -m budget_status --stack prod
    python -m budget_status --outputs outputs.json [--json] [--png status.png] [--fail-above 80]
    python -m budget_status --report status.json [--png status.png]   (a saved --json report)
    python -m budget_status --outputs outputs.json --stack prod --enforcement

Exit codes (for cron and CI): 0 all fine; 1 a budget is above ``--fail-above`` percent;
2 a hard stop is rejecting requests now; 3 some spend could not be read; 4 (with
``--enforcement``) caps not in force on every MLflow worker: per-worker tracking seen, or a cap
changed within the refresh interval (``budget_status/enforcement.py``); 64 bad usage or input
(checked before any API call).  2 wins over 4, 4 over 1 and 3.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from budget_status.stack import OutputsError

if TYPE_CHECKING:
    from budget_status.report import BudgetRow

EXIT_USAGE = 64  # argparse's own 2 would read as "hard stop active"
EXIT_HARD_STOP, EXIT_NOT_IN_FORCE = 2, 4  # report.EXIT_HARD_STOP, enforcement.EXIT_NOT_IN_FORCE

# What each output needs beyond requirements.txt, and how to get it.
_OPTIONAL_PACKAGES = {
    "table": ("rich", "rich>=13,<15", "or pass --json"),
    "png": ("matplotlib", "matplotlib>=3.7,<4", "or leave --png out"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m budget_status", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--outputs", type=Path, help="`pulumi stack output --json` saved to a file (default: stdin)")
    source.add_argument("--report", type=Path, help="show a report saved with --json instead of asking the servers")
    parser.add_argument("--stack", help="read provider config from Pulumi.<stack>.yaml (else env vars only)")
    parser.add_argument("--config", type=Path, help="a stack config file to read instead of Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--png", type=Path, metavar="FILE", help="also draw a bar chart to FILE")
    parser.add_argument(
        "--fail-above", type=percentage, metavar="PCT", help="exit 1 if any budget used more than PCT percent"
    )
    parser.add_argument(
        "--enforcement",
        action="store_true",
        help="also check that gateway caps are in force on every MLflow worker (exit 4 if not)",
    )
    parser.add_argument("--worker-reads", type=int, default=12, help=argparse.SUPPRESS)  # windows reads
    parser.add_argument(
        "--refresh-interval",
        type=int,
        metavar="SECONDS",
        help="the server's MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL (default: ml-budgets:mlflowServer, else 600)",
    )
    return parser.parse_args(argv)


def percentage(text: str) -> float:
    """A threshold that can trip: "nan" or "inf" would never exit 1 (an all-clear that cannot fail)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_optional_packages(args)
        require_png_folder(args.png)
        rows, calls = _rows(args)
        not_in_force = _not_in_force(args, rows)
    except OutputsError as error:
        print(f"budget_status: {error}", file=sys.stderr)
        return EXIT_USAGE
    from budget_status.report import exit_code, render_table, to_json

    if args.json:
        print(to_json(rows, calls))
    else:
        render_table(rows)
    if args.png:
        from budget_status.report import figure

        try:
            figure(rows).savefig(args.png, dpi=120)
        except OSError as error:
            print(f"budget_status: cannot write {args.png}: {error.strerror or error}", file=sys.stderr)
            return EXIT_USAGE
    for line in not_in_force:  # stderr: --json keeps stdout a JSON document
        print(f"NOT IN FORCE: {line}", file=sys.stderr)
    code = exit_code(rows, args.fail_above)
    return EXIT_NOT_IN_FORCE if not_in_force and code != EXIT_HARD_STOP else code


def _not_in_force(args: argparse.Namespace, rows: list[BudgetRow]) -> list[str]:
    """With ``--enforcement``: lines naming the caps not in force on every MLflow worker."""
    if not args.enforcement or args.report:
        return []
    from datetime import UTC, datetime

    from budget_status import enforcement
    from budget_status.stack import StackConfigFile, stack_config_path

    path = stack_config_path(args.stack, Path.cwd(), args.config)
    interval = enforcement.refresh_interval_of(path, args.refresh_interval)
    return enforcement.assess(rows, StackConfigFile.load(path), interval, args.worker_reads, datetime.now(UTC))


def _rows(args: argparse.Namespace) -> tuple[list[BudgetRow], dict[str, int]]:
    from budget_status.report import rows_from_json

    if args.report:
        return rows_from_json(_read(args.report)), {}
    from budget_status import collect
    from budget_status.stack import StackConfigFile, load_outputs, stack_config_path

    text = _read(args.outputs) if args.outputs else _stdin()
    config = StackConfigFile.load(stack_config_path(args.stack, Path.cwd(), args.config))
    return collect(load_outputs(text), config)


def require_optional_packages(args: argparse.Namespace) -> None:
    """Import what the chosen outputs need now, before any API call, or say how to install it."""
    wanted = [] if args.json else ["table"]
    wanted += ["png"] if args.png else []
    for output in wanted:
        module, requirement, alternative = _OPTIONAL_PACKAGES[output]
        try:
            __import__(module)
        except ImportError:
            raise OutputsError(
                f"the {'table' if output == 'table' else 'PNG chart'} needs the `{module}` package: "
                f"pip install -r requirements-dev.txt (or pip install '{requirement}'), {alternative}"
            ) from None


def require_png_folder(png: Path | None) -> None:
    if png is None:
        return
    folder = png.parent
    if png.is_dir():
        raise OutputsError(f"--png {png} is a folder: name a file, e.g. {png / 'status.png'}")
    if not folder.is_dir():
        raise OutputsError(f"--png {png}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputsError(f"--png {png}: the folder {folder} is not writable")


def _read(path: Path) -> str:
    from budget_status.stack import decode_outputs

    try:
        return decode_outputs(path.read_bytes())
    except OSError as error:
        raise OutputsError(f"cannot read {path}: {error.strerror or error}") from None


def _stdin() -> str:
    from budget_status.stack import decode_outputs

    if sys.stdin.isatty():
        raise OutputsError("no outputs: pipe `pulumi stack output --json` in, or pass --outputs FILE")
    return decode_outputs(sys.stdin.buffer.read())


if __name__ == "__main__":
    sys.exit(main())
