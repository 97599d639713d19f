"""Declaring MLflow resources costs the program no mlflow import (≈1.3 s, 170 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from harness.provider_server import PROJECT_ROOT

PROGRAM = textwrap.dedent(
    """
    import sys
    import providers.gateway_budget_policy, providers.budget_alert_webhook
    import providers.experiment_policy_tag
    from providers import BudgetAlertWebhook, ExperimentPolicyTag, GatewayBudgetPolicy
    from harness.pulumi_program import run_program

    def program():
        GatewayBudgetPolicy("cap", amount_usd=100, window="monthly", action="REJECT")
        BudgetAlertWebhook("hook", webhook_name="alerts", url="https://hooks.example.com/x",
                           secret="s3cret")
        ExperimentPolicyTag("tag", experiment="/Users/me@corp.com/evals", policy_id="p-1")

    mocks = run_program(program)
    assert len(mocks.registrations) == 3, mocks.registrations
    print(sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")))
    """
)


def test_declaring_resources_does_not_import_mlflow():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
