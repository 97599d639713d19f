"""Budget policy rule sets: the real ``AccountClient.access_control`` against the emulator."""

from __future__ import annotations

import uuid

import pytest
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    ResourceConflict,
    ResourceDoesNotExist,
)
from databricks.sdk.errors import (
    NotImplemented as DatabricksNotImplemented,
)
from databricks.sdk.service.billing import BudgetPolicy
from databricks.sdk.service.iam import GrantRule, RuleSetUpdateRequest

from emulator import ROLE_MANAGER, ROLE_USER

SP_APP_ID = "6f1c2b5e-8f34-4a52-9d2e-0a1b2c3d4e5f"
CREATOR = "users/emulator-user@example.com"  # every test token's principal by default
CREATOR_RULE = {"role": ROLE_MANAGER, "principals": [CREATOR]}


@pytest.fixture
def policy(databricks_emulator):
    return databricks_emulator.account_client().budget_policy.create(policy=BudgetPolicy(policy_name="grants-target"))


def _name(emulator, policy_id: str) -> str:
    return f"accounts/{emulator.account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def _put(a, name: str, etag: str, rules: list[GrantRule]):
    return a.access_control.update_rule_set(
        name=name, rule_set=RuleSetUpdateRequest(name=name, etag=etag, grant_rules=rules)
    )


def test_fresh_policy_has_an_etag_and_its_creator_as_manager(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    rule_set = a.access_control.get_rule_set(name=_name(databricks_emulator, policy.policy_id), etag="")
    assert rule_set.name == _name(databricks_emulator, policy.policy_id)
    assert rule_set.etag
    assert rule_set.grant_rules == [GrantRule(role=ROLE_MANAGER, principals=[CREATOR])]


def test_round_trip_update_then_get(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    before = a.access_control.get_rule_set(name=name, etag="")
    rules = [
        GrantRule(role=ROLE_MANAGER, principals=["users/owner@example.com"]),
        GrantRule(role=ROLE_USER, principals=["groups/ML Engineers", f"servicePrincipals/{SP_APP_ID}"]),
    ]
    written = _put(a, name, before.etag, rules)
    assert written.etag != before.etag
    assert written.grant_rules == rules
    read = a.access_control.get_rule_set(name=name, etag=written.etag)
    assert read.etag == written.etag and read.grant_rules == rules
    assert databricks_emulator.state.grant_rules(policy.policy_id) == [r.as_dict() for r in rules]

    # Wire format: PUT body is {name, rule_set: {name, etag, grant_rules}}; GET has name & etag.
    put = [r for r in databricks_emulator.requests if r["method"] == "PUT"][-1]
    assert put["path"] == f"/api/2.0/preview/accounts/{databricks_emulator.account_id}/access-control/rule-sets"
    assert put["body"] == {
        "name": name,
        "rule_set": {"name": name, "etag": before.etag, "grant_rules": [r.as_dict() for r in rules]},
    }
    get = [r for r in databricks_emulator.requests if r["method"] == "GET" and "rule-sets" in r["path"]][-1]
    assert get["query"] == {"name": name, "etag": written.etag}

    # Removing every grant: the SDK leaves grant_rules out entirely.
    cleared = _put(a, name, read.etag, [])
    assert not cleared.grant_rules and cleared.etag != read.etag
    assert databricks_emulator.state.grant_rules(policy.policy_id) == []


def test_every_write_changes_the_etag_even_with_identical_rules(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    rules = [GrantRule(role=ROLE_USER, principals=["users/a@example.com"])]
    etags = [a.access_control.get_rule_set(name=name, etag="").etag]
    for _ in range(3):
        etags.append(_put(a, name, etags[-1], rules).etag)
    assert len(set(etags)) == 4


def test_stale_etag_is_409_conflict_and_not_retried(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    stale = a.access_control.get_rule_set(name=name, etag="").etag
    _put(a, name, stale, [GrantRule(role=ROLE_USER, principals=["users/first@example.com"])])
    databricks_emulator.reset_requests()
    with pytest.raises(ResourceConflict) as err:
        _put(a, name, stale, [GrantRule(role=ROLE_USER, principals=["users/second@example.com"])])
    assert err.value.error_code == "RESOURCE_CONFLICT"
    assert str(err.value) == "Conflict with another RuleSet operation"
    assert databricks_emulator.count("PUT", "/access-control/rule-sets") == 1  # the SDK did not retry
    assert databricks_emulator.state.grant_rules(policy.policy_id) == [
        {"role": ROLE_USER, "principals": ["users/first@example.com"]}
    ]


def test_before_next_slips_another_writer_between_read_and_write(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    read = a.access_control.get_rule_set(name=name, etag="")
    databricks_emulator.before_next(
        "PUT",
        "/access-control/rule-sets",
        lambda state: state.add_grant(policy.policy_id, ROLE_USER, "users/intruder@example.com"),
    )
    with pytest.raises(ResourceConflict):
        _put(a, name, read.etag, [GrantRule(role=ROLE_MANAGER, principals=["users/me@example.com"])])
    # The other writer's change is there, ours is not; read-modify-write again succeeds.
    assert databricks_emulator.state.grant_rules(policy.policy_id) == [
        CREATOR_RULE,
        {"role": ROLE_USER, "principals": ["users/intruder@example.com"]},
    ]
    fresh = a.access_control.get_rule_set(name=name, etag="")
    merged = fresh.grant_rules + [GrantRule(role=ROLE_MANAGER, principals=["users/me@example.com"])]
    assert _put(a, name, fresh.etag, merged).grant_rules == [  # one rule per role
        GrantRule(role=ROLE_MANAGER, principals=[CREATOR, "users/me@example.com"]),
        GrantRule(role=ROLE_USER, principals=["users/intruder@example.com"]),
    ]
    # The hook was one-shot.
    assert databricks_emulator.app.pending_hooks() == 0


def test_before_next_accepts_a_callback_without_arguments(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    calls = []
    databricks_emulator.before_next("GET", "rule-sets", lambda: calls.append("ran"))
    a.access_control.get_rule_set(name=name, etag="")
    a.access_control.get_rule_set(name=name, etag="")
    assert calls == ["ran"]


@pytest.mark.parametrize(
    "role",
    ["roles/budgetPolicy.owner", "roles/servicePrincipal.manager", "roles/BudgetPolicy.user", "budgetPolicy.user", ""],
)
def test_unknown_role_is_rejected(databricks_emulator, policy, role):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    with pytest.raises(InvalidParameterValue) as err:
        _put(a, name, etag, [GrantRule(role=role, principals=["users/a@example.com"])])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert databricks_emulator.state.etag(policy.policy_id) == etag  # nothing written


@pytest.mark.parametrize(
    "principal",
    [
        "alice@example.com",
        "users/alice",
        "users/",
        "user/alice@example.com",
        "groups/",
        "groups/ padded ",
        "servicePrincipals/not-a-uuid",
        "servicePrincipals/",
        "serviceprincipals/" + SP_APP_ID,
        "accounts/123",
    ],
)
def test_malformed_principal_is_rejected(databricks_emulator, policy, principal):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    with pytest.raises(InvalidParameterValue) as err:
        _put(a, name, etag, [GrantRule(role=ROLE_USER, principals=["users/ok@example.com", principal])])
    assert f"Unsupported principal: {principal}" in str(err.value)
    assert databricks_emulator.state.grant_rules(policy.policy_id) == [CREATOR_RULE]


def test_rule_set_of_missing_policy_is_404(databricks_emulator):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, str(uuid.uuid4()))
    with pytest.raises(ResourceDoesNotExist):
        a.access_control.get_rule_set(name=name, etag="")
    with pytest.raises(NotFound):
        _put(a, name, "anything", [GrantRule(role=ROLE_USER, principals=["users/a@example.com"])])


def test_deleting_the_policy_deletes_its_rule_set(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    _put(a, name, etag, [GrantRule(role=ROLE_USER, principals=["users/a@example.com"])])
    a.budget_policy.delete(policy.policy_id)
    with pytest.raises(NotFound):
        a.access_control.get_rule_set(name=name, etag="")


def test_put_needs_an_etag_and_a_matching_name(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    with pytest.raises(InvalidParameterValue) as err:
        _put(a, name, "", [GrantRule(role=ROLE_USER, principals=["users/a@example.com"])])
    assert "etag" in str(err.value)
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    with pytest.raises(InvalidParameterValue):
        a.access_control.update_rule_set(
            name=name,
            rule_set=RuleSetUpdateRequest(name=_name(databricks_emulator, str(uuid.uuid4())), etag=etag),
        )


def test_rule_set_names_outside_budget_policies(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    account = databricks_emulator.account_id
    for unsupported in (f"accounts/{account}/ruleSets/default", f"accounts/{account}/groups/123/ruleSets/default"):
        with pytest.raises(DatabricksNotImplemented):
            a.access_control.get_rule_set(name=unsupported, etag="")
    for invalid in ("default", f"accounts/{account}/budgetPolicies/{policy.policy_id}/ruleSets/custom"):
        with pytest.raises(InvalidParameterValue):
            a.access_control.get_rule_set(name=invalid, etag="")
    with pytest.raises(InvalidParameterValue):  # rule set of another account, asked through this one
        a.access_control.get_rule_set(
            name=f"accounts/{uuid.uuid4()}/budgetPolicies/{policy.policy_id}/ruleSets/default", etag=""
        )


def test_duplicate_roles_and_principals_are_merged(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    name = _name(databricks_emulator, policy.policy_id)
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    written = _put(
        a,
        name,
        etag,
        [
            GrantRule(role=ROLE_USER, principals=["users/a@example.com", "users/a@example.com"]),
            GrantRule(role=ROLE_MANAGER, principals=["groups/admins"]),
            GrantRule(role=ROLE_USER, principals=["users/b@example.com"]),
            GrantRule(role=ROLE_MANAGER),  # no principals: the SDK sends {"role": ...} only
        ],
    )
    assert written.grant_rules == [
        GrantRule(role=ROLE_USER, principals=["users/a@example.com", "users/b@example.com"]),
        GrantRule(role=ROLE_MANAGER, principals=["groups/admins"]),
    ]


def test_assignable_roles_for_a_budget_policy(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    resource = f"accounts/{databricks_emulator.account_id}/budgetPolicies/{policy.policy_id}"
    roles = a.access_control.get_assignable_roles_for_resource(resource=resource)
    assert sorted(r.name for r in roles.roles) == [ROLE_MANAGER, ROLE_USER]
    with pytest.raises(NotFound):
        a.access_control.get_assignable_roles_for_resource(
            resource=f"accounts/{databricks_emulator.account_id}/budgetPolicies/{uuid.uuid4()}"
        )


def test_creator_manager_can_be_a_fixed_principal_or_none(databricks_emulator_factory):
    for creator_manager, expected in ((None, None), ("users/creator@example.com", "users/creator@example.com")):
        a = databricks_emulator_factory(creator_manager=creator_manager).account_client()
        created = a.budget_policy.create(policy=BudgetPolicy(policy_name="configured"))
        rules = a.access_control.get_rule_set(name=_name_of(a, created.policy_id), etag="").grant_rules
        assert (rules or []) == ([GrantRule(role=ROLE_MANAGER, principals=[expected])] if expected else [])


def _name_of(a, policy_id: str) -> str:
    return f"accounts/{a.config.account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def test_creator_manager_grant_is_modelled_when_configured(databricks_emulator_factory):
    emulator = databricks_emulator_factory(creator_manager="users/creator@example.com")
    a = emulator.account_client()
    created = a.budget_policy.create(policy=BudgetPolicy(policy_name="with-creator"))
    rule_set = a.access_control.get_rule_set(name=_name(emulator, created.policy_id), etag="")
    assert rule_set.grant_rules == [GrantRule(role=ROLE_MANAGER, principals=["users/creator@example.com"])]


def test_state_helpers_play_another_writer(databricks_emulator, policy):
    state = databricks_emulator.state
    first = state.etag(policy.policy_id)
    second = state.add_grant(policy.policy_id, ROLE_USER, "groups/data science")
    third = state.bump_etag(policy.policy_id)
    assert len({first, second, third}) == 3
    assert state.grant_rules(policy.policy_id) == [
        CREATOR_RULE,
        {"role": ROLE_USER, "principals": ["groups/data science"]},
    ]
    with pytest.raises(Exception) as err:
        state.add_grant(policy.policy_id, "roles/nope", "users/a@example.com")
    assert "roles/nope" in str(err.value)
