"""``python -m budget_status``: every budget of a stack against its cap, live, grouped by team.

    pulumi stack output --json | python -m budget_status --stack prod
    python -m budget_status --outputs outputs.json [--json] [--png status.png] [--fail-above 80]

Exit codes (for cron and CI): 0 all fine; 1 a budget is above ``--fail-above`` percent;
2 a hard stop is rejecting requests now; 3 some spend could not be read; 64 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from budget_status import collect
from budget_status.report import exit_code, figure, table, to_json
from budget_status.stack import OutputsError, StackConfigFile, load_outputs, stack_config_path

EXIT_USAGE = 64  # argparse's own 2 would read as "hard stop active"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m budget_status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=Path, help="`pulumi stack output --json` saved to a file (default: stdin)")
    parser.add_argument("--stack", help="read provider config from Pulumi.<stack>.yaml (else env vars only)")
    parser.add_argument("--config", type=Path, help="a stack config file to read instead of Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--png", type=Path, metavar="FILE", help="also draw a bar chart to FILE")
    parser.add_argument(
        "--fail-above", type=float, metavar="PCT", help="exit 1 if any budget used more than PCT percent"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text = args.outputs.read_text() if args.outputs else _stdin()
        config = StackConfigFile.load(stack_config_path(args.stack, Path.cwd(), args.config))
        rows, calls = collect(load_outputs(text), config)
    except (OutputsError, OSError) as error:
        print(f"budget_status: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(to_json(rows, calls))
    else:
        from rich.console import Console

        Console().print(table(rows))
    if args.png:
        figure(rows).savefig(args.png, dpi=120)
    return exit_code(rows, args.fail_above)


def _stdin() -> str:
    if sys.stdin.isatty():
        raise OutputsError("no outputs: pipe `pulumi stack output --json` in, or pass --outputs FILE")
    return sys.stdin.read()


if __name__ == "__main__":
    sys.exit(main())
