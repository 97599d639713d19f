"""Each component's Args checks what it will declare, at config paths under the path it is given,
without stack_config.py: a program that builds Args in code gets the same refusals."""

from __future__ import annotations

import pytest

import stack_config_schema as config_schema
from components import DatabricksGatewayBudgetArgs, EvaluationBudgetArgs, GatewayBudgetArgs, ServerlessBudgetArgs
from providers.core import Failures


def failures_of(args: object, path: str = "here") -> dict[str, str]:
    failures = Failures()
    args.validate(path, failures)  # type: ignore[attr-defined]
    return {f.property: f.reason for f in failures.items}


def test_evaluation_args_refuse_an_unknown_mode_and_a_negative_price():
    found = failures_of(
        EvaluationBudgetArgs(experiments=["e"], max_tokens=10, on_exceed="stop", price_per_1k_tokens=-1)
    )
    assert found["here.onExceed"] == "must be 'raise' or 'warn', got 'stop'"
    assert "zero or more" in found["here.pricePer1kTokens"]
    assert failures_of(EvaluationBudgetArgs(experiments=["e"], max_tokens=10, price_per_1k_tokens=0.5)) == {}


def test_gateway_args_refuse_a_budget_that_declares_nothing_and_normalize_their_window():
    assert failures_of(GatewayBudgetArgs(limit_usd=10, alert_thresholds=[], hard_stop=False)) == {
        "here": "declares nothing: set alertThresholds, hardStop: true, or both"
    }
    args = GatewayBudgetArgs(limit_usd=10, window={"unit": "FORTNIGHTS", "value": 1})
    assert "here.window" in failures_of(args)


def test_serverless_args_run_the_account_budgets_check_at_their_config_paths():
    args = ServerlessBudgetArgs(policy_name="search", monthly_limit_usd=100, notify=["not-an-address"])
    assert set(failures_of(args, "t.serverless")) == {"t.serverless.notify"}
    assert failures_of(ServerlessBudgetArgs(policy_name="search", monthly_limit_usd=100, alert_thresholds=[])) == {
        "here.alertThresholds": "is empty: a dollar limit needs at least one alert threshold"
    }


def test_databricks_gateway_args_say_overrides_need_a_per_user_limit():
    found = failures_of(DatabricksGatewayBudgetArgs(monthly_limit_usd=100, overrides={"123": 5.0}, display_name="x"))
    assert found["here.overrides"].startswith("needs `perUserLimitUsd`")


def test_a_config_path_names_only_a_key_its_section_declares():
    assert config_schema.key_path(config_schema.GATEWAY, "p", "limitUsd") == "p.limitUsd"
    with pytest.raises(KeyError):
        config_schema.key_path(config_schema.GATEWAY, "p", "limit_usd")
