"""`pulumi preview --policy-pack policies` through the real Pulumi CLI (Automation API).

Runs only where the ``pulumi`` CLI is installed: it cannot be downloaded on our development and CI
machines, so there this test is skipped (test_policy_pack.py drives the same pack over gRPC).
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness.policy_pack import PACK_DIR
from harness.project_copy import copy_project

pytestmark = pytest.mark.skipif(
    shutil.which("pulumi") is None,
    reason="the pulumi CLI is not installed on this machine (it cannot be downloaded here); "
    "install it from https://www.pulumi.com/docs/install/ to run this test",
)

TEAMS = [
    {
        "name": "search",
        "serverless": {"customTags": {"cost-center": "4711"}, "users": ["groups/search-engineers"]},
        # GLOBAL: an ENDPOINT budget would need that endpoint in the tracking store at create.
        "gateway": {
            "limitUsd": 500,
            "alertThresholds": [80],
            "hardStop": True,
            "webhook": {"url": "https://hooks.slack.com/services/T0/B0/search"},
        },
    }
]


def test_preview_with_the_policy_pack_passes_a_compliant_stack_and_stops_a_violating_one(
    tmp_path, databricks_emulator, policy_pack_python, monkeypatch
):
    from pulumi import automation as auto

    work_dir = copy_project(tmp_path / "project")
    pack_dir = tmp_path / "policies"
    shutil.copytree(PACK_DIR, pack_dir, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    (pack_dir / "venv").symlink_to(policy_pack_python.parent.parent)  # the pack's virtualenv, built once
    policy_config = tmp_path / "policy-config.json"
    policy_config.write_text(json.dumps({"gateway-cap-ceilings": {"teamCeilingUsd": 1000}}))

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "ml-budgets-test")
    backend = tmp_path / "backend"
    backend.mkdir()
    stack = auto.create_or_select_stack(
        stack_name="policy",
        work_dir=str(work_dir),
        opts=auto.LocalWorkspaceOptions(
            env_vars={"PULUMI_BACKEND_URL": backend.as_uri(), "PULUMI_CONFIG_PASSPHRASE": "ml-budgets-test"},
            secrets_provider="passphrase",
        ),
    )
    stack.set_config("databricks:host", auto.ConfigValue(databricks_emulator.url))
    stack.set_config("databricks:accountId", auto.ConfigValue(databricks_emulator.account_id))
    stack.set_config("mlflow:trackingUri", auto.ConfigValue(f"sqlite:///{tmp_path / 'mlflow.db'}"))

    def preview(teams):
        stack.set_config("ml-budgets:teams", auto.ConfigValue(json.dumps(teams)))
        return stack.preview(policy_packs=[str(pack_dir)], policy_pack_configs=[str(policy_config)])

    assert preview(TEAMS).change_summary.get("create", 0) > 0

    over_ceiling = json.loads(json.dumps(TEAMS))
    over_ceiling[0]["gateway"]["limitUsd"] = 5000
    with pytest.raises(auto.CommandError) as failed:
        preview(over_ceiling)
    assert "gateway-cap-ceilings" in str(failed.value)
    assert "team 'search' caps $5,000.00 per 30 days" in str(failed.value)
    stack.workspace.remove_stack("policy")
