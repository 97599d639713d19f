"""budget_status imports only the databricks-sdk modules it uses (its client core and billing
service), and the SDK stays whole for anything else in the process (issue 25)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness.provider_server import PROJECT_ROOT

PROBE = """
import contextlib, json, runpy, sys
sys.argv = ["budget_status", "--outputs", "outputs.json", "--stack", "dev", "--json"]
with contextlib.redirect_stdout(open("report.json", "w")):
    try:
        runpy.run_module("budget_status", run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
loaded = sorted(name for name in sys.modules if name.startswith("databricks.sdk"))
from databricks.sdk import AccountClient  # the package completes itself on first use
import databricks.sdk, databricks.sdk.core
print(json.dumps({
    "code": code,
    "loaded": loaded,
    "account_client": AccountClient.__name__,
    "same_core": databricks.sdk.core is sys.modules["databricks.sdk.core"],
    "same_api_client": databricks.sdk.client is sys.modules["databricks.sdk.core"],  # __init__'s own alias
    "services_after": len([n for n in sys.modules if n.startswith("databricks.sdk.service.")]),
}))
"""


def test_the_status_loads_the_sdk_core_and_billing_only_and_the_sdk_stays_whole(gateway_budget, tmp_path):
    (tmp_path / "outputs.json").write_text(
        json.dumps({"teams": {"search": {"databricks_gateway_budget_id": gateway_budget}}})
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["code"] == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["budgets"][0]["percent"] == 30.0  # the status read the account ...
    services = [name for name in probe["loaded"] if name.startswith("databricks.sdk.service.")]
    assert "databricks.sdk.service.billing" in services  # ... with the billing service
    assert "databricks.sdk.service.catalog" not in services and len(services) <= 5  # not the ~60 others
    assert probe["account_client"] == "AccountClient" and probe["same_core"] and probe["same_api_client"]
    assert probe["services_after"] > 40  # completed on first use: the whole SDK, one copy of its core
