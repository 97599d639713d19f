"""One spelling of each contract, and the emulator's copies of Databricks' limits agreeing with
the providers' validators value for value."""

from __future__ import annotations

import pytest

import contracts
from emulator import errors, validation
from providers import budget_policy_grants, experiment_policy_tag, serverless_budget_policy
from providers._base import Failures


def provider_accepts(validator, value, *args) -> bool:
    failures = Failures()
    validator(value, failures, *args)
    return not failures


def emulator_accepts(validate, *args) -> bool:
    try:
        validate(*args)
    except errors.ApiError:
        return False
    return True


@pytest.mark.parametrize(
    "name, valid",
    [
        ("search", True),
        ("x" * 127, True),
        ("x" * 128, False),
        ("", False),
        ("Équipe données", True),  # Latin-1
        ("团队", False),
        ("databricks:default-policy-2", False),
        ("my databricks:default-policy", True),
    ],
)
def test_policy_names_are_judged_alike(name, valid):
    assert provider_accepts(serverless_budget_policy.validate_policy_name, name) is valid
    assert emulator_accepts(validation.validate_policy_fields, {"policy_name": name}, "policy.") is valid


@pytest.mark.parametrize(
    "tags, valid",
    [
        ({"team": "search"}, True),
        ({f"k{i}": "v" for i in range(20)}, True),
        ({f"k{i}": "v" for i in range(21)}, False),
        ({"k" * 512: "v"}, True),
        ({"k" * 513: "v"}, False),
        ({"": "v"}, False),
        ({"team": "v" * 256}, True),
        ({"team": "v" * 257}, False),
        ({"team": 7}, False),
        ({"budget-policy-name": "x"}, False),
        ({"budget-policy-id": "x"}, False),
        ({"budget-policy-resolution-result": "x"}, False),
    ],
)
def test_custom_tags_are_judged_alike(tags, valid):
    wire = [{"key": key, "value": value} for key, value in tags.items()]
    assert provider_accepts(serverless_budget_policy.validate_custom_tags, tags) is valid
    assert emulator_accepts(validation.validate_tags, wire, "policy.") is valid


@pytest.mark.parametrize(
    "principal, valid",
    [
        ("users/alice@example.com", True),
        ("users/alice", False),
        ("groups/data science", True),
        ("groups/ padded", False),
        ("servicePrincipals/9f0c6a52-3c2e-4f5b-8a43-0a6d9e2b1c7d", True),
        ("servicePrincipals/my-app", False),
        ("alice@example.com", False),
    ],
)
def test_principals_are_judged_alike(principal, valid):
    assert provider_accepts(budget_policy_grants.validate_principals, [principal], "users") is valid
    assert emulator_accepts(validation.check_principal, principal) is valid


@pytest.mark.parametrize("workspace_id, valid", [(1234567890123456, True), (0, False), (-5, False), ("12", True)])
def test_workspace_ids_are_judged_alike(workspace_id, valid):
    assert provider_accepts(serverless_budget_policy.validate_workspace_ids, [workspace_id]) is valid
    assert emulator_accepts(validation.validate_workspaces, [workspace_id], "policy.") is valid


def test_experiment_tag_keys_have_one_spelling():
    import evaluation
    from components import evaluation_budget

    assert experiment_policy_tag.DEFAULT_KEY == contracts.BUDGET_POLICY_TAG
    assert evaluation_budget.TOKEN_BUDGET_TAG is contracts.TOKEN_BUDGET_TAG
    assert (evaluation.TOKEN_BUDGET_TAG, evaluation.ON_EXCEED_TAG, evaluation.COST_PER_1K_TOKENS_TAG) == (
        contracts.TOKEN_BUDGET_TAG,
        contracts.ON_EXCEED_TAG,
        contracts.COST_PER_1K_TOKENS_TAG,
    )
    for key in (
        contracts.BUDGET_POLICY_TAG,
        contracts.TOKEN_BUDGET_TAG,
        contracts.ON_EXCEED_TAG,
        contracts.COST_PER_1K_TOKENS_TAG,
    ):
        assert provider_accepts(experiment_policy_tag.validate_key, key)


def test_contracts_need_nothing_but_the_standard_library():
    import ast
    import pathlib
    import sys

    tree = ast.parse(pathlib.Path(contracts.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names)
