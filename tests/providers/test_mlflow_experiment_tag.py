"""ExperimentTag (any key, any value) through the SDK's provider server, and the state of stacks
deployed before it existed."""

from __future__ import annotations

import uuid

import pytest

from contracts import ON_EXCEED_TAG, TOKEN_BUDGET_TAG
from harness.deployment import declare, type_token
from providers import ExperimentPolicyTag, ExperimentTag
from providers.experiment_policy_tag import DEFAULT_KEY
from providers.experiment_tag import ExperimentTagProvider

# The `__provider` that ExperimentPolicyTag resources carry in existing state, as the code before
# ExperimentTag existed pickled it (by reference: module providers.experiment_policy_tag, class
# ExperimentPolicyTagProvider).  Delete and refresh of those resources use this very string.
OLD_POLICY_TAG_PROVIDER = (
    "gASVRgAAAAAAAACMH3Byb3ZpZGVycy5leHBlcmltZW50X3BvbGljeV90YWeUjBtFeHBlcmltZW50UG9saWN5VGFnUHJvdmlkZXKUk5QpgZQu"
)


@pytest.fixture
def experiment_id(mlflow_backend):
    return mlflow_backend.tracking_store().create_experiment(f"/Users/me@corp.com/evals-{uuid.uuid4().hex[:8]}")


def tags_of(backend, experiment_id):
    return backend.tracking_store().get_experiment(experiment_id).tags


def test_check_names_what_is_wrong(mlflow_backend):
    provider = mlflow_backend.provider
    urn = provider.urn(type_token(ExperimentTag), "t")
    ok = provider.check(urn, declare(ExperimentTag, "t", experiment="1", key=ON_EXCEED_TAG, value="warn"))
    assert ok.failures == [] and ok.inputs["value"] == "warn"
    bad = provider.check(urn, declare(ExperimentTag, "t", experiment="1", key="bad*key", value="v" * 20_001))
    assert bad.failed_properties() == {"key", "value"}


def test_lifecycle(mlflow_backend, deploy, experiment_id):
    tag = deploy(mlflow_backend.provider, ExperimentTag)
    args = dict(experiment=experiment_id, key=TOKEN_BUDGET_TAG, value="5000")
    assert tag.up(**args) == "create"
    assert tags_of(mlflow_backend, experiment_id)[TOKEN_BUDGET_TAG] == "5000"
    assert tag.outputs["value"] == "5000" and tag.outputs["experiment_id"] == experiment_id
    assert tag.up(**args) == "same"
    assert tag.up(**{**args, "value": "7000"}) == "update"
    assert tags_of(mlflow_backend, experiment_id)[TOKEN_BUDGET_TAG] == "7000"
    assert tag.refresh().outs["value"] == "7000"
    tag.destroy()
    assert TOKEN_BUDGET_TAG not in tags_of(mlflow_backend, experiment_id)


def test_a_tag_recorded_by_experiment_policy_tag_is_no_change_as_an_experiment_tag():
    # EvaluationBudget's token ceiling was an ExperimentPolicyTag (value in `policy_id`); through
    # its alias the engine diffs those outputs with the ExperimentTag provider.
    olds = {"experiment": "1", "policy_id": "2000000", "key": TOKEN_BUDGET_TAG, "tracking_uri": "sqlite:///x"}
    news = {"experiment": "1", "value": "2000000", "key": TOKEN_BUDGET_TAG, "tracking_uri": "sqlite:///x"}
    assert ExperimentTagProvider().diff("1/k", olds, news).changes is False
    assert ExperimentTagProvider().diff("1/k", olds, {**news, "value": "3"}).changes is True


def test_state_written_before_experiment_tag_still_refreshes_and_deletes(mlflow_backend, deploy, experiment_id):
    tag = deploy(mlflow_backend.provider, ExperimentPolicyTag)
    tag.up(experiment=experiment_id, policy_id="11111111-2222-3333-4444-555555555555")
    old_state = {**tag.outputs, "__provider": OLD_POLICY_TAG_PROVIDER}
    assert tag.outputs["__provider"] == OLD_POLICY_TAG_PROVIDER, "the provider class must not move"

    read = mlflow_backend.provider.read(tag.urn, tag.id, old_state)
    assert read.id == tag.id and read.outs["policy_id"] == "11111111-2222-3333-4444-555555555555"
    mlflow_backend.provider.delete(tag.urn, tag.id, old_state)
    assert DEFAULT_KEY not in tags_of(mlflow_backend, experiment_id)
    tag.id = ""
