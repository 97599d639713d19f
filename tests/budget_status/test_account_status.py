"""``python -m budget_status`` for Databricks account budgets, against the account emulator.

The stack program deploys a team with a serverless dollar budget (over all usage: no live-spend
API exists for it) and an AI Gateway budget (live spend statuses); usage is fed through the
emulator's control endpoint and the status is compared with the SDK's own spend status read.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
import yaml

from budget_status.report import EXIT_HARD_STOP, EXIT_OK, NO_LIVE_SPEND_API
from harness.engine import LocalEngine
from harness.provider_server import PROJECT_ROOT

TEAMS = [
    {
        "name": "search",
        "serverless": {
            "customTags": {"cost-center": "4711"},
            "monthlyLimitUsd": 1000,
            "alertThresholds": [50, 100],
            "notify": ["search-lead@example.com"],
        },
        "databricksGateway": {
            "monthlyLimitUsd": 400,
            "alertThresholds": [75],
            "notify": ["search-lead@example.com"],
            "perUserLimitUsd": 25,
        },
    }
]


@pytest.fixture
def deployed(databricks_emulator, provider_server_factory, tmp_path):
    engine = LocalEngine(provider_server_factory(config=databricks_emulator.config()))
    outputs = engine.up({**databricks_emulator.config(), "ml-budgets:teams": TEAMS}).exports
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": databricks_emulator.config()}))
    yield outputs["teams"]["search"], tmp_path
    engine.destroy()


def add_usage(emulator, budget_id: str, usd: str) -> None:
    response = requests.post(f"{emulator.url}/_emulator/budgets/{budget_id}/usage", json={"usd": usd}, timeout=10)
    assert response.status_code == 200, response.text


def status(directory) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "budget_status",
            "--outputs",
            str(directory / "outputs.json"),
            "--stack",
            "dev",
            "--json",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(directory)},
    )


def test_account_budgets_live_spend_per_team_and_the_block(deployed, databricks_emulator):
    team, directory = deployed
    gateway_id, account_id = team["databricks_gateway_budget_id"], team["budget_id"]
    add_usage(databricks_emulator, gateway_id, "10")
    databricks_emulator.reset_requests()

    result = status(directory)
    assert result.returncode == EXIT_OK, result.stderr + result.stdout
    rows = {row["tier"]: row for row in json.loads(result.stdout)["budgets"]}
    assert set(rows) == {"account budget", "AI Gateway budget", "per user (caller)"}
    # List calls only: one page of budgets, one of spend statuses, whatever the budget count.
    assert databricks_emulator.count("GET", "/budget-spend-statuses") == 1
    assert databricks_emulator.count("GET", "/budgets") == 1
    assert databricks_emulator.count("GET", f"/budgets/{gateway_id}") == 0

    direct = databricks_emulator.account_client().budgets.get_budget_spend_status(
        f"accounts/{databricks_emulator.account_id}/budget-spend-statuses/{gateway_id}"
    )
    by_scope = {s.scope_type.value.rsplit("_", 1)[-1]: s for s in direct.alert_spend_statuses}
    shared = rows["AI Gateway budget"]
    assert (shared["team"], shared["action"], shared["cap_usd"]) == ("search", "BLOCK_USAGE", 400.0)
    assert shared["percent"] == float(by_scope["SHARED"].percent_consumed) == 2.5
    assert shared["spend_usd"] is None  # Databricks withholds shared dollars
    per_user = rows["per user (caller)"]
    assert per_user["spend_usd"] == float(by_scope["USER"].spend) == 10.0
    assert per_user["cap_usd"] == float(by_scope["USER"].threshold) == 25.0
    assert per_user["percent"] == 40.0 and not per_user["rejecting"]

    account = rows["account budget"]
    assert (account["cap_usd"], account["spend_usd"], account["unavailable"]) == (1000.0, None, False)
    assert account["note"] == NO_LIVE_SPEND_API
    assert account["id"] == account_id

    add_usage(databricks_emulator, gateway_id, "400")
    result = status(directory)
    assert result.returncode == EXIT_HARD_STOP
    report = json.loads(result.stdout)
    blocked = {row["tier"]: row for row in report["budgets"]}["AI Gateway budget"]
    assert blocked["percent"] >= 100 and blocked["rejecting"] is True
    assert report["hard_stop_active"] is True
