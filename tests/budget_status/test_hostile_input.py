"""``python -m budget_status`` on input a careless user or a hostile server gives it (issue 23).

Wrong shapes, undecodable files and unwritable ``--png`` paths end in exit 64 and one line, never
a traceback, and before any API call; outputs naming no usable budget are an error, not an empty
all-clear; credentials a server quotes back are masked in ``--json`` and in the table.  The
Databricks side runs against the account emulator, as the providers' tests do.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from budget_status.__main__ import EXIT_USAGE
from budget_status.report import EXIT_OK, EXIT_UNAVAILABLE
from harness.local_http import LocalHttpServer
from harness.provider_server import PROJECT_ROOT
from tests.budget_status.conftest import SECRET_TOKEN


def run_status(
    *args: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    return subprocess.run(
        [sys.executable, "-m", "budget_status", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**clean, "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(cwd), "COLUMNS": "120", **(env or {})},
        timeout=120,
    )


def status_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``main()`` in this process (an uncaught exception fails the test as a traceback would)."""
    from budget_status.__main__ import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    stderr = result.stderr.decode()
    assert result.returncode == EXIT_USAGE, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for word in words:
        assert word in stderr, stderr


def outputs_for(budget_id: str) -> dict:
    return {"teams": {"search": {"databricks_gateway_budget_id": budget_id}}}


# --- outputs of the wrong shape -------------------------------------------------------------------

WRONG_SHAPES = {
    "team as a string": ({"teams": {"search": "bp-" + "0" * 32}}, "teams.search"),
    "teams as a list": ({"teams": [{"name": "search"}]}, "teams"),
    "id as a list": ({"teams": {"search": {"databricks_gateway_budget_id": ["x"]}}}, "databricks_gateway_budget_id"),
    "id as a number": ({"teams": {"search": {"budget_id": 1234}}}, "teams.search.budget_id"),
    "id as an object": ({"teams": {"s": {"gateway_hard_stop_policy_id": {"id": "bp-1"}}}}, "gateway_hard_stop"),
    "alert ids as a list": ({"teams": {"s": {"gateway_alert_policy_ids": ["bp-1"]}}}, "gateway_alert_policy_ids"),
    "alert id nested": (
        {"teams": {"s": {"gateway_alert_policy_ids": {"50pct": {"a": {"b": {"c": "bp-1"}}}}}}},
        "gateway_alert_policy_ids.50pct",
    ),
    "standalone budget as a number": ({"gateway_budgets": {"global-cap": 5}}, "gateway_budgets.global-cap"),
    "id as an empty string": ({"teams": {"search": {"budget_id": ""}}}, "teams.search.budget_id"),
    "id with a control character": ({"teams": {"search": {"budget_id": "a\u001b[2Jb"}}}, "not an id"),
}


@pytest.mark.parametrize("outputs, where", WRONG_SHAPES.values(), ids=WRONG_SHAPES)
def test_outputs_of_the_wrong_shape_exit_64_naming_where(
    outputs, where, gateway_budget, databricks_emulator, tmp_path, capsys
):
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    config = str(tmp_path / "Pulumi.dev.yaml")
    code, out, err = status_in_process(capsys, "--outputs", str(tmp_path / "outputs.json"), "--config", config)
    assert (code, out) == (EXIT_USAGE, "")
    assert len(err.strip().splitlines()) == 1 and where in err, err
    assert databricks_emulator.count() == 0


def test_deep_nesting_exits_64(tmp_path):
    depth = 100_000
    (tmp_path / "outputs.json").write_text('{"teams": ' + "[" * depth + "]" * depth + "}")
    assert_one_line_error(run_status("--outputs", "outputs.json", "--json", cwd=tmp_path), "nested too deeply")
    deep_team = '{"teams": {"search": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}}"
    assert_one_line_error(run_status("--json", cwd=tmp_path, stdin=deep_team.encode()))


# --- no usable id: an error, not an empty all-clear --------------------------------------------------

NOTHING_USABLE = {
    "a team with a policy but no budget": {"teams": {"recsys": {"policy_id": "3f0b9c2e-0000-4000-8000-000000000000"}}},
    "ids hidden as secrets": {"teams": {"s": {"budget_id": "[secret]", "gateway_hard_stop_policy_id": "[secret]"}}},
    "empty teams and budgets": {"teams": {"search": {}}, "gateway_budgets": {"global-cap": {}}},
    "null ids": {"teams": {"search": {"databricks_gateway_budget_id": None}}},
}


@pytest.mark.parametrize("outputs", NOTHING_USABLE.values(), ids=NOTHING_USABLE)
def test_outputs_naming_no_usable_budget_are_an_error_not_an_all_clear(outputs, tmp_path, capsys):
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    for mode in ("--json", "--fail-above=50"):
        code, out, err = status_in_process(capsys, "--outputs", str(tmp_path / "outputs.json"), mode)
        assert (code, out) == (EXIT_USAGE, "")
        assert len(err.strip().splitlines()) == 1 and "no budget id" in err, err


def test_no_usable_budget_from_the_command_line(tmp_path):
    outputs = {"teams": {"search": {"budget_id": "[secret]"}}}
    assert_one_line_error(run_status("--json", cwd=tmp_path, stdin=json.dumps(outputs).encode()), "no budget id")


# --- encodings ----------------------------------------------------------------------------------------


def test_utf16_with_a_bom_as_powershell_writes_it_is_read_like_utf8(gateway_budget, tmp_path):
    text = json.dumps(outputs_for(gateway_budget), indent=2)
    (tmp_path / "outputs-utf8.json").write_text(text)
    # PowerShell 5's `pulumi stack output --json > outputs.json`: UTF-16 LE, a BOM, CRLF lines.
    (tmp_path / "outputs-ps.json").write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert (tmp_path / "outputs-ps.json").read_bytes()[:2] == b"\xff\xfe"

    reference = run_status("--outputs", "outputs-utf8.json", "--stack", "dev", "--json", cwd=tmp_path)
    from_file = run_status("--outputs", "outputs-ps.json", "--stack", "dev", "--json", cwd=tmp_path)
    from_stdin = run_status("--stack", "dev", "--json", cwd=tmp_path, stdin=(tmp_path / "outputs-ps.json").read_bytes())
    assert reference.returncode == from_file.returncode == from_stdin.returncode == EXIT_OK, from_file.stderr
    rows = [json.loads(result.stdout)["budgets"] for result in (reference, from_file, from_stdin)]
    assert rows[0] == rows[1] == rows[2]
    assert (rows[0][0]["id"], rows[0][0]["cap_usd"], rows[0][0]["percent"]) == (gateway_budget, 100.0, 30.0)


def test_utf8_with_a_bom_and_utf16_without_one_are_read_too(gateway_budget, tmp_path):
    text = json.dumps(outputs_for(gateway_budget))
    for encoding in ("utf-8-sig", "utf-16-le", "utf-16-be", "utf-32"):
        (tmp_path / "outputs.json").write_bytes(text.encode(encoding))
        result = run_status("--outputs", "outputs.json", "--stack", "dev", "--json", cwd=tmp_path)
        assert result.returncode == EXIT_OK, (encoding, result.stderr)
        assert json.loads(result.stdout)["budgets"][0]["id"] == gateway_budget


def test_invalid_utf8_exits_64(databricks_emulator, gateway_budget, tmp_path):
    (tmp_path / "outputs.json").write_bytes(b'{"teams": {"search": {"budget_id": "\xff\xfe\xfd"}}}')
    result = run_status("--outputs", "outputs.json", "--stack", "dev", cwd=tmp_path)
    assert_one_line_error(result, "not valid UTF-8")
    (tmp_path / "outputs.json").write_bytes(b"\xff\xfe" + "{}".encode("utf-16-le")[:-1])  # a cut UTF-16 file
    assert_one_line_error(run_status("--outputs", "outputs.json", cwd=tmp_path), "UTF-16")
    assert databricks_emulator.count() == 0


def test_a_stack_config_that_is_not_yaml_exits_64_without_quoting_its_secret(tmp_path):
    (tmp_path / "outputs.json").write_text(json.dumps({"teams": {"search": {"budget_id": "b-1"}}}))
    (tmp_path / "Pulumi.dev.yaml").write_text(f"config:\n  databricks:token: {SECRET_TOKEN}\n   bad: [\n")
    result = run_status("--outputs", "outputs.json", "--stack", "dev", cwd=tmp_path)
    assert_one_line_error(result, "Pulumi.dev.yaml", "line")
    assert SECRET_TOKEN not in result.stderr.decode()
    (tmp_path / "Pulumi.dev.yaml").write_bytes(b"config:\n  databricks:host: \xff\n")
    assert_one_line_error(run_status("--outputs", "outputs.json", "--stack", "dev", cwd=tmp_path), "Pulumi.dev.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text("- just\n- a list\n")
    assert_one_line_error(run_status("--outputs", "outputs.json", "--stack", "dev", cwd=tmp_path), "config")


# --- --png where it cannot be written -----------------------------------------------------------------


@pytest.mark.parametrize("png", ["missing/status.png", "."], ids=["missing folder", "a folder"])
def test_png_that_cannot_be_written_exits_64_before_any_api_call(png, gateway_budget, databricks_emulator, tmp_path):
    (tmp_path / "outputs.json").write_text(json.dumps(outputs_for(gateway_budget)))
    result = run_status("--outputs", "outputs.json", "--stack", "dev", "--json", "--png", png, cwd=tmp_path)
    assert_one_line_error(result, "--png")
    assert databricks_emulator.count() == 0


# --- credentials a server quotes back ------------------------------------------------------------------


def test_a_databricks_token_quoted_back_is_masked_in_json_and_table(gateway_budget, databricks_emulator, tmp_path):
    (tmp_path / "outputs.json").write_text(json.dumps(outputs_for(gateway_budget)))
    echo = f"proxy refused the request (Authorization: Bearer {SECRET_TOKEN}; token={SECRET_TOKEN})"
    databricks_emulator.faults.inject("error", "GET", "/budget-spend-statuses", status=400, message=echo, count=None)

    for args in (["--json"], []):
        result = run_status("--outputs", "outputs.json", "--stack", "dev", *args, cwd=tmp_path)
        assert result.returncode == EXIT_UNAVAILABLE, result.stderr
        shown = "".join(result.stdout.decode().split())  # the table wraps notes: compare without spaces
        assert "proxyrefusedtherequest" in shown  # the reason is kept ...
        assert SECRET_TOKEN not in shown and SECRET_TOKEN[:20] not in shown  # ... the token is not
        assert "***" in shown

    # The same token from the environment (the databricks-sdk's own variable).
    config = {k: v for k, v in databricks_emulator.config().items() if k != "databricks:token"}
    (tmp_path / "Pulumi.env.yaml").write_text(yaml.safe_dump({"config": config}))
    result = run_status(
        "--outputs", "outputs.json", "--stack", "env", "--json", cwd=tmp_path, env={"DATABRICKS_TOKEN": SECRET_TOKEN}
    )
    assert result.returncode == EXIT_UNAVAILABLE and SECRET_TOKEN not in result.stdout.decode()


class EchoingMlflow:
    """What a misconfigured proxy in front of MLflow may do: refuse every request, quoting the
    credentials it was sent (the header, and the Basic password decoded)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                header = self.headers.get("Authorization", "")
                decoded = ""
                if header.startswith("Basic "):
                    decoded = base64.b64decode(header[6:]).decode()
                body = json.dumps(
                    {"error_code": "UNAUTHENTICATED", "message": f"rejected {header!r} (user:password {decoded!r})"}
                ).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = LocalHttpServer(Handler)
        self.url = self.server.base_url


@pytest.fixture
def echoing_mlflow():
    proxy = EchoingMlflow()
    yield proxy
    proxy.server.stop()


MLFLOW_CREDENTIALS = {
    "token from MLFLOW_TRACKING_TOKEN": ({"MLFLOW_TRACKING_TOKEN": "mlflow-token-s3cr3t"}, {}, ["mlflow-token-s3cr3t"]),
    "token from stack config": ({}, {"mlflow:trackingToken": "config-token-s3cr3t"}, ["config-token-s3cr3t"]),
    "basic auth from the environment": (
        {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pa55w0rd-s3cr3t"},
        {},
        ["pa55w0rd-s3cr3t", base64.b64encode(b"alice:pa55w0rd-s3cr3t").decode()],
    ),
    "basic auth in the URI": (
        {},
        {"uri_userinfo": "alice:uri-pa55-s3cr3t"},
        ["uri-pa55-s3cr3t", base64.b64encode(b"alice:uri-pa55-s3cr3t").decode()],
    ),
}


@pytest.mark.parametrize("env, config, secrets", MLFLOW_CREDENTIALS.values(), ids=MLFLOW_CREDENTIALS)
def test_mlflow_credentials_quoted_back_are_masked_in_json_and_table(env, config, secrets, echoing_mlflow, tmp_path):
    config = dict(config)
    uri = echoing_mlflow.url
    if userinfo := config.pop("uri_userinfo", None):
        uri = uri.replace("http://", f"http://{userinfo}@")
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"mlflow:trackingUri": uri, **config}}))
    outputs = {"teams": {"search": {"gateway_hard_stop_policy_id": "bp-" + "1" * 32}}}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    for args in (["--json"], []):
        result = run_status("--outputs", "outputs.json", "--stack", "dev", *args, cwd=tmp_path, env=env)
        shown = "".join((result.stdout + result.stderr).decode().split())  # the table wraps notes
        assert result.returncode == EXIT_UNAVAILABLE, shown
        assert "rejected" in shown and "***" in shown
        for secret in secrets:
            assert secret not in shown


BAD_REPORTS = {
    "not JSON": "budgets: []",
    "no budgets": json.dumps({"rows": []}),
    "a row of the wrong type": json.dumps({"budgets": [{"team": "search", "percent": "lots"}]}),
    "rows as a string": json.dumps({"budgets": "all fine"}),
}


@pytest.mark.parametrize("report", BAD_REPORTS.values(), ids=BAD_REPORTS)
def test_a_report_that_is_not_a_saved_json_report_exits_64(report, tmp_path, capsys):
    (tmp_path / "report.json").write_text(report)
    code, out, err = status_in_process(capsys, "--report", str(tmp_path / "report.json"))
    assert (code, out) == (EXIT_USAGE, "")
    assert "not a report saved with" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "uri", ["http://[::1/x", "http://127.0.0.1:notaport", "http://u:hunter#2@127.0.0.1:9"], ids=["ipv6", "port", "#"]
)
def test_a_broken_tracking_uri_is_reported_on_its_rows_not_a_traceback(uri, tmp_path):
    outputs = {"teams": {"search": {"gateway_hard_stop_policy_id": "bp-" + "1" * 32}}}
    result = run_status("--json", cwd=tmp_path, stdin=json.dumps(outputs).encode(), env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    (row,) = json.loads(result.stdout)["budgets"]
    assert row["unavailable"] and "tracking URI" in row["note"]
    assert b"hunter" not in result.stdout


@pytest.mark.parametrize("threshold", ["nan", "inf", "-5", "lots"])
def test_a_fail_above_threshold_that_cannot_trip_is_refused(threshold, tmp_path, capsys):
    (tmp_path / "outputs.json").write_text(json.dumps({"teams": {"search": {"budget_id": "b-1"}}}))
    with pytest.raises(SystemExit) as exit_:
        status_in_process(capsys, "--outputs", str(tmp_path / "outputs.json"), f"--fail-above={threshold}")
    assert exit_.value.code == EXIT_USAGE
    assert "--fail-above" in capsys.readouterr().err


def test_a_databricks_host_where_nothing_listens_is_reported_at_once(gateway_budget, databricks_emulator, tmp_path):
    import socket

    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = {**databricks_emulator.config(), "databricks:host": f"http://127.0.0.1:{port}"}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}))
    (tmp_path / "outputs.json").write_text(json.dumps(outputs_for(gateway_budget)))
    result = run_status("--outputs", "outputs.json", "--stack", "dev", "--json", cwd=tmp_path)
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    (row,) = json.loads(result.stdout)["budgets"]
    assert row["unavailable"] and "connection refused" in row["note"]
