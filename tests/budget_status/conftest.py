"""Fixtures of the budget_status tests."""

from __future__ import annotations

import pytest
import yaml

SECRET_TOKEN = "dapi-0123456789abcdef-hostile"


@pytest.fixture
def gateway_budget(databricks_emulator, tmp_path):
    """An AI Gateway budget with a blocking threshold in the emulated account, $30 of $100 spent,
    and the stack config that points at the account."""
    from providers.account_budget import _create_body

    props = {
        "display_name": "search AI Gateway",
        "resource_type": "AI_GATEWAY",
        "tags": {"team": ["search"]},
        "alerts": [{"threshold_usd": 100, "notify": [], "block_usage": True}],
    }
    budget = databricks_emulator.account_client().budgets.create(budget=_create_body(props)).budget
    budget_id = budget.budget_configuration_id
    databricks_emulator.state.budgets.add_usage(budget_id, "30")
    config = databricks_emulator.config(token=SECRET_TOKEN)
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}))
    databricks_emulator.reset_requests()
    return budget_id
