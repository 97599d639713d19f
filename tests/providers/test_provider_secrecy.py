"""No credential in the pickled ``__provider`` of any resource, produced where credentials are set.

The provider string is built once per provider class and process (providers/_base.py), so a
check inside the pytest process could read a string built before any credential was configured.
A fresh program process is started instead, with the Databricks token, OAuth client secret and
MLflow token set as stack config secrets and as environment variables, as on a deployer's machine.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import dill

from harness.provider_server import PROJECT_ROOT

CONFIG_TOKEN = "dapi-config-token-5f2e8a91c4"
ENV_TOKEN = "dapi-env-token-0b7d3c6e22"
CLIENT_SECRET = "dose-oauth-client-secret-93a1"
ENV_CLIENT_SECRET = "dose-env-client-secret-41f0"
MLFLOW_TOKEN = "mlflow-config-token-7c55"
WEBHOOK_SECRET = "whsec-webhook-secret-d81e"
SECRETS = (CONFIG_TOKEN, ENV_TOKEN, CLIENT_SECRET, ENV_CLIENT_SECRET, MLFLOW_TOKEN, WEBHOOK_SECRET)

PROGRAM = f"""
import json, sys
import pulumi
from providers import (BudgetAlertWebhook, BudgetPolicyGrants, ExperimentPolicyTag,
                       GatewayBudgetPolicy, ServerlessBudgetPolicy)
from harness.pulumi_program import run_program

config = {{
    "databricks:host": "https://accounts.cloud.databricks.com",
    "databricks:accountId": "00000000-0000-0000-0000-000000000000",
    "databricks:token": {CONFIG_TOKEN!r},
    "databricks:clientId": "0b4e1c2a-7d5f-4e8b-9a63-2f1d0c9e8b7a",
    "databricks:clientSecret": {CLIENT_SECRET!r},
    "mlflow:trackingUri": "https://mlflow.example.com",
    "mlflow:trackingToken": {MLFLOW_TOKEN!r},
}}

def program():
    policy = ServerlessBudgetPolicy("policy", policy_name="team", custom_tags={{"team": "a"}})
    BudgetPolicyGrants("grants", policy_id=policy.policy_id, users=["groups/a"])
    GatewayBudgetPolicy("budget", amount_usd=5, window="daily", action="ALERT")
    BudgetAlertWebhook("hook", webhook_name="w", url="https://h.example.com/x", secret={WEBHOOK_SECRET!r})
    ExperimentPolicyTag("tag", experiment="1", policy_id=policy.policy_id)

secret_keys = ["databricks:token", "databricks:clientSecret", "mlflow:trackingToken"]
mocks = run_program(program, config=config, secret_keys=secret_keys)
assert pulumi.Config("databricks").require_secret("token") is not None  # really configured
json.dump({{r.type: r.inputs["__provider"] for r in mocks.registrations if r.custom}}, sys.stdout)
"""


def provider_strings_built_with_credentials_set() -> dict[str, str]:
    env = {
        **os.environ,
        "DATABRICKS_TOKEN": ENV_TOKEN,
        "DATABRICKS_CLIENT_SECRET": ENV_CLIENT_SECRET,
        "MLFLOW_TRACKING_TOKEN": MLFLOW_TOKEN,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pickled_providers_hold_no_credentials_where_credentials_are_set():
    strings = provider_strings_built_with_credentials_set()
    assert len(strings) == 5, sorted(strings)
    for type_, provider_string in strings.items():
        raw = base64.b64decode(provider_string)
        for secret in SECRETS:
            assert secret.encode() not in raw, f"{type_}: {secret} is in the pickled provider"
        unpickled = repr(vars(dill.loads(raw))) + repr(
            {k: vars(v) for k, v in vars(dill.loads(raw)).items() if hasattr(v, "__dict__")}
        )
        for secret in SECRETS:
            assert secret not in unpickled, f"{type_}: {secret} is on the unpickled provider"
