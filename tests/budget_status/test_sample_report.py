"""The README's tour without the CLI: the bundled sample report (``budget_status/sample-report.json``,
made by ``tests/budget_status/make_sample_report.py`` from a real deployment) shown as a table and
a PNG, with no server to ask."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from budget_status.report import EXIT_HARD_STOP, BudgetRow
from harness.provider_server import PROJECT_ROOT

TOUR = [
    "python -m budget_status --report budget_status/sample-report.json",
    "python -m budget_status --report budget_status/sample-report.json --png status.png",
]


def test_the_readme_shows_the_tour():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for command in TOUR:
        assert command in readme


def test_the_sample_report_is_shown_as_a_table_and_a_png_without_any_server(tmp_path):
    sample = PROJECT_ROOT / "budget_status" / "sample-report.json"
    (tmp_path / "budget_status").mkdir()
    (tmp_path / "budget_status" / "sample-report.json").write_bytes(sample.read_bytes())
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(PROJECT_ROOT),
        "COLUMNS": "80",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # nothing answers there: nothing is asked
    }
    rows = [BudgetRow.from_dict(item) for item in json.loads(sample.read_text())["budgets"]]
    assert {row.source for row in rows} == {"mlflow-gateway", "databricks-budget", "databricks-ai-gateway"}
    for command in TOUR:
        result = subprocess.run(
            [sys.executable, *command.split()[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == EXIT_HARD_STOP, result.stderr  # the sample's hard stop rejects
        for row in rows:
            for figure in filter(None, [row.cap_usd, row.spend_usd]):
                assert f"${figure:,.2f}" in result.stdout
    assert (tmp_path / "status.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
