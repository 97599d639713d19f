"""Make ``budget_status/sample-report.json``: a real ``--json`` report, to see the status without servers.

A stack like the local one (Pulumi.local.yaml: team ``search`` with a serverless budget, a
Databricks AI Gateway budget and an MLflow gateway budget with a hard stop; a standalone
``global-cap``) is deployed through the real provider server on a real ``mlflow server`` and the
account emulator; gateway traffic runs until search's hard stop rejects and the AI Gateway budget
gets $30 of usage; then ``budget_status`` reads it all and its ``--json`` report is saved.

    python -m tests.budget_status.make_sample_report
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import requests

from budget_status import collect
from budget_status.report import to_json
from budget_status.stack import StackConfigFile
from emulator.server import EmulatorServer
from harness.engine import LocalEngine
from harness.mlflow_server import MlflowServer, create_gateway_endpoint, provider_env
from harness.openai_fake import OpenAIFake
from harness.provider_server import PROJECT_ROOT, ProviderServer

SAMPLE = PROJECT_ROOT / "budget_status" / "sample-report.json"
HOOK = "http://127.0.0.1:9/budget-alerts"  # nothing listens: the sample needs no alert delivery


def stack_config(mlflow_uri: str, emulator: EmulatorServer, search_endpoint: str, shared_endpoint: str) -> dict:
    return {
        "mlflow:trackingUri": mlflow_uri,
        **emulator.config(),
        "ml-budgets:teams": [
            {
                "name": "search",
                "serverless": {
                    "monthlyLimitUsd": 1500,
                    "alertThresholds": [50, 80, 100],
                    "notify": ["lead@example.com"],
                },
                "databricksGateway": {
                    "monthlyLimitUsd": 800,
                    "alertThresholds": [75],
                    "notify": ["lead@example.com"],
                    "perUserLimitUsd": 40,
                },
                "gateway": {
                    "limitUsd": 1,
                    "window": "daily",
                    "scope": "ENDPOINT",
                    "target": search_endpoint,
                    "alertThresholds": [50, 80],
                    "hardStop": True,
                    "webhook": {"url": HOOK},
                },
            }
        ],
        "ml-budgets:gatewayBudgets": [
            {
                "name": "global-cap",
                "limitUsd": 100,
                "window": "monthly",
                "scope": "ENDPOINT",
                "target": shared_endpoint,
                "alertThresholds": [90],
                "hardStop": False,
                "webhook": {"url": HOOK},
            }
        ],
    }


def invoke(server: MlflowServer, endpoint: str) -> int:
    body = {"messages": [{"role": "user", "content": "How much is left?"}]}
    return requests.post(f"{server.url}/gateway/{endpoint}/mlflow/invocations", json=body, timeout=30).status_code


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sample-report-") as directory:
        server = MlflowServer(Path(directory)).start()
        emulator = EmulatorServer(host="127.0.0.1", port=0).start()
        upstream = OpenAIFake().start()
        try:
            search = create_gateway_endpoint(server.tracking_uri, upstream.url)
            shared = create_gateway_endpoint(server.tracking_uri, upstream.url)
            config = stack_config(server.tracking_uri, emulator, search.name, shared.name)
            provider = ProviderServer(config={k: v for k, v in config.items() if ":" in k}, env=provider_env())
            engine = LocalEngine(provider)
            outputs = engine.up(config).exports
            statuses = [invoke(server, search.name) for _ in range(6)]  # $0.21 a call against $1
            assert statuses[-1] == 429, statuses
            assert invoke(server, shared.name) == 200
            emulator.state.budgets.add_usage(outputs["teams"]["search"]["databricks_gateway_budget_id"], "30")
            rows, calls = collect(outputs, StackConfigFile(config))
            SAMPLE.write_text(to_json(rows, calls) + "\n")
            print(f"wrote {SAMPLE} ({len(rows)} budgets)")
            engine.destroy()
            provider.close()
        finally:
            upstream.stop()
            emulator.stop()
            server.stop()


if __name__ == "__main__":
    main()
