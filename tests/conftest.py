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
    "harness.deployment",
    "harness.policy_pack",
    "harness.slack_fake",
    "harness.pagerduty_fake",
    "harness.alertmanager",
    "harness.alert_relay",
]
