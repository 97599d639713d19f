"""preview → up → refresh → destroy of the local stack through the real Pulumi CLI (Automation API).

Runs only where the ``pulumi`` CLI is installed: it cannot be downloaded on our development and
CI machines, so there this test is skipped (the same lifecycle runs without the CLI in
``test_stack_lifecycle.py``).
"""

from __future__ import annotations

import shutil

import pytest

from harness.project_copy import copy_project

pytestmark = pytest.mark.skipif(
    shutil.which("pulumi") is None,
    reason="the pulumi CLI is not installed on this machine (it cannot be downloaded here); "
    "install it from https://www.pulumi.com/docs/install/ to run this test",
)


def test_local_stack_preview_up_refresh_destroy(tmp_path, databricks_emulator, monkeypatch):
    from pulumi import automation as auto

    work_dir = copy_project(tmp_path / "project", extra_files=("Pulumi.local.yaml",))

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "ml-budgets-test")
    backend = tmp_path / "backend"
    backend.mkdir()
    stack = auto.create_or_select_stack(
        stack_name="local",
        work_dir=str(work_dir),
        opts=auto.LocalWorkspaceOptions(
            env_vars={
                "PULUMI_BACKEND_URL": backend.as_uri(),
                "PULUMI_CONFIG_PASSPHRASE": "ml-budgets-test",
                # The local stack's webhook receiver is on 127.0.0.1 (see Pulumi.local.yaml).
                "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            },
            secrets_provider="passphrase",
        ),
    )
    stack.set_config("databricks:host", auto.ConfigValue(databricks_emulator.url))
    stack.set_config("databricks:accountId", auto.ConfigValue(databricks_emulator.account_id))
    stack.set_config("mlflow:trackingUri", auto.ConfigValue(f"sqlite:///{tmp_path / 'mlflow.db'}"))

    preview = stack.preview()
    assert preview.change_summary.get("create", 0) > 0
    assert databricks_emulator.count("POST", "/budget-policies") == 0

    up = stack.up()
    assert up.summary.result == "succeeded"
    assert up.outputs["teams"].value["search"]["policy_id"]

    refresh = stack.refresh()
    assert refresh.summary.result == "succeeded"
    assert stack.preview().change_summary.get("update", 0) == 0

    stack.destroy()
    assert [p for p in databricks_emulator.account_client().budget_policy.list()] == []
    stack.workspace.remove_stack("local")
