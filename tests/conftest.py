import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.fixtures.provider_server",
    "tests.fixtures.databricks_emulator",
    "tests.fixtures.mlflow_server",
    "tests.fixtures.policy_pack",
    "tests.fixtures.slack_fake",
    "tests.fixtures.pagerduty_fake",
    "tests.fixtures.alertmanager",
    "tests.fixtures.alert_relay",
]
