"""What TokenBudgetEvaluator reports and where it runs: messages, metrics, the experiment."""

from __future__ import annotations

import contextlib
import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from evaluation import TOKEN_BUDGET_TAG, TokenBudgetEvaluator, TokenBudgetExceeded


def model_using(tokens: int):
    def model(question: str) -> dict:
        return {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }

    return model


@pytest.fixture
def process_tracking_uri(tmp_path, monkeypatch):
    """The process's tracking URI (what mlflow.genai.evaluate() uses by default)."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", "1")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path}/process.db"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def test_from_experiment_evaluates_in_that_experiment_on_its_server(process_tracking_uri, tmp_path):
    budget_server = f"sqlite:///{tmp_path}/budgets.db"
    client = MlflowClient(tracking_uri=budget_server)
    experiment_id = client.create_experiment("/Users/me/evals", tags={TOKEN_BUDGET_TAG: "1000"})

    budget = TokenBudgetEvaluator.from_experiment("/Users/me/evals", model=model_using(10), tracking_uri=budget_server)
    result = budget.evaluate([{"inputs": {"question": "q1"}}, {"inputs": {"question": "q2"}}])

    run = client.get_run(result.run_id)
    assert run.info.experiment_id == experiment_id
    assert run.data.metrics["token_budget_used"] == 20
    assert mlflow.get_tracking_uri() == process_tracking_uri  # left as it was


def exhausted(max_tokens: int, tokens_per_call: int, calls: int, **kwargs) -> TokenBudgetEvaluator:
    budget = TokenBudgetEvaluator(model_using(tokens_per_call), max_tokens=max_tokens, **kwargs)
    for number in range(calls):
        with contextlib.suppress(TokenBudgetExceeded):
            budget(question=f"q{number}")
    return budget


def enforced_message(budget: TokenBudgetEvaluator) -> str:
    with pytest.raises(TokenBudgetExceeded) as raised:
        budget.enforce()
    return str(raised.value)


@pytest.fixture(autouse=True)
def tracing_off(process_tracking_uri):
    # After the tracking URI is set: switching tracing off opens the store (else ./mlflow.db).
    mlflow.tracing.disable()
    yield
    mlflow.tracing.enable()


def test_costs_keep_their_significant_digits(process_tracking_uri):
    # 10 tokens at $0.50 per 1k tokens: half a cent.
    message = enforced_message(exhausted(10, 10, 2, cost_per_1k_tokens=0.5))
    assert "estimated cost $0.005" in message


def test_exactly_at_the_ceiling_the_budget_is_reached_not_exceeded(process_tracking_uri):
    message = enforced_message(exhausted(100, 50, 3))  # 100 used, the third call refused
    assert message.startswith("Token budget reached: 100 tokens used of max_tokens=100")
    over = enforced_message(exhausted(90, 50, 3))
    assert over.startswith("Token budget exceeded: 100 tokens used of max_tokens=90")


def test_warn_mode_logs_how_many_calls_ran_over_budget(process_tracking_uri, caplog):
    budget = exhausted(100, 50, 5, on_exceed="warn")  # calls 3, 4 and 5 start over the ceiling
    with mlflow.start_run() as run:
        budget.log_to_mlflow(run.info.run_id)
    assert MlflowClient().get_run(run.info.run_id).data.metrics["token_budget_over_budget_calls"] == 3
    with caplog.at_level(logging.WARNING, logger="evaluation.token_budget"):
        budget.enforce()
    assert "3 calls made over budget" in caplog.text
