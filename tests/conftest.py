import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The test harness (harness/) is a package of its own, shared with bench/; its fixtures are
# registered here under their usual names.
pytest_plugins = [
    "harness.provider_server",
    "harness.databricks_emulator",
    "harness.mlflow_server",
    "harness.redis_server",
    "harness.deployment",
    "harness.policy_pack",
    "harness.slack_fake",
    "harness.pagerduty_fake",
    "harness.alertmanager",
    "harness.alert_relay",
    "harness.pulumi_cli",
]


def pytest_sessionfinish(session, exitstatus):
    # Futures of failed Pulumi runs under mocks still hold their errors; if a GC pass finalizes
    # them inside the ast.parse of a plugin's late import (hypothesis at the terminal summary),
    # their "exception was never retrieved" logging trips CPython 3.11's "AST constructor
    # recursion depth mismatch" and pytest crashes after the tests passed. Finalize them first.
    import gc

    gc.collect()
