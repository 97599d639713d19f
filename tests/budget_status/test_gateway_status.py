"""``python -m budget_status`` against a real ``mlflow server`` after real gateway traffic.

The stack program is deployed through the test engine (real provider server), its outputs are
written as ``pulumi stack output --json`` prints them, traffic goes through the real AI Gateway
until the hard stop answers 429, and the status is compared with what MLflow's windows API says.
Each fake call costs $0.21 (gpt-4o-mini's bundled prices), so a $0.50 cap trips at the third.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC

import pytest
import requests

from budget_status import collect
from budget_status.report import EXIT_ABOVE, EXIT_HARD_STOP, EXIT_OK, figure, rows_from_json, to_json
from budget_status.sources import WINDOWS_PATH
from budget_status.stack import StackConfigFile
from harness.engine import LocalEngine
from harness.mlflow_server import create_gateway_endpoint, provider_env
from harness.provider_server import PROJECT_ROOT

HOOK = "http://127.0.0.1:9/budget-alerts"  # refused at once: alerts here go nowhere


@pytest.fixture(scope="module")
def openai_upstream():
    from harness.openai_fake import OpenAIFake

    fake = OpenAIFake().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def deployed(mlflow_server, openai_upstream, tmp_path_factory):
    """A stack with a team (50 % alert, hard stop at $0.50) and a budget of no team, after
    traffic through the gateway until the hard stop rejects."""
    from harness.provider_server import ProviderServer

    team_endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, openai_upstream.url)
    other_endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, openai_upstream.url)
    team = f"status-{uuid.uuid4().hex[:6]}"
    config = {
        "mlflow:trackingUri": mlflow_server.tracking_uri,
        "ml-budgets:teams": [
            {
                "name": team,
                "gateway": {
                    "limitUsd": 0.5,
                    "window": "daily",
                    "scope": "ENDPOINT",
                    "target": team_endpoint.name,
                    "alertThresholds": [50],
                    "hardStop": True,
                    "webhook": {"url": HOOK},
                },
            }
        ],
        "ml-budgets:gatewayBudgets": [
            {
                "name": f"{team}-other",
                "limitUsd": 100,
                "window": {"unit": "HOURS", "value": 6},
                "scope": "ENDPOINT",
                "target": other_endpoint.name,
                "alertThresholds": [90],
                "hardStop": False,
                "webhook": {"url": HOOK},
            }
        ],
    }
    provider = ProviderServer(config={"mlflow:trackingUri": mlflow_server.tracking_uri}, env=provider_env())
    engine = LocalEngine(provider)
    outputs = engine.up(config).exports

    statuses = [invoke(mlflow_server, team_endpoint.name) for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert invoke(mlflow_server, other_endpoint.name) == 200

    directory = tmp_path_factory.mktemp("status")
    outputs_file = directory / "outputs.json"
    outputs_file.write_text(json.dumps(outputs, indent=2))
    stack_file = directory / "Pulumi.ci.yaml"
    stack_file.write_text(
        f"config:\n  mlflow:trackingUri: {mlflow_server.tracking_uri}\n  mlflow:trackingToken:\n    secure: v1:AAAA\n"
    )
    yield {
        "team": team,
        "outputs": outputs,
        "outputs_file": outputs_file,
        "stack_file": stack_file,
        "directory": directory,
    }
    engine.destroy()
    provider.close()


def invoke(mlflow_server, endpoint_name: str) -> int:
    return requests.post(
        f"{mlflow_server.url}/gateway/{endpoint_name}/mlflow/invocations",
        json={"messages": [{"role": "user", "content": "How much is left?"}]},
        timeout=30,
    ).status_code


def run_status(*args: str, stdin: str = None, env: dict = None) -> subprocess.CompletedProcess:
    clean_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "budget_status", *args],
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean_env, **(env or {}), "COLUMNS": "200"},
        timeout=300,
    )


def windows_read_directly(mlflow_server) -> dict[str, dict]:
    body = requests.get(f"{mlflow_server.url}{WINDOWS_PATH}", timeout=30).json()
    return {w["budget_policy_id"]: w for w in body["windows"]}


def test_status_shows_the_spend_mlflow_holds_and_exits_2_while_the_hard_stop_rejects(deployed, mlflow_server):
    result = run_status("--outputs", str(deployed["outputs_file"]), "--config", str(deployed["stack_file"]), "--json")
    assert result.returncode == EXIT_HARD_STOP, result.stderr
    report = json.loads(result.stdout)
    assert report["hard_stop_active"] is True
    windows = windows_read_directly(mlflow_server)

    rows = {(row["team"], row["tier"]): row for row in report["budgets"]}
    team = deployed["team"]
    assert set(rows) == {
        (team, "alert 50%"),
        (team, "hard stop alert"),
        (team, "hard stop"),
        ("(no team)", "alert 90%"),
    }
    for row in report["budgets"]:
        window = windows[row["id"]]
        assert row["spend_usd"] == pytest.approx(float(window["current_spend"]))
        assert row["percent"] == pytest.approx(float(window["current_spend"]) / row["cap_usd"] * 100, abs=0.01)
        assert row["resets_at"].startswith(_iso_minutes(int(window["window_end_ms"])))
        assert not row["unavailable"], row["note"]

    hard_stop = rows[(team, "hard stop")]
    assert (hard_stop["action"], hard_stop["cap_usd"], hard_stop["window"]) == ("REJECT", 0.5, "1 day")
    assert hard_stop["spend_usd"] == pytest.approx(0.63)
    assert hard_stop["percent"] == pytest.approx(126.0)
    assert hard_stop["rejecting"] is True
    alert = rows[(team, "alert 50%")]
    assert (alert["cap_usd"], alert["percent"], alert["rejecting"]) == (0.25, pytest.approx(252.0), False)
    other = rows[("(no team)", "alert 90%")]
    assert (other["cap_usd"], other["spend_usd"], other["window"]) == (90.0, pytest.approx(0.21), "6 hours")
    assert other["percent"] == pytest.approx(0.23, abs=0.01)
    # Two calls for every budget of the server: the list and the windows.
    assert report["api_calls"] == {mlflow_server.tracking_uri: 2}


def _iso_minutes(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def test_outputs_piped_on_stdin_and_the_table_groups_by_team(deployed, mlflow_server):
    result = run_status(stdin=json.dumps(deployed["outputs"]), env={"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri})
    assert result.returncode == EXIT_HARD_STOP, result.stderr
    lines = result.stdout.splitlines()
    team_line = lines.index(f"{deployed['team']} · {deployed['team']}-gateway")  # the team heads its rows
    team_rows = lines[team_line + 1 : team_line + 4]
    assert [row.split()[0] for row in team_rows] == ["alert", "hard", "hard"]
    assert "REJECTING" in team_rows[2] and "$0.63" in team_rows[2] and "126.0%" in team_rows[2]
    assert f"(no team) · {deployed['team']}-other" in lines


def test_json_round_trips(deployed, mlflow_server):
    rows, calls = collect(deployed["outputs"], StackConfigFile({"mlflow:trackingUri": mlflow_server.tracking_uri}))
    assert rows_from_json(to_json(rows, calls)) == rows
    cli = run_status(
        "--outputs", str(deployed["outputs_file"]), "--json", env={"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri}
    )
    assert rows_from_json(cli.stdout) == rows


def test_png_has_one_bar_per_budget(deployed, mlflow_server):
    png = deployed["directory"] / "status.png"
    result = run_status(
        "--outputs",
        str(deployed["outputs_file"]),
        "--png",
        str(png),
        env={"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri},
    )
    assert result.returncode == EXIT_HARD_STOP
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from matplotlib.colors import to_rgba

    rows, _ = collect(deployed["outputs"], StackConfigFile({"mlflow:trackingUri": mlflow_server.tracking_uri}))
    axes = figure(rows).axes[0]
    bars = axes.containers[0]
    assert len(bars) == len(rows) == 4
    assert [bar.get_width() for bar in bars] == [row.percent for row in rows]
    labels = {tick: label.get_text() for tick, label in zip(axes.get_yticks(), axes.get_yticklabels(), strict=True)}
    for i, (bar, row) in enumerate(zip(bars, rows, strict=True)):
        position = bar.get_y() + bar.get_height() / 2
        assert position == len(rows) - 1 - i  # the first budget on top
        assert labels[position] == f"{row.team} · {row.budget} · {row.tier}"
    red = to_rgba("#d62728")
    assert [bar.get_facecolor() == red for bar in bars] == [row.rejecting for row in rows]  # red: rejecting now


def test_fail_above_exits_1_for_cron(deployed, mlflow_server):
    team_alert_only = {
        "teams": {
            deployed["team"]: {
                "gateway_alert_policy_ids": deployed["outputs"]["teams"][deployed["team"]]["gateway_alert_policy_ids"]
            }
        }
    }
    env = {"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri}
    assert run_status("--fail-above", "80", stdin=json.dumps(team_alert_only), env=env).returncode == EXIT_ABOVE
    assert run_status("--fail-above", "300", stdin=json.dumps(team_alert_only), env=env).returncode == EXIT_OK
    assert run_status(stdin=json.dumps(team_alert_only), env=env).returncode == EXIT_OK


def test_a_budget_gone_from_the_server_is_reported_not_guessed(mlflow_server):
    outputs = {"teams": {"ghost": {"gateway_alert_policy_ids": {"50pct": "bp-" + "0" * 32}}}}
    result = run_status("--json", stdin=json.dumps(outputs), env={"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri})
    assert result.returncode == 3
    row = json.loads(result.stdout)["budgets"][0]
    assert row["unavailable"] is True and "pulumi refresh" in row["note"]


def test_bad_usage_is_not_mistaken_for_a_hard_stop(tmp_path):
    (tmp_path / "outputs.json").write_text("not json")
    result = run_status("--outputs", str(tmp_path / "outputs.json"))
    assert result.returncode == 64
    assert "pulumi stack output --json" in result.stderr
    assert run_status("--fail-above", "lots").returncode == 64
