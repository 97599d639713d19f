"""stack-config.schema.json (generated from stack_config_schema.py) accepts the shipped stacks and
catches what the program refuses for an unknown key, so editors flag it before a preview."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from stack_config import StackConfigError, parse_stack_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "stack-config.schema.json").read_text())


def errors(stack: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(stack)]


@pytest.mark.parametrize("stack_file", ["Pulumi.local.yaml", "Pulumi.prod.yaml"])
def test_the_shipped_stacks_match_the_schema(stack_file):
    stack = yaml.safe_load((ROOT / stack_file).read_text())
    assert "ml-budgets:teams" in stack["config"]
    assert errors(stack) == []


def _parse(config: dict) -> None:
    parse_stack_config(
        config.get("ml-budgets:teams"),
        config.get("ml-budgets:gatewayBudgets"),
        config.get("ml-budgets:alertRelay"),
        config.get("ml-budgets:mlflowServer"),
    )


@pytest.mark.parametrize(
    "mistake, where",
    [
        (lambda c: c["ml-budgets:teams"][0]["serverless"].update(monthlyLimitUSD=10), "monthlyLimitUSD"),
        (lambda c: c["ml-budgets:teams"][0]["gateway"]["webhook"].update(rout="x"), "rout"),
        (lambda c: c["ml-budgets:teams"][0].update(gatway={}), "gatway"),
        (lambda c: c["ml-budgets:gatewayBudgets"][0].update(hardstop=True), "hardstop"),
    ],
)
def test_an_unknown_key_is_refused_by_the_schema_and_the_program_alike(mistake, where):
    stack = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    wrong = copy.deepcopy(stack)
    mistake(wrong["config"])
    assert any(where in error for error in errors(wrong))
    with pytest.raises(StackConfigError) as refused:
        _parse(wrong["config"])
    assert where in str(refused.value)


def test_a_misspelt_namespace_key_is_flagged():
    stack = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack["config"]["ml-budgets:team"] = []
    assert errors(stack)
    stack = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack["config"]["databricks:anything"] = "other providers' keys are theirs"
    assert errors(stack) == []
