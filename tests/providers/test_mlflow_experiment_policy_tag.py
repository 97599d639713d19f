"""ExperimentPolicyTag through the SDK's provider server, against SQLite and a running server."""

from __future__ import annotations

import uuid

import pytest

from harness.deployment import Deployment
from harness.provider_server import ProviderError
from providers import ExperimentPolicyTag
from providers.experiment_policy_tag import DEFAULT_KEY, ExperimentPolicyTagProvider

POLICY_A = "11111111-2222-3333-4444-555555555555"
POLICY_B = "66666666-7777-8888-9999-000000000000"


@pytest.fixture
def experiment(mlflow_backend):
    """A fresh experiment named like a Databricks workspace path; yields (name, id)."""
    name = f"/Users/me@corp.com/evals-{uuid.uuid4().hex[:8]}"
    experiment_id = mlflow_backend.tracking_store().create_experiment(name)
    return name, experiment_id


def tags_of(backend, experiment_id):
    return backend.tracking_store().get_experiment(experiment_id).tags


def check(provider, **kwargs):
    """Check as `pulumi preview` runs it, through the deployment driver."""
    return Deployment(provider, ExperimentPolicyTag).check(**kwargs)


# --- check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, prop",
    [
        ({"experiment": ""}, "experiment"),
        ({"policy_id": " "}, "policy_id"),
        ({"key": "bad*key"}, "key"),
        ({"key": "/absolute"}, "key"),
        ({"key": "a/../b"}, "key"),
        ({"key": "k" * 251}, "key"),
    ],
)
def test_check_rejects(mlflow_backend, kwargs, prop):
    base = {"experiment": "/Users/me@corp.com/evals", "policy_id": POLICY_A}
    assert check(mlflow_backend.provider, **{**base, **kwargs}).failed_properties() == {prop}


def test_check_defaults_the_key(mlflow_backend):
    inputs = check(mlflow_backend.provider, experiment="42", policy_id=POLICY_A).inputs
    assert inputs["key"] == DEFAULT_KEY == "mlflow.workload_creation_policy_id"


# --- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["name", "id"])
def test_lifecycle(mlflow_backend, deploy, experiment, by):
    name, experiment_id = experiment
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    args = dict(experiment=name if by == "name" else experiment_id, policy_id=POLICY_A)
    assert tag.up(**args) == "create"
    assert tags_of(mlflow_backend, experiment_id)[DEFAULT_KEY] == POLICY_A
    assert tag.outputs["experiment_id"] == experiment_id
    assert tag.outputs["experiment"] == args["experiment"]

    assert tag.up(**args) == "same"
    tag.refresh()
    assert tag.diff(**args).changes == "none"

    assert tag.up(**{**args, "policy_id": POLICY_B}) == "update"
    assert tags_of(mlflow_backend, experiment_id)[DEFAULT_KEY] == POLICY_B

    assert tag.destroy_and_retry().id == ""  # gone, and deleting it again is fine
    assert DEFAULT_KEY not in tags_of(mlflow_backend, experiment_id)


def test_custom_key(mlflow_backend, deploy, experiment):
    name, experiment_id = experiment
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    tag.up(experiment=name, policy_id=POLICY_A, key="team.budget_policy_id")
    assert tags_of(mlflow_backend, experiment_id)["team.budget_policy_id"] == POLICY_A


def test_missing_experiment_is_a_clear_error(mlflow_backend, deploy):
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    with pytest.raises(ProviderError) as error:
        tag.up(experiment="/Users/me@corp.com/does-not-exist", policy_id=POLICY_A)
    assert "no experiment with id or name '/Users/me@corp.com/does-not-exist'" in error.value.message
    assert "Create it first or fix the name." in error.value.message


def test_read_reports_drift_then_disappearance(mlflow_backend, deploy, experiment):
    from mlflow.entities import ExperimentTag

    name, experiment_id = experiment
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    args = dict(experiment=name, policy_id=POLICY_A)
    tag.up(**args)
    store = mlflow_backend.tracking_store()
    store.set_experiment_tag(experiment_id, ExperimentTag(DEFAULT_KEY, POLICY_B))

    read = tag.refresh()
    assert read.outs["policy_id"] == POLICY_B
    assert read.inputs["experiment"] == name
    assert tag.up(**args) == "update"
    assert tags_of(mlflow_backend, experiment_id)[DEFAULT_KEY] == POLICY_A

    store.delete_experiment_tag(experiment_id, DEFAULT_KEY)
    assert tag.refresh().id == ""
    assert tag.up(**args) == "create"


def test_a_deleted_experiment_takes_the_tag_with_it(mlflow_backend, deploy, experiment):
    name, experiment_id = experiment
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    tag.up(experiment=name, policy_id=POLICY_A)
    mlflow_backend.tracking_store().delete_experiment(experiment_id)
    outputs = dict(tag.outputs)
    mlflow_backend.provider.delete(tag.urn, tag.id, outputs)  # nothing to remove: fine
    assert tag.refresh().id == ""


def test_moving_to_another_experiment_replaces_delete_first(mlflow_backend, deploy, experiment):
    name, experiment_id = experiment
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    tag.up(experiment=name, policy_id=POLICY_A)
    # The same experiment named by id: a replacement that must not end without the tag.
    diff = tag.diff(experiment=experiment_id, policy_id=POLICY_A)
    assert diff.replaces == ["experiment"]
    assert tag.up(experiment=experiment_id, policy_id=POLICY_A) == "replace"
    assert tags_of(mlflow_backend, experiment_id)[DEFAULT_KEY] == POLICY_A


def test_replacement_is_delete_before_create():
    provider = ExperimentPolicyTagProvider()
    olds = {"experiment": "a", "policy_id": "p", "key": DEFAULT_KEY, "tracking_uri": "sqlite:///x"}
    result = provider.diff("1/k", olds, {**olds, "experiment": "b"})
    assert (result.replaces, result.delete_before_replace) == (["experiment"], True)
    assert provider.diff("1/k", olds, dict(olds)).changes is False
