"""BudgetPolicyGrants through the SDK's provider server over gRPC, against the emulator."""

from __future__ import annotations

import pytest

from harness.deployment import declare
from harness.provider_server import ProviderError, ProviderServer
from harness.pulumi_program import declared_inputs, run_program
from providers import BudgetPolicyGrants

TYPE = "pulumi-python:dynamic/mlbudgets:BudgetPolicyGrants"
USER = "roles/budgetPolicy.user"
MANAGER = "roles/budgetPolicy.manager"
OUT_OF_BAND = "users/finops@example.com"
CREATOR = "users/emulator-user@example.com"  # the principal of every token in the default emulator


def declared(**props) -> dict:
    return declare(BudgetPolicyGrants, "grants", **props)


@pytest.fixture
def server(databricks_emulator, provider_server_factory) -> ProviderServer:
    return provider_server_factory(config=databricks_emulator.config())


@pytest.fixture
def policy_id(databricks_emulator) -> str:
    from databricks.sdk.service.billing import BudgetPolicy

    return databricks_emulator.account_client().budget_policy.create(policy=BudgetPolicy(policy_name="team")).policy_id


def rule_set(emulator, policy_id: str, creator_kept: bool = True) -> dict[str, set[str]]:
    """The rule set as the plain databricks-sdk client reads it.

    The emulator makes a policy's creator its Manager, as Databricks does; the policies here are
    created with the deployer's identity.  Unless ``creator_kept`` is False (authoritative grants
    own the whole rule set), the creator's grant must still be there and is left out of the answer.
    """
    name = f"accounts/{emulator.account_id}/budgetPolicies/{policy_id}/ruleSets/default"
    response = emulator.account_client().access_control.get_rule_set(name=name, etag="")
    rules = {rule.role: set(rule.principals or []) for rule in response.grant_rules or []}
    if creator_kept:
        assert CREATOR in rules.get(MANAGER, set()), f"the creator's Manager grant is gone: {rules}"
        rules[MANAGER].discard(CREATOR)
    return {role: principals for role, principals in rules.items() if principals}


def grant_out_of_band(emulator, policy_id: str, role: str = USER, principal: str = OUT_OF_BAND, revoke=False) -> None:
    """Another writer (the UI, another tool) changes the rule set with the plain SDK."""
    from databricks.sdk.service.iam import GrantRule, RuleSetUpdateRequest

    client = emulator.account_client()
    name = f"accounts/{emulator.account_id}/budgetPolicies/{policy_id}/ruleSets/default"
    current = client.access_control.get_rule_set(name=name, etag="")
    rules = {r.role: set(r.principals or []) for r in current.grant_rules or []}
    rules.setdefault(role, set())
    if revoke:
        rules[role].discard(principal)
    else:
        rules[role].add(principal)
    client.access_control.update_rule_set(
        name=name,
        rule_set=RuleSetUpdateRequest(
            name=name,
            etag=current.etag,
            grant_rules=[GrantRule(role=r, principals=sorted(p)) for r, p in rules.items() if p],
        ),
    )


def test_check_rejects_malformed_principals_without_calling_the_api(server, databricks_emulator, policy_id):
    databricks_emulator.reset_requests()
    outcome = server.check(
        server.urn(TYPE, "bad"),
        declared(
            policy_id=policy_id,
            users=["alice@example.com", "groups/ok"],
            managers=["servicePrincipals/not-a-uuid", "admins"],
        ),
    )
    assert outcome.failed_properties() == {"users", "managers"}
    assert len(outcome.failures) == 3
    assert all("users/alice@example.com" in reason for _, reason in outcome.failures), "gives an example"
    assert server.check(server.urn(TYPE, "bad-id"), declared(policy_id="nope")).failed_properties() == {"policy_id"}
    assert databricks_emulator.requests == []


def test_additive_grants_coexist_with_out_of_band_grants(server, databricks_emulator, deploy, policy_id):
    grants = deploy(server, BudgetPolicyGrants)
    grant_out_of_band(databricks_emulator, policy_id)
    args = dict(policy_id=policy_id, users=["groups/search"], managers=["users/lead@example.com"])
    assert grants.up(**args) == "create"
    assert rule_set(databricks_emulator, policy_id) == {
        USER: {"groups/search", OUT_OF_BAND},
        MANAGER: {"users/lead@example.com"},
    }
    # Refresh in additive mode sees only what it owns: no drift from the out-of-band grant.
    assert grants.refresh().id == grants.id
    assert grants.diff(**args).changes == "none"

    # Update: drop a declared user, add another; the out-of-band grant survives.
    changed = dict(policy_id=policy_id, users=["groups/ranking"], managers=["users/lead@example.com"])
    assert grants.diff(**changed).changes == "some"
    assert grants.up(**changed) == "update"
    assert rule_set(databricks_emulator, policy_id)[USER] == {"groups/ranking", OUT_OF_BAND}

    # Delete removes only our pairs.
    grants.destroy()
    assert rule_set(databricks_emulator, policy_id) == {USER: {OUT_OF_BAND}}


def test_authoritative_grants_own_the_rule_set_and_refresh_reports_extras(
    server, databricks_emulator, deploy, policy_id
):
    grants = deploy(server, BudgetPolicyGrants)
    grant_out_of_band(databricks_emulator, policy_id)
    args = dict(policy_id=policy_id, users=["groups/search"], authoritative=True)
    grants.up(**args)
    assert rule_set(databricks_emulator, policy_id, creator_kept=False) == {USER: {"groups/search"}}

    grant_out_of_band(databricks_emulator, policy_id, MANAGER, "users/intruder@example.com")
    read = grants.refresh()
    assert read.outs["managers"] == ["users/intruder@example.com"]
    assert grants.diff(**args).changes == "some"
    assert grants.up(**args) == "update"
    assert rule_set(databricks_emulator, policy_id, creator_kept=False) == {USER: {"groups/search"}}


def test_refresh_reports_a_declared_grant_removed_outside_pulumi(server, databricks_emulator, deploy, policy_id):
    grants = deploy(server, BudgetPolicyGrants)
    args = dict(policy_id=policy_id, users=["groups/search", "groups/ranking"])
    grants.up(**args)
    grant_out_of_band(databricks_emulator, policy_id, USER, "groups/ranking", revoke=True)
    read = grants.refresh()
    assert read.outs["users"] == ["groups/search"]
    assert grants.diff(**args).changes == "some"


def test_a_concurrent_writer_between_our_read_and_write_loses_nothing(server, databricks_emulator, deploy, policy_id):

    def another_writer(state):
        state.add_grant(policy_id, USER, OUT_OF_BAND)

    databricks_emulator.before_next("PUT", "/access-control/rule-sets", another_writer)
    databricks_emulator.reset_requests()
    assert deploy(server, BudgetPolicyGrants).up(policy_id=policy_id, users=["groups/search"]) == "create"

    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 1
    assert databricks_emulator.count("PUT", "/rule-sets", status=200) == 1
    assert databricks_emulator.count("GET", "/rule-sets") == 2  # read, conflict, re-read, write
    assert rule_set(databricks_emulator, policy_id) == {USER: {"groups/search", OUT_OF_BAND}}


def test_retries_are_bounded_when_the_rule_set_never_settles(server, databricks_emulator, deploy, policy_id):
    counter = iter(range(1000))

    def always_another_writer(state):
        state.add_grant(policy_id, USER, f"users/writer{next(counter)}@example.com")
        databricks_emulator.before_next("PUT", "/access-control/rule-sets", always_another_writer)

    databricks_emulator.before_next("PUT", "/access-control/rule-sets", always_another_writer)
    with pytest.raises(ProviderError) as error:
        deploy(server, BudgetPolicyGrants).up(policy_id=policy_id, users=["groups/search"])
    assert "nothing was overwritten. Run `pulumi up` again." in error.value.message
    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 8
    assert "groups/search" not in rule_set(databricks_emulator, policy_id, creator_kept=False).get(USER, set())


def test_grants_of_a_deleted_policy(server, databricks_emulator, deploy, policy_id):
    grants = deploy(server, BudgetPolicyGrants)
    grants.up(policy_id=policy_id, managers=["users/lead@example.com"])
    id_, outs = grants.id, grants.outputs
    databricks_emulator.account_client().budget_policy.delete(policy_id)
    assert grants.refresh().id == ""
    server.delete(grants.urn, id_, outs)  # already gone: succeeds
    with pytest.raises(ProviderError) as error:
        deploy(server, BudgetPolicyGrants).up(policy_id=policy_id, users=["groups/x"])
    assert "no such budget policy" in error.value.message


def test_a_lost_answer_to_our_write_is_not_applied_twice(server, databricks_emulator, deploy, policy_id):
    """The PUT lands but its answer is lost: the SDK's retry meets a stale etag (409), we re-read
    and find our grants already there."""
    grant_out_of_band(databricks_emulator, policy_id)
    databricks_emulator.faults.inject("503", "PUT", "/access-control/rule-sets", phase="after")
    assert deploy(server, BudgetPolicyGrants).up(policy_id=policy_id, users=["groups/search"]) == "create"
    assert databricks_emulator.faults.fired() == 1
    assert rule_set(databricks_emulator, policy_id) == {USER: {"groups/search", OUT_OF_BAND}}


def test_switching_from_authoritative_to_additive_keeps_grants_it_never_declared(
    server, databricks_emulator, deploy, policy_id
):
    grants = deploy(server, BudgetPolicyGrants)
    grants.up(policy_id=policy_id, users=["groups/search"], authoritative=True)
    grant_out_of_band(databricks_emulator, policy_id)
    outs = grants.refresh().outs  # refresh: the extra grant is seen (drift) ...
    assert outs["users"] == ["groups/search", OUT_OF_BAND]
    # ... and the user decides to keep it by going additive.
    assert grants.up(policy_id=policy_id, users=["groups/search"]) == "update"
    assert rule_set(databricks_emulator, policy_id, creator_kept=False) == {USER: {"groups/search", OUT_OF_BAND}}


def test_check_reports_principals_of_the_wrong_type(server, policy_id):
    outcome = server.check(server.urn(TYPE, "types"), declared(policy_id=policy_id, users=["users/a@example.com", 5]))
    assert outcome.failed_properties() == {"users"}
    assert "5.0 is not a principal" in outcome.failures[0][1]  # numbers cross the wire as doubles
    trailing = server.check(server.urn(TYPE, "ws"), declared(policy_id=policy_id, managers=["groups/ops "]))
    assert trailing.failed_properties() == {"managers"}


def test_check_accepts_values_unknown_at_preview(server, databricks_emulator):
    from pulumi.runtime import rpc

    databricks_emulator.reset_requests()
    inputs = declared(policy_id="0" * 36, users=["groups/search"], managers=["users/lead@example.com"])
    inputs.update(policy_id=rpc.UNKNOWN, users=["groups/search", rpc.UNKNOWN])
    assert server.check(server.urn(TYPE, "preview"), inputs).failures == []
    assert databricks_emulator.requests == []


# ---- never revoke what we did not grant ---------------------------------------------------


def test_a_declared_pair_granted_before_us_survives_undeclaring_and_delete(server, databricks_emulator, policy_id):
    """Granted in the UI (or by another stack) before our resource declared it: not ours to revoke."""
    urn = server.urn(TYPE, "pre-existing")
    grant_out_of_band(databricks_emulator, policy_id, USER, "groups/search")
    grant_out_of_band(databricks_emulator, policy_id, MANAGER, "users/lead@example.com")
    id_, created = server.apply(
        urn,
        declared(policy_id=policy_id, users=["groups/search", "groups/ranking"], managers=["users/lead@example.com"]),
    )

    # Dropping both declared users revokes only the one we added.
    changed = server.check(urn, declared(policy_id=policy_id, managers=["users/lead@example.com"])).inputs
    outs = server.update(urn, id_, created, changed)
    assert rule_set(databricks_emulator, policy_id) == {USER: {"groups/search"}, MANAGER: {"users/lead@example.com"}}
    server.delete(urn, id_, outs)
    assert rule_set(databricks_emulator, policy_id) == {USER: {"groups/search"}, MANAGER: {"users/lead@example.com"}}
    assert (created["granted_users"], created["granted_managers"]) == (["groups/ranking"], [])


def _another_writer_grants(databricks_emulator, policy_id, role, principal):
    databricks_emulator.before_next(
        "PUT", "/access-control/rule-sets", lambda state: state.add_grant(policy_id, role, principal)
    )


def test_create_race_a_writer_granting_our_pair_between_read_and_write_keeps_it(server, databricks_emulator, policy_id):
    urn = server.urn(TYPE, "race-create")
    _another_writer_grants(databricks_emulator, policy_id, USER, "groups/search")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/search", "groups/ranking"]))
    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 1
    server.delete(urn, id_, outs)
    assert rule_set(databricks_emulator, policy_id) == {USER: {"groups/search"}}
    assert outs["granted_users"] == ["groups/ranking"]


def test_update_race_a_writer_granting_our_new_pair_between_read_and_write_keeps_it(
    server, databricks_emulator, policy_id
):
    urn = server.urn(TYPE, "race-update")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/ranking"]))
    _another_writer_grants(databricks_emulator, policy_id, MANAGER, "users/lead@example.com")
    changed = server.check(
        urn, declared(policy_id=policy_id, users=["groups/ranking"], managers=["users/lead@example.com"])
    ).inputs
    outs = server.update(urn, id_, outs, changed)
    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 1
    server.delete(urn, id_, outs)
    assert rule_set(databricks_emulator, policy_id) == {MANAGER: {"users/lead@example.com"}}
    assert (outs["granted_users"], outs["granted_managers"]) == (["groups/ranking"], [])


def test_delete_race_a_writer_between_read_and_write_loses_nothing(server, databricks_emulator, policy_id):
    urn = server.urn(TYPE, "race-delete")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/ranking"]))
    _another_writer_grants(databricks_emulator, policy_id, USER, OUT_OF_BAND)
    server.delete(urn, id_, outs)
    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 1
    assert rule_set(databricks_emulator, policy_id) == {USER: {OUT_OF_BAND}}


def test_after_a_lost_answer_the_pairs_we_wrote_are_still_ours_to_revoke(server, databricks_emulator, policy_id):
    """Our PUT lands, its answer is lost, the SDK's retry meets our own new etag (409): the rule
    set is exactly what we wrote, so the pair is ours and delete revokes it."""
    grant_out_of_band(databricks_emulator, policy_id)
    databricks_emulator.faults.inject("503", "PUT", "/access-control/rule-sets", phase="after")
    urn = server.urn(TYPE, "lost-then-delete")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/search"]))
    assert databricks_emulator.count("PUT", "/rule-sets", status=409) == 1
    server.delete(urn, id_, outs)
    assert rule_set(databricks_emulator, policy_id) == {USER: {OUT_OF_BAND}}
    assert outs["granted_users"] == ["groups/search"]


def test_state_written_before_granted_pairs_were_recorded_still_releases_its_declared_pairs(
    server, databricks_emulator, policy_id
):
    urn = server.urn(TYPE, "old-state")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/search"]))
    old_state = {k: v for k, v in outs.items() if not k.startswith("granted_")}
    server.delete(urn, id_, old_state)
    assert rule_set(databricks_emulator, policy_id) == {}


# ---- principals as the server returns them ------------------------------------------------


@pytest.mark.parametrize("authoritative", [False, True])
def test_a_server_that_lowercases_emails_shows_no_drift(
    databricks_emulator_factory, provider_server_factory, authoritative
):
    emulator = databricks_emulator_factory(lowercase_emails=True)
    server = provider_server_factory(config=emulator.config())
    from databricks.sdk.service.billing import BudgetPolicy

    policy_id = emulator.account_client().budget_policy.create(policy=BudgetPolicy(policy_name="team")).policy_id
    urn = server.urn(TYPE, "mixed-case")
    inputs = declared(
        policy_id=policy_id, users=["users/Alice.Smith@Example.com", "groups/Search"], authoritative=authoritative
    )
    id_, outs = server.apply(urn, inputs)
    assert rule_set(emulator, policy_id, creator_kept=not authoritative) == {
        USER: {"users/alice.smith@example.com", "groups/Search"}
    }

    read = server.read(urn, id_, outs)
    checked = server.check(urn, inputs).inputs
    assert server.diff(urn, id_, read.outs, checked).changes == "none"
    emulator.reset_requests()
    server.update(urn, id_, read.outs, checked)  # an update for another reason writes nothing here
    assert emulator.count("PUT", "/rule-sets") == 0
    server.delete(urn, id_, read.outs)
    assert rule_set(emulator, policy_id, creator_kept=not authoritative) == {}


def test_an_email_granted_before_us_in_another_case_is_not_ours(server, databricks_emulator, policy_id):
    grant_out_of_band(databricks_emulator, policy_id, MANAGER, "users/Lead@Example.com")
    urn = server.urn(TYPE, "case")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, managers=["users/lead@example.com"]))
    assert rule_set(databricks_emulator, policy_id) == {MANAGER: {"users/Lead@Example.com"}}, "no second spelling added"
    server.delete(urn, id_, outs)
    assert rule_set(databricks_emulator, policy_id) == {MANAGER: {"users/Lead@Example.com"}}


def test_a_refused_grant_write_names_the_policy_and_the_role_needed(server, databricks_emulator, policy_id):
    databricks_emulator.faults.error(
        "PUT",
        "/access-control/rule-sets",
        status=403,
        error_code="PERMISSION_DENIED",
        message="You are not allowed to call this API, consider getting billing.admin role",
    )
    with pytest.raises(ProviderError) as error:
        server.apply(server.urn(TYPE, "denied"), declared(policy_id=policy_id, users=["groups/search"]))
    assert f"Unable to write grants of budget policy '{policy_id}': PERMISSION_DENIED" in error.value.message
    assert "billing admin role, or Manager (roles/budgetPolicy.manager) on this budget policy" in error.value.message


# ---- a deployer who is not a billing admin ------------------------------------------------

DEPLOYER = "users/deployer@example.com"


@pytest.fixture
def non_admin(databricks_emulator_factory, provider_server_factory):
    """An emulator where the provider's token belongs to a deployer without the billing admin
    role: it may manage the policies it creates (their creator is their Manager), nothing else."""
    from emulator.server import PULUMI_TOKEN

    # The tests' own client (any other token) stays a billing admin, to look at the rule sets.
    emulator = databricks_emulator_factory(tokens={PULUMI_TOKEN: DEPLOYER}, billing_admins={CREATOR})
    return emulator, provider_server_factory(config=emulator.config())


def test_a_non_admin_manager_deploys_its_policy_and_grants(non_admin):
    from providers import ServerlessBudgetPolicy

    emulator, server = non_admin
    policy_urn = server.urn("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "team")
    policy_inputs = declared_inputs(
        lambda: ServerlessBudgetPolicy("team", policy_name="team", custom_tags={"team": "a"})
    )
    policy_id, policy_outs = server.apply(policy_urn, policy_inputs)
    assert rule_set(emulator, policy_id, creator_kept=False) == {MANAGER: {DEPLOYER}}

    urn = server.urn(TYPE, "grants")
    id_, outs = server.apply(urn, declared(policy_id=policy_id, users=["groups/search"]))
    changed = server.check(urn, declared(policy_id=policy_id, users=["groups/ranking"])).inputs
    outs = server.update(urn, id_, outs, changed)
    assert rule_set(emulator, policy_id, creator_kept=False) == {MANAGER: {DEPLOYER}, USER: {"groups/ranking"}}
    server.delete(urn, id_, outs)
    server.delete(policy_urn, policy_id, policy_outs)
    assert emulator.count(status=403) == 0
    assert emulator.state.policy_ids() == []


def test_a_non_admin_locked_out_by_its_own_authoritative_grants_is_told_which_role_it_needs(non_admin):
    from databricks.sdk.service.billing import BudgetPolicy

    emulator, server = non_admin
    policy_id = (
        emulator.account_client(token=emulator.config()["databricks:token"])
        .budget_policy.create(policy=BudgetPolicy(policy_name="locked"))
        .policy_id
    )
    urn = server.urn(TYPE, "authoritative")
    # Listing the deployer among the managers keeps its access...
    kept = declared(policy_id=policy_id, users=["groups/search"], managers=[DEPLOYER], authoritative=True)
    id_, outs = server.apply(urn, kept)
    # ... leaving it out removes it, as the preview warning says, and the next change is refused.
    outs = server.update(
        urn,
        id_,
        outs,
        server.check(urn, declared(policy_id=policy_id, users=["groups/search"], authoritative=True)).inputs,
    )
    assert rule_set(emulator, policy_id, creator_kept=False) == {USER: {"groups/search"}}
    with pytest.raises(ProviderError) as error:
        server.update(urn, id_, outs, server.check(urn, kept).inputs)
    assert (
        f"Unable to write grants of budget policy '{policy_id}': "
        "PERMISSION_DENIED: You are not allowed to call this API" in error.value.message
    )
    assert (
        "needs the billing admin role, or Manager (roles/budgetPolicy.manager) on this budget policy"
        in error.value.message
    )


def test_authoritative_grants_say_at_preview_that_they_remove_the_creators_access(caplog):
    import logging

    caplog.set_level(logging.WARNING)
    declared(policy_id="0" * 36, users=["groups/search"])
    assert not [r for r in caplog.records if "authoritative" in r.getMessage()]
    run_program(
        lambda: BudgetPolicyGrants("team-grants", policy_id="0" * 36, users=["groups/search"], authoritative=True),
        preview=True,
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "'team-grants' is authoritative" in w and "Manager grant Databricks gives the policy's creator" in w
        for w in warnings
    )
