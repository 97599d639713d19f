"""Who may call what: tokens name principals, billing admins may do everything, a policy's creator
is its Manager, anyone else gets Databricks' 403 (terraform-provider-databricks #4554)."""

from __future__ import annotations

import pytest
from databricks.sdk.errors import PermissionDenied
from databricks.sdk.service.billing import BudgetPolicy
from databricks.sdk.service.iam import GrantRule, RuleSetUpdateRequest

from emulator import ROLE_MANAGER, ROLE_USER
from emulator.permissions import NOT_ALLOWED

ADMIN, DEPLOYER, READER, OUTSIDER = (
    "users/admin@example.com",
    "users/Deployer@Example.com",
    "groups/readers",
    "users/outsider@example.com",
)
TOKENS = {
    "dapi-admin": ADMIN,
    "dapi-deployer": DEPLOYER,
    "dapi-outsider": OUTSIDER,
    "dapi-reader-sp": "servicePrincipals/6f1c2b5e-8f34-4a52-9d2e-0a1b2c3d4e5f",
}


@pytest.fixture
def emulator(databricks_emulator_factory):
    return databricks_emulator_factory(tokens=TOKENS, billing_admins={ADMIN})


def rule_set_name(a, policy_id):
    return f"accounts/{a.config.account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def test_a_non_admin_creator_is_manager_and_may_manage_its_policy(emulator):
    deployer = emulator.account_client(token="dapi-deployer")
    created = deployer.budget_policy.create(policy=BudgetPolicy(policy_name="team"))
    name = rule_set_name(deployer, created.policy_id)
    rule_set = deployer.access_control.get_rule_set(name=name, etag="")
    assert rule_set.grant_rules == [GrantRule(role=ROLE_MANAGER, principals=[DEPLOYER])]
    # Manager rights: rename, grant, read back, delete (the email matches in any case).
    deployer.budget_policy.update(created.policy_id, BudgetPolicy(policy_id=created.policy_id, policy_name="team-2"))
    rules = rule_set.grant_rules + [GrantRule(role=ROLE_USER, principals=[READER])]
    deployer.access_control.update_rule_set(
        name=name, rule_set=RuleSetUpdateRequest(name=name, etag=rule_set.etag, grant_rules=rules)
    )
    assert [p.policy_name for p in deployer.budget_policy.list()] == ["team-2"]
    deployer.budget_policy.delete(created.policy_id)


def test_a_non_admin_who_is_not_manager_gets_databricks_403(emulator):
    admin = emulator.account_client(token="dapi-admin")
    outsider = emulator.account_client(token="dapi-outsider")
    created = admin.budget_policy.create(policy=BudgetPolicy(policy_name="admins-only"))
    name = rule_set_name(admin, created.policy_id)
    calls = {
        "get": lambda: outsider.budget_policy.get(created.policy_id),
        "update": lambda: outsider.budget_policy.update(
            created.policy_id, BudgetPolicy(policy_id=created.policy_id, policy_name="x")
        ),
        "delete": lambda: outsider.budget_policy.delete(created.policy_id),
        "get_rule_set": lambda: outsider.access_control.get_rule_set(name=name, etag=""),
        "update_rule_set": lambda: outsider.access_control.update_rule_set(
            name=name,
            rule_set=RuleSetUpdateRequest(
                name=name, etag="x", grant_rules=[GrantRule(role=ROLE_MANAGER, principals=[OUTSIDER])]
            ),
        ),
    }
    for call, attempt in calls.items():
        with pytest.raises(PermissionDenied) as error:
            attempt()
        assert str(error.value).startswith(NOT_ALLOWED), call
    assert list(outsider.budget_policy.list()) == [], "policies it may not see are not listed"
    assert admin.budget_policy.get(created.policy_id).policy_name == "admins-only"
    assert emulator.count(status=403) == len(calls)


def test_a_user_may_read_the_policy_but_not_manage_it(emulator):
    admin = emulator.account_client(token="dapi-admin")
    reader = emulator.account_client(token="dapi-reader-sp")
    created = admin.budget_policy.create(policy=BudgetPolicy(policy_name="shared"))
    emulator.state.add_grant(created.policy_id, ROLE_USER, "servicePrincipals/6F1C2B5E-8F34-4A52-9D2E-0A1B2C3D4E5F")
    assert reader.budget_policy.get(created.policy_id).policy_name == "shared"
    assert [p.policy_id for p in reader.budget_policy.list()] == [created.policy_id]
    with pytest.raises(PermissionDenied):
        reader.access_control.get_rule_set(name=rule_set_name(reader, created.policy_id), etag="")


def test_permissions_from_the_command_line(databricks_emulator_process):
    proc = databricks_emulator_process(extra_args=["--token", f"dapi-outsider={OUTSIDER}", "--billing-admin", ADMIN])
    admin_created = proc.account_client(token="dapi-admin").budget_policy.create(policy=BudgetPolicy(policy_name="cli"))
    with pytest.raises(PermissionDenied):
        proc.account_client(token="dapi-outsider").budget_policy.get(admin_created.policy_id)


def test_account_budgets_are_for_billing_admins(emulator):
    outsider = emulator.account_client(token="dapi-outsider")
    with pytest.raises(PermissionDenied):
        list(outsider.budgets.list())
    assert list(emulator.account_client(token="dapi-admin").budgets.list()) == []
