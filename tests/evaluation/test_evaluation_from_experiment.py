"""TokenBudgetEvaluator.from_experiment(): the budget set as code arrives as an experiment tag."""

from __future__ import annotations

import itertools

import pytest
from mlflow.tracking import MlflowClient

from evaluation import (
    COST_PER_1K_TOKENS_TAG,
    ON_EXCEED_TAG,
    TOKEN_BUDGET_TAG,
    TokenBudgetEvaluator,
)

_names = itertools.count()


def model(question: str) -> str:
    return "answer"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    # Passed explicitly: these tests leave the global tracking URI alone.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def client(tracking_uri):
    return MlflowClient(tracking_uri=tracking_uri)


def experiment_with(client: MlflowClient, tags: dict[str, str]) -> tuple[str, str]:
    name = f"/Users/me@corp.com/evals-{next(_names)}"
    return name, client.create_experiment(name, tags=tags)


def test_reads_the_budget_from_the_tags_of_an_experiment_named_by_path(client, tracking_uri):
    name, _ = experiment_with(
        client,
        {TOKEN_BUDGET_TAG: "50000", ON_EXCEED_TAG: "warn", COST_PER_1K_TOKENS_TAG: "0.75"},
    )

    budget = TokenBudgetEvaluator.from_experiment(name, model=model, tracking_uri=tracking_uri)

    assert (budget.max_tokens, budget.on_exceed, budget.cost_per_1k_tokens) == (50000, "warn", 0.75)
    assert budget.model is model


def test_finds_the_experiment_by_id_and_defaults_the_optional_tags(client):
    _, experiment_id = experiment_with(client, {TOKEN_BUDGET_TAG: "1200"})

    for reference in (experiment_id, int(experiment_id)):
        budget = TokenBudgetEvaluator.from_experiment(reference, model=model, client=client)
        assert (budget.max_tokens, budget.on_exceed, budget.cost_per_1k_tokens) == (
            1200,
            "raise",
            None,
        )


def test_arguments_win_over_the_optional_tags(client):
    name, _ = experiment_with(client, {TOKEN_BUDGET_TAG: "900", ON_EXCEED_TAG: "warn", COST_PER_1K_TOKENS_TAG: "3"})

    budget = TokenBudgetEvaluator.from_experiment(
        name, model=model, client=client, on_exceed="raise", cost_per_1k_tokens=0.0
    )

    assert (budget.max_tokens, budget.on_exceed, budget.cost_per_1k_tokens) == (900, "raise", 0.0)


@pytest.mark.parametrize("missing", ["/Users/nobody@corp.com/evals", "987654321"])
def test_a_missing_experiment_is_a_clear_error(client, missing):
    expected = f"No active MLflow experiment with id or name '{missing}'"
    with pytest.raises(ValueError, match=expected):
        TokenBudgetEvaluator.from_experiment(missing, model=model, client=client)


def test_a_deleted_experiment_is_a_clear_error(client):
    name, experiment_id = experiment_with(client, {TOKEN_BUDGET_TAG: "100"})
    client.delete_experiment(experiment_id)

    with pytest.raises(ValueError, match="No active MLflow experiment"):
        TokenBudgetEvaluator.from_experiment(name, model=model, client=client)


def test_an_experiment_without_the_budget_tag_is_a_clear_error(client):
    name, _ = experiment_with(client, {"team": "search"})

    with pytest.raises(ValueError, match=f"has no '{TOKEN_BUDGET_TAG}' tag"):
        TokenBudgetEvaluator.from_experiment(name, model=model, client=client)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({TOKEN_BUDGET_TAG: "lots"}, "must be a positive whole number of tokens"),
        ({TOKEN_BUDGET_TAG: "0"}, "must be a positive whole number of tokens"),
        ({TOKEN_BUDGET_TAG: "-500"}, "must be a positive whole number of tokens"),
        ({TOKEN_BUDGET_TAG: "12.5"}, "must be a positive whole number of tokens"),
        ({TOKEN_BUDGET_TAG: "100", ON_EXCEED_TAG: "explode"}, "must be 'raise' or 'warn'"),
        ({TOKEN_BUDGET_TAG: "100", COST_PER_1K_TOKENS_TAG: "free"}, "must be a number of dollars"),
    ],
)
def test_bad_tag_values_are_clear_errors(client, tags, message):
    name, _ = experiment_with(client, tags)

    with pytest.raises(ValueError, match=message):
        TokenBudgetEvaluator.from_experiment(name, model=model, client=client)


def test_whole_numbers_written_as_floats_are_accepted(client):
    name, _ = experiment_with(client, {TOKEN_BUDGET_TAG: " 2000.0 "})

    assert TokenBudgetEvaluator.from_experiment(name, model=model, client=client).max_tokens == 2000


def test_client_and_tracking_uri_together_is_an_error(client, tracking_uri):
    with pytest.raises(ValueError, match="either client or tracking_uri"):
        TokenBudgetEvaluator.from_experiment("any", model=model, client=client, tracking_uri=tracking_uri)
