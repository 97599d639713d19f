"""The status table at 80 and 120 columns, and what it needs installed (issue 20).

Every figure (spend, cap, percent) appears whole on one line at both widths, no line is wider
than the terminal, names wrap instead of vanishing and notes are numbered below the table.  A
missing ``rich`` or ``matplotlib`` is one line naming the install, before any API call.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from budget_status.report import BudgetRow, render_table
from budget_status.stack import NO_TEAM
from harness.provider_server import PROJECT_ROOT

WIDTHS = (80, 120)
LONG_NOTE = (
    "no such budget policy on http://mlflow.internal.example.com:5000: deleted outside Pulumi? run `pulumi refresh`"
)


def row(team: str, budget: str, tier: str, **values) -> BudgetRow:
    defaults = dict(
        source="mlflow-gateway",
        id="bp-" + "0" * 32,
        action="ALERT",
        cap_usd=500.0,
        spend_usd=None,
        percent=None,
        window="1 month",
        window_start="2026-12-01T00:00:00Z",
        resets_at="2027-01-01T00:00:00Z",
        rejecting=False,
        server="http://127.0.0.1:5000",
    )
    return BudgetRow(team, budget, tier, **{**defaults, **values})


ROWS = [
    row("search", "search-gateway", "alert 50%", cap_usd=250.0, spend_usd=312.5, percent=125.0),
    row("search", "search-gateway", "alert 80%", cap_usd=400.0, spend_usd=312.5, percent=78.12),
    row("search", "search-gateway", "hard stop", action="REJECT", spend_usd=612.5, percent=122.5, rejecting=True),
    row(
        "recommendations-platform-infrastructure",
        "recommendations-platform-infrastructure-databricks-gateway",
        "AI Gateway budget",
        source="databricks-ai-gateway",
        action="BLOCK_USAGE",
        cap_usd=1_250_000.0,
        percent=79.0,
        note="shared threshold: Databricks reports the percent only",
    ),
    row(
        "recommendations-platform-infrastructure",
        "recommendations-platform-infrastructure-databricks-gateway",
        "per user (caller)",
        action="BLOCK_USAGE",
        cap_usd=40.0,
        spend_usd=987_654.32,
        percent=2_469_135.8,
        note="the calling principal's own spend and threshold",
    ),
    row("recsys", "recsys-serverless", "account budget", action="EMAIL_NOTIFICATION", cap_usd=12_000.0, note="x" * 5),
    row(NO_TEAM, "global-cap", "alert 90%", cap_usd=4_500.0, unavailable=True, note=LONG_NOTE),
]


def rendered(rows: list[BudgetRow], width: int) -> str:
    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    render_table(rows, console)
    return console.file.getvalue()


def figures(row: BudgetRow) -> list[str]:
    shown = [f"${row.cap_usd:,.2f}"] if row.cap_usd is not None else []
    shown += [f"${row.spend_usd:,.2f}"] if row.spend_usd is not None else []
    shown += [f"{row.percent:.1f}%"] if row.percent is not None else []
    return shown


@pytest.mark.parametrize("width", WIDTHS)
def test_every_figure_appears_whole_and_no_line_is_wider_than_the_terminal(width):
    text = rendered(ROWS, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, text
    assert "…" not in text, text  # nothing cut short
    for budget in ROWS:
        for figure in figures(budget):
            assert any(figure in line for line in lines), (figure, text)
    joined = "".join(text.split())
    for budget in ROWS:  # names wrap, they are never cut
        for name in (budget.team, budget.budget, budget.tier):
            assert "".join(name.split()) in joined, (name, text)
    assert text.count("REJECTING") == 1 and text.count("unavailable") == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_notes_are_numbered_below_the_table_once_each(width):
    text = rendered(ROWS, width)
    table_part, _, notes_part = text.partition("[1] ")
    notes = [budget.note for budget in ROWS if budget.note]
    assert "".join(LONG_NOTE.split()) not in "".join(table_part.split())  # not in the table ...
    joined_notes = "".join(notes_part.split())
    for number, note in enumerate(dict.fromkeys(notes), 1):  # ... but below it, numbered
        assert "".join(note.split()) in joined_notes, (note, text)
        assert f"[{number}]" in table_part
    assert text.count("[1] ") == 1


def test_wider_terminals_add_action_reset_window_and_bar_columns():
    narrow, wide, widest = rendered(ROWS, 80), rendered(ROWS, 120), rendered(ROWS, 200)
    assert "BLOCK_USAGE" in wide and "2027-01-01 00:00" in wide
    assert "BLOCK_USAGE" not in narrow and "2027-01-01" not in narrow  # they would squeeze the figures
    assert "1 month" in widest and "━" in widest


# --- end to end: the command at 80 and 120 columns, and without its optional packages ----------------


def run_status(*args: str, cwd, columns: int = 120, block: str = "") -> subprocess.CompletedProcess:
    """``python -m budget_status``; ``block`` names a package made unimportable, as if not installed."""
    code = f"import sys, runpy; sys.modules[{block!r}] = None; " if block else "import sys, runpy; "
    code += "runpy.run_module('budget_status', run_name='__main__', alter_sys=True)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(cwd), "COLUMNS": str(columns)},
        timeout=120,
    )


def test_the_command_prints_every_figure_whole_at_80_and_120_columns(gateway_budget, tmp_path):
    outputs = {"teams": {"search-and-discovery-platform": {"databricks_gateway_budget_id": gateway_budget}}}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    report = run_status("--outputs", "outputs.json", "--stack", "dev", "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    rows = [BudgetRow.from_dict(item) for item in json.loads(report.stdout)["budgets"]]
    (tmp_path / "report.json").write_text(report.stdout)
    for columns in WIDTHS:
        live = run_status("--outputs", "outputs.json", "--stack", "dev", cwd=tmp_path, columns=columns)
        saved = run_status("--report", "report.json", cwd=tmp_path, columns=columns)  # no server asked
        for result in (live, saved):
            assert result.returncode == 0, result.stderr
            lines = result.stdout.splitlines()
            assert max(len(line) for line in lines) <= columns
            for budget in rows:
                for figure in figures(budget):
                    assert any(figure in line for line in lines), (figure, result.stdout)
        assert saved.stdout == live.stdout


@pytest.mark.parametrize(
    "package, args",
    [("rich", []), ("matplotlib", ["--json", "--png", "status.png"])],
    ids=["rich for the table", "matplotlib for --png"],
)
def test_a_missing_optional_package_is_one_line_before_any_api_call(
    package, args, gateway_budget, databricks_emulator, tmp_path
):
    (tmp_path / "outputs.json").write_text(
        json.dumps({"teams": {"s": {"databricks_gateway_budget_id": gateway_budget}}})
    )
    result = run_status("--outputs", "outputs.json", "--stack", "dev", *args, cwd=tmp_path, block=package)
    assert result.returncode == 64
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"`{package}`" in result.stderr and "pip install" in result.stderr
    assert result.stdout == "" and not (tmp_path / "status.png").exists()
    assert databricks_emulator.count() == 0
    # The same command with the package there works: it was the package, not the command.
    assert run_status("--outputs", "outputs.json", "--stack", "dev", *args, cwd=tmp_path).returncode == 0
