"""GET /_emulator lists the control endpoints (the emulator's README points newcomers there)."""

from __future__ import annotations

import requests


def test_the_control_index_lists_every_control_endpoint(databricks_emulator):
    for path in ("/_emulator", "/_emulator/"):
        answer = requests.get(f"{databricks_emulator.url}{path}", timeout=10)
        assert answer.status_code == 200
        index = answer.json()
        assert index["account_id"] == databricks_emulator.account_id
        assert "GET /_emulator/health" in index["control_endpoints"]
        assert "DELETE /_emulator/faults/{fault_id}" in index["control_endpoints"]
        assert "POST /_emulator/policies/{policy_id}/grants" in index["control_endpoints"]
