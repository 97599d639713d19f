"""The test engine (harness/engine.py) does what the Pulumi engine documents, so a provider
bug that the engine would expose is not hidden by a kinder test engine."""

from __future__ import annotations

import uuid

import pulumi
from pulumi.runtime import rpc

from harness.engine import LocalEngine, plaintext_occurrences
from harness.mlflow_server import provider_env
from providers import BudgetAlertWebhook, BudgetPolicyGrants, ExperimentPolicyTag, ServerlessBudgetPolicy
from providers._base import is_unknown


def test_the_provider_server_takes_no_secrets(databricks_emulator, provider_server_factory):
    assert provider_server_factory(config=databricks_emulator.config()).accepts_secrets is False


def test_secrets_reach_the_provider_plain_and_stay_secrets_in_the_raw_state(
    databricks_emulator, provider_server_factory
):
    """A secret nested in an input (a tag value) is stripped for the provider, and the whole
    property is kept as a secret, as the engine does for a provider with acceptSecrets=false."""
    secret = "cost-center-secret-7731"

    def program():
        ServerlessBudgetPolicy(
            "team", policy_name="team", custom_tags={"team": "a", "cost-center": pulumi.Output.secret(secret)}
        )

    engine = LocalEngine(provider_server_factory(config=databricks_emulator.config()), program=program)
    engine.up({})
    created = databricks_emulator.account_client().budget_policy.list()
    assert {(t.key, t.value) for p in created for t in p.custom_tags} == {("team", "a"), ("cost-center", secret)}
    assert plaintext_occurrences(engine.raw_state(), secret) == []
    assert engine.up({}).summary() == {"same": 1}


def test_the_stack_config_is_in_the_raw_state_as_the_default_providers_inputs(
    databricks_emulator, provider_server_factory
):
    """As ``Target.GetPackageConfig`` gives a dynamic provider the whole config: plaintext config
    is plaintext in the state, secret config stays a secret."""
    config = {**databricks_emulator.config(), "ml-budgets:note": "plain-config-4431"}

    def program():
        ServerlessBudgetPolicy("team", policy_name="team-config")

    engine = LocalEngine(provider_server_factory(config=databricks_emulator.config()), program=program)
    engine.up(config, secret_keys=["databricks:token"])
    provider = engine.raw_state()[0]
    assert (provider["type"], provider["name"]) == ("pulumi:providers:pulumi-python", "default")
    assert engine.plaintext("plain-config-4431") == ["[0].inputs.ml-budgets:note", "[0].outputs.ml-budgets:note"]
    assert engine.plaintext(config["databricks:token"]) == []
    engine.destroy()


def test_additional_secret_outputs_are_secrets_in_the_raw_state(sqlite_tracking_uri, provider_server_factory):
    secret = "whsec-signing-key-5521"

    def program():
        BudgetAlertWebhook("hook", webhook_name="alerts", url="https://hooks.example.com/x", secret=secret)

    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    engine = LocalEngine(provider, program=program)
    engine.up({})
    (entry,) = [e for e in engine.raw_state() if e["name"] == "hook"]
    secret_hash = entry["outputs"]["secret_hash"]
    assert rpc.is_rpc_secret(secret_hash), "secret_hash is listed in additional_secret_outputs"
    assert plaintext_occurrences(engine.raw_state(), secret) == []
    assert plaintext_occurrences(engine.raw_state(), secret_hash["value"]) == []
    engine.destroy()


def test_a_replacement_the_provider_wants_deleted_first_is(sqlite_tracking_uri, provider_server_factory):
    """An experiment named first by id, then by name, is the same tag: create-before-delete would
    set it and then remove it; the provider asks for delete-before-replace."""
    from mlflow import MlflowClient

    name = f"/Users/lead@example.com/evals-{uuid.uuid4().hex[:8]}"
    experiment_id = MlflowClient(sqlite_tracking_uri).create_experiment(name)
    target = {"experiment": experiment_id}

    def program():
        ExperimentPolicyTag("tag", experiment=target["experiment"], policy_id="policy-1")

    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    engine = LocalEngine(provider, program=program)
    engine.up({})
    target["experiment"] = name
    assert engine.up({}).summary() == {"replace": 1}
    assert provider.calls[-2:] == ["Delete", "Create"]
    assert (
        MlflowClient(sqlite_tracking_uri).get_experiment(experiment_id).tags["mlflow.workload_creation_policy_id"]
        == "policy-1"
    )


def test_the_delete_before_replace_resource_option_is_honoured(sqlite_tracking_uri, provider_server_factory):
    from mlflow import MlflowClient

    client = MlflowClient(sqlite_tracking_uri)
    experiment_ids = [client.create_experiment(f"dbr-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    target = {"experiment": experiment_ids[0]}

    def program():
        opts = pulumi.ResourceOptions(delete_before_replace=True)
        ExperimentPolicyTag("tag", experiment=target["experiment"], policy_id="policy-1", key="team.policy", opts=opts)

    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    engine = LocalEngine(provider, program=program)
    engine.up({})
    target["experiment"] = experiment_ids[1]
    calls = len(provider.calls)
    assert engine.up({}).summary() == {"replace": 1}
    assert [c for c in provider.calls[calls:] if c in ("Create", "Delete")] == ["Delete", "Create"]


def test_preview_of_a_change_checks_and_diffs_with_unknowns_and_never_writes(
    databricks_emulator, provider_server_factory
):
    shape = {"name": "team", "extra": False}

    def program():
        policy = ServerlessBudgetPolicy("team", policy_name=shape["name"])
        BudgetPolicyGrants("team-grants", policy_id=policy.policy_id, users=["groups/search"])
        if shape["extra"]:
            extra = ServerlessBudgetPolicy("extra", policy_name="extra")
            BudgetPolicyGrants("extra-grants", policy_id=extra.policy_id, users=["groups/extra"])

    provider = provider_server_factory(config=databricks_emulator.config())
    engine = LocalEngine(provider, program=program)
    engine.up({})
    shape.update(name="team-renamed", extra=True)
    databricks_emulator.reset_requests()
    calls, checks = len(provider.calls), len(engine.checked)

    preview = engine.preview({})

    assert set(provider.calls[calls:]) == {"Check", "Diff"}
    assert [r for r in databricks_emulator.requests if r["method"] != "GET"] == []
    assert preview.operations[("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "team")] == "update"
    assert preview.operations[("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "extra")] == "create"
    # The grants of the renamed policy may change (their policy_id is unknown), but are not shown
    # as replaced: the policy keeps its id.
    assert preview.operations[("pulumi-python:dynamic/mlbudgets:BudgetPolicyGrants", "team-grants")] == "update"
    sent = {name: inputs for (_, name), inputs in engine.checked[checks:]}
    assert is_unknown(sent["extra-grants"]["policy_id"]), "a policy not created yet has no id at preview"
    assert is_unknown(sent["team-grants"]["policy_id"]), "an updated policy's computed outputs are unknown at preview"
    assert (
        engine.state[("pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy", "team")].outputs["policy_name"]
        == "team"
    )
    # The up that follows finds the grants unchanged once the id is known.
    applied = engine.up({})
    assert applied.operations[("pulumi-python:dynamic/mlbudgets:BudgetPolicyGrants", "team-grants")] == "same"
