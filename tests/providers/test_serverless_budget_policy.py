"""ServerlessBudgetPolicy through the SDK's provider server over gRPC, against the emulator."""

from __future__ import annotations

import pytest

from harness.deployment import declare
from harness.provider_server import ProviderError, ProviderServer
from providers import ServerlessBudgetPolicy

TYPE = "pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy"


def declared(**props) -> dict:
    """Inputs exactly as the SDK registers them for ``ServerlessBudgetPolicy(**props)``."""
    return declare(ServerlessBudgetPolicy, "policy", **props)


@pytest.fixture
def server(databricks_emulator, provider_server_factory) -> ProviderServer:
    return provider_server_factory(config=databricks_emulator.config())


def test_check_rejects_bad_inputs_without_calling_the_api(server, databricks_emulator):
    urn = server.urn(TYPE, "bad")
    databricks_emulator.reset_requests()
    bad = declared(
        policy_name="databricks:default-policy-x",
        custom_tags={"budget-policy-id": "x", "team": "a" * 300, **{f"k{i}": "v" for i in range(20)}},
        binding_workspace_ids=["not-a-workspace", -5],
    )
    outcome = server.check(urn, bad)
    reasons = dict(outcome.failures)
    assert outcome.failed_properties() == {"policy_name", "custom_tags", "binding_workspace_ids"}
    assert "databricks:default-policy" in reasons["policy_name"]
    custom_tag_reasons = " ".join(r for p, r in outcome.failures if p == "custom_tags")
    assert "reserved" in custom_tag_reasons and "at most 20" in custom_tag_reasons and "256" in custom_tag_reasons

    for name, reason in [("", "required"), ("x" * 128, "at most 127"), ("équipe ✓", "Latin-1")]:
        outcome = server.check(urn, declared(policy_name=name))
        assert outcome.failed_properties() == {"policy_name"}
        assert reason in outcome.failures[0][1]
    assert databricks_emulator.requests == [], "check must not reach the API"


def test_check_normalizes_and_accepts_latin1(server):
    outcome = server.check(
        server.urn(TYPE, "ok"),
        declared(
            policy_name="Équipe données",
            custom_tags={"team": "search", "cost-center": "42"},
            binding_workspace_ids=[3, 1, 3],
        ),
    )
    assert outcome.failures == []
    assert outcome.inputs["custom_tags"] == {"cost-center": "42", "team": "search"}
    assert outcome.inputs["binding_workspace_ids"] == [1, 3]


def test_lifecycle_create_diff_update_read_delete(server, databricks_emulator, deploy):
    client = databricks_emulator.account_client()
    policy = deploy(server, ServerlessBudgetPolicy)
    args = dict(policy_name="team-a", custom_tags={"team": "a"}, binding_workspace_ids=[1001])
    assert policy.up(**args) == "create"
    policy_id, outs = policy.id, policy.outputs

    assert len(policy_id) == 36 and outs["policy_id"] == policy_id
    assert outs["account_id"] == databricks_emulator.account_id
    assert outs["custom_tags"] == {"team": "a"} and outs["binding_workspace_ids"] == [1001]
    remote = client.budget_policy.get(policy_id)
    assert remote.policy_name == "team-a"
    assert {(t.key, t.value) for t in remote.custom_tags} == {("team", "a")}

    # Same inputs → no diff.
    assert policy.diff(**args).changes == "none"

    # Every field changes in place.
    changed = dict(policy_name="team-a-renamed", custom_tags={"team": "a", "env": "prod"})
    diff = policy.diff(**changed)
    assert diff.changes == "some" and diff.replaces == []
    assert policy.up(**changed) == "update" and policy.id == policy_id
    new_outs = policy.outputs
    changed_checked = policy.check(**changed).inputs
    remote = client.budget_policy.get(policy_id)
    assert remote.policy_name == "team-a-renamed"
    assert not remote.binding_workspace_ids
    assert new_outs["custom_tags"] == {"env": "prod", "team": "a"}

    # Drift made outside Pulumi shows up on refresh, and the refreshed state diffs.
    from databricks.sdk.service.billing import BudgetPolicy
    from databricks.sdk.service.compute import CustomPolicyTag

    client.budget_policy.update(
        policy_id,
        BudgetPolicy(policy_id=policy_id, policy_name="hand-edited", custom_tags=[CustomPolicyTag("team", "b")]),
    )
    read = policy.refresh()
    assert read.id == policy_id
    assert read.outs["policy_name"] == "hand-edited" and read.outs["custom_tags"] == {"team": "b"}
    assert read.inputs["policy_name"] == "hand-edited"
    assert server.diff(policy.urn, policy_id, read.outs, changed_checked).changes == "some"
    # After refresh with no drift, no diff: read's inputs are in check's shape.
    assert server.diff(policy.urn, policy_id, read.outs, server.check(policy.urn, read.inputs).inputs).changes == "none"

    # Deleted → gone on refresh; delete twice succeeds.
    assert policy.destroy_and_retry().id == ""


def test_moving_to_another_account_replaces_and_cleans_up_the_old_account(
    server, databricks_emulator, provider_server_factory, deploy
):
    policy = deploy(server, ServerlessBudgetPolicy)
    policy.up(policy_name="moved")
    urn, inputs, policy_id, outs = policy.urn, policy.inputs, policy.id, policy.outputs
    # The stack now points at another account (same accounts host, same credentials).
    other = provider_server_factory(config={**databricks_emulator.config(), "databricks:accountId": "another-account"})
    diff = other.diff(urn, policy_id, outs, other.check(urn, inputs).inputs)
    assert diff.changes == "some" and "account_id" in diff.replaces
    # Refresh and the replacement's delete of the old policy still reach the account it lives in.
    assert other.read(urn, policy_id, outs).id == policy_id
    other.delete(urn, policy_id, outs)
    assert policy_id not in {p.policy_id for p in databricks_emulator.account_client().budget_policy.list()}


def test_name_taken_is_a_clear_error_naming_the_existing_policy(server, databricks_emulator, deploy):
    first = deploy(server, ServerlessBudgetPolicy)
    first.up(policy_name="shared-name")
    first_id = first.id
    with pytest.raises(ProviderError) as error:
        deploy(server, ServerlessBudgetPolicy).up(policy_name="shared-name")
    assert "already taken" in error.value.message and first_id in error.value.message
    assert "adopt_id" in error.value.message
    names = [p.policy_name for p in databricks_emulator.account_client().budget_policy.list()]
    assert names.count("shared-name") == 1


def test_update_of_a_policy_deleted_outside_pulumi_says_to_refresh(server, databricks_emulator, deploy):
    policy = deploy(server, ServerlessBudgetPolicy)
    policy.up(policy_name="vanished")
    databricks_emulator.account_client().budget_policy.delete(policy.id)
    with pytest.raises(ProviderError) as error:
        policy.up(policy_name="vanished-2")
    assert "pulumi refresh" in error.value.message


@pytest.mark.parametrize(
    "faults",
    [
        [("429", "before"), ("503", "before")],
        [("503", "after")],  # the policy was created but the answer was lost
        [("drop", "after"), ("429", "before")],
    ],
    ids=["throttled-then-unavailable", "answer-lost", "connection-dropped-after-commit"],
)
def test_faults_on_create_leave_exactly_one_policy(server, databricks_emulator, deploy, faults):
    for kind, phase in faults:
        databricks_emulator.faults.inject(kind, "POST", "/budget-policies", phase=phase, retry_after=0)
    policy = deploy(server, ServerlessBudgetPolicy)
    assert policy.up(policy_name="flaky", custom_tags={"team": "f"}) == "create"
    policy_id = policy.id

    assert databricks_emulator.faults.fired() == len(faults)
    assert databricks_emulator.count("POST", "/budget-policies") == len(faults) + 1
    matching = [p for p in databricks_emulator.account_client().budget_policy.list() if p.policy_name == "flaky"]
    assert [p.policy_id for p in matching] == [policy_id]


def test_credentials_never_reach_the_provider_string_or_outputs(databricks_emulator, provider_server_factory):
    config_token = "dapi-config-token-4c1e9f3a2b8c"
    env_token = "dapi-env-token-7d6e5f40aa11"
    inputs = declared(policy_name="creds", custom_tags={"team": "creds"})
    provider_bytes = __import__("base64").b64decode(inputs["__provider"])

    with_config = provider_server_factory(
        config=databricks_emulator.config(token=config_token), env={"DATABRICKS_TOKEN": env_token}
    )
    urn = with_config.urn(TYPE, "creds")
    checked = with_config.check(urn, inputs)
    policy_id, outs = with_config.create(urn, checked.inputs)
    read = with_config.read(urn, policy_id, outs)

    # Token only in the environment (no config token): still works, still not stored.
    env_only = provider_server_factory(
        config={k: v for k, v in databricks_emulator.config().items() if k != "databricks:token"},
        env={"DATABRICKS_TOKEN": env_token},
    )
    env_outs = env_only.update(urn, policy_id, outs, env_only.check(urn, declared(policy_name="creds-2")).inputs)

    everything = repr([inputs, checked.inputs, outs, read.outs, read.inputs, env_outs]).encode() + provider_bytes
    for token in (config_token, env_token):
        assert token.encode() not in everything
    assert b"dapi" not in provider_bytes and b"token" not in provider_bytes.lower()
    assert env_outs["policy_name"] == "creds-2"


def test_a_create_that_never_succeeds_fails_clearly_and_leaves_nothing(
    databricks_emulator, provider_server_factory, deploy
):
    server = provider_server_factory(config={**databricks_emulator.config(), "databricks:retryTimeoutSeconds": "2"})
    databricks_emulator.faults.inject("503", "POST", "/budget-policies", count=None, retry_after=0)
    with pytest.raises(ProviderError) as error:
        deploy(server, ServerlessBudgetPolicy).up(policy_name="down")
    assert "databricks:retryTimeoutSeconds" in error.value.message
    assert databricks_emulator.count("POST", "/budget-policies") >= 2
    databricks_emulator.faults.clear()
    assert list(databricks_emulator.account_client().budget_policy.list()) == []


def test_check_accepts_values_unknown_at_preview(server, databricks_emulator):
    """`pulumi preview` sends values computed from other resources as unknowns."""
    from pulumi.runtime import rpc

    databricks_emulator.reset_requests()
    inputs = declared(policy_name="preview")
    inputs.update(custom_tags={"team": rpc.UNKNOWN}, binding_workspace_ids=[1001, rpc.UNKNOWN])
    assert server.check(server.urn(TYPE, "preview"), inputs).failures == []
    inputs.update(policy_name=rpc.UNKNOWN)
    assert server.check(server.urn(TYPE, "preview"), inputs).failures == []
    assert databricks_emulator.requests == []


def test_a_refused_call_says_what_failed_and_what_to_do(databricks_emulator, server, deploy):
    # 403 is not retried: before it was wrapped it reached users as the SDK's bare message.
    databricks_emulator.faults.inject(
        "error",
        "POST",
        "/budget-policies",
        status=403,
        error_code="PERMISSION_DENIED",
        message="You are not allowed to call this API, consider getting billing.admin role",
    )
    with pytest.raises(ProviderError) as error:
        deploy(server, ServerlessBudgetPolicy).up(policy_name="denied")
    message = error.value.message
    assert "Unable to create budget policy 'denied': PERMISSION_DENIED: You are not allowed" in message
    assert "needs the billing admin role" in message and "\n" not in message.strip()
    assert list(databricks_emulator.account_client().budget_policy.list()) == []


# ---- spurious "Duplicate policy name found." (terraform-provider-databricks #4600) -----------


def test_a_spurious_duplicate_name_answer_is_retried_and_makes_one_policy(server, databricks_emulator):
    fault = databricks_emulator.faults.spurious_duplicate(count=2)
    policy_id, outs = server.apply(server.urn(TYPE, "busy"), declared(policy_name="busy-hour"))
    assert fault.fired == 2
    assert databricks_emulator.count("POST", "/budget-policies", status=409) == 2
    assert databricks_emulator.count("POST", "/budget-policies", status=200) == 1
    named = [
        p.policy_id for p in databricks_emulator.account_client().budget_policy.list() if p.policy_name == "busy-hour"
    ]
    assert named == [policy_id]
    # Every attempt carried the same request_id: an attempt that did land is never made twice.
    request_ids = {r["body"]["request_id"] for r in databricks_emulator.requests if r["method"] == "POST"}
    assert len(request_ids) == 1


def test_a_duplicate_name_answer_that_never_stops_fails_clearly_without_the_adopt_hint(server, databricks_emulator):
    databricks_emulator.faults.spurious_duplicate(count=None)
    with pytest.raises(ProviderError) as error:
        server.apply(server.urn(TYPE, "storm"), declared(policy_name="storm"))
    message = error.value.message
    assert "Unable to create budget policy 'storm'" in message
    assert "no policy has that name" in message and "import" not in message
    databricks_emulator.faults.clear()
    assert list(databricks_emulator.account_client().budget_policy.list()) == []


# ---- clearing the last tag / binding: PATCH leaves empty lists out -----------------------------


@pytest.mark.parametrize("omitted_lists", ["clear", "keep"])
def test_clearing_the_last_tag_and_binding_is_verified(
    databricks_emulator_factory, provider_server_factory, omitted_lists
):
    emulator = databricks_emulator_factory(omitted_lists=omitted_lists)
    server = provider_server_factory(config=emulator.config())
    urn = server.urn(TYPE, "clear")
    policy_id, outs = server.apply(
        urn, declared(policy_name="clear", custom_tags={"team": "a"}, binding_workspace_ids=[1001])
    )
    cleared = server.check(urn, declared(policy_name="clear"), outs).inputs
    assert server.diff(urn, policy_id, outs, cleared).changes == "some"
    remote = lambda: emulator.account_client().budget_policy.get(policy_id)  # noqa: E731
    if omitted_lists == "clear":
        outs = server.update(urn, policy_id, outs, cleared)
        assert (outs["custom_tags"], outs["binding_workspace_ids"]) == ({}, [])
        assert not remote().custom_tags and not remote().binding_workspace_ids
        return
    # A server that reads an absent list as "unchanged": the provider must not report success.
    with pytest.raises(ProviderError) as error:
        server.update(urn, policy_id, outs, cleared)
    assert f"Unable to update budget policy '{policy_id}'" in error.value.message
    assert "custom_tags and binding_workspace_ids" in error.value.message
    assert remote().custom_tags, "the server really kept them"


def test_a_refused_update_names_the_policy_and_the_role_needed(databricks_emulator, server):
    urn = server.urn(TYPE, "managed")
    policy_id, outs = server.apply(urn, declared(policy_name="managed"))
    databricks_emulator.faults.error(
        "PATCH",
        "/budget-policies/",
        status=403,
        error_code="PERMISSION_DENIED",
        message="You are not allowed to call this API, consider getting billing.admin role",
    )
    with pytest.raises(ProviderError) as error:
        server.update(urn, policy_id, outs, server.check(urn, declared(policy_name="renamed"), outs).inputs)
    assert f"Unable to update budget policy '{policy_id}': PERMISSION_DENIED" in error.value.message
    assert "Manager (roles/budgetPolicy.manager) on this budget policy" in error.value.message
