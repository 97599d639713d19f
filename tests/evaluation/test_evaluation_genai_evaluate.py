"""TokenBudgetEvaluator inside a real mlflow.genai.evaluate() on a sqlite store, offline."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time

import mlflow
import pytest
from mlflow.tracing.constant import SpanAttributeKey
from mlflow.tracking import MlflowClient

from evaluation import (
    TOKEN_BUDGET_TAG,
    TokenBudgetEvaluator,
    TokenBudgetExceeded,
    current_call,
)

ROWS = 200
WORKERS = 8
MAX_TOKENS = 4_000

BUDGET_METRICS = [
    "token_budget_used",
    "token_budget_input_tokens",
    "token_budget_output_tokens",
    "token_budget_remaining",
    "token_budget_calls",
    "token_budget_exceeded",
    "token_budget_estimated_cost_usd",
]


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    previous_uri = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        env.setenv("MLFLOW_GENAI_EVAL_PREDICT_RATE_LIMIT", "0")  # default: adaptive, from 10/s
        env.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", str(WORKERS))
        env.delenv("MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION", raising=False)
        mlflow.set_tracking_uri(uri)
        yield uri
        mlflow.set_tracking_uri(previous_uri)


@pytest.fixture
def experiment_id(tracking_uri, request, monkeypatch):
    experiment_id = MlflowClient().create_experiment(request.node.name)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    return experiment_id


@pytest.fixture
def network_attempts(monkeypatch):
    """Refuse and record any connection off this machine (sqlite needs none)."""
    attempts = []
    real_connect = socket.socket.connect

    def connect_locally_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network access in an offline test: {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect_locally_only)
    yield attempts
    assert attempts == []


@dataclasses.dataclass(frozen=True)
class LoggedCall:
    start_index: int
    question: str
    sequence: int  # the evaluator's admission number for this call
    admitted_at_used: int
    finished_tokens_at_start: int  # tokens of the model calls that had returned by then
    input_tokens: int
    output_tokens: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class FakeChatModel:
    """A local stand-in for a paid chat API: OpenAI-style responses, deterministic usage."""

    largest_call = 20 + 16 + 30 + 10

    def __init__(self, latency_s: float = 0.002):
        self.latency_s = latency_s
        self.log: list[LoggedCall] = []
        self.most_concurrent = 0
        self._running = 0
        self._finished_tokens = 0
        self._lock = threading.Lock()

    def __call__(self, question: str) -> dict:
        number = int(question.removeprefix("q"))
        input_tokens, output_tokens = 20 + number % 17, 30 + number % 11
        admission = current_call()
        with self._lock:
            self.log.append(
                LoggedCall(
                    start_index=len(self.log),
                    question=question,
                    sequence=admission.sequence,
                    admitted_at_used=admission.used_at_admission,
                    finished_tokens_at_start=self._finished_tokens,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                )
            )
            self._running += 1
            self.most_concurrent = max(self.most_concurrent, self._running)
        time.sleep(self.latency_s)
        with self._lock:
            self._running -= 1
            self._finished_tokens += input_tokens + output_tokens
        answer = {"role": "assistant", "content": f"re {question}"}
        return {
            "object": "chat.completion",
            "model": "fake-frontier-model",
            "choices": [{"index": 0, "message": answer}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }


def rows(count: int) -> list[dict]:
    return [{"inputs": {"question": f"q{number}"}} for number in range(count)]


def budget_metrics_of_run(run_id: str) -> dict[str, float]:
    metrics = MlflowClient().get_run(run_id).data.metrics
    return {name: metrics[name] for name in BUDGET_METRICS}


def expected_budget_metrics(budget: TokenBudgetEvaluator) -> dict[str, float]:
    return {name: budget.snapshot().as_metrics()[name] for name in BUDGET_METRICS}


@pytest.mark.slow
def test_raise_mode_stops_new_calls_at_the_ceiling_of_a_real_evaluate(experiment_id, network_attempts):
    model = FakeChatModel()
    budget = TokenBudgetEvaluator(model, max_tokens=MAX_TOKENS, on_exceed="raise", cost_per_1k_tokens=0.5)

    with pytest.raises(TokenBudgetExceeded, match="Token budget exceeded") as raised:
        budget.evaluate(rows(ROWS))

    result, snapshot = raised.value.result, budget.snapshot()
    admitted = [call for call in budget.calls() if call.status != "refused"]
    # Exactly the admitted calls reached the model, and the totals are their usage, exactly.
    assert sorted(call.sequence for call in model.log) == [call.sequence for call in admitted]
    assert snapshot.used_tokens == sum(call.tokens for call in model.log)
    assert snapshot.input_tokens == sum(call.input_tokens for call in model.log)
    assert snapshot.output_tokens == sum(call.output_tokens for call in model.log)
    # No call started once the tokens used reached the ceiling ...
    assert all(call.admitted_at_used < MAX_TOKENS for call in model.log)
    # ... where "used" was a real running total, never ahead of the calls that had returned.
    running_totals = {0} | {call.used_after for call in admitted}
    assert all(call.admitted_at_used in running_totals for call in model.log)
    assert all(call.admitted_at_used <= call.finished_tokens_at_start for call in model.log)
    # The ceiling was reached; only calls already in flight could carry the total past it.
    assert MAX_TOKENS <= snapshot.used_tokens < MAX_TOKENS + WORKERS * model.largest_call
    assert snapshot.refused_calls == ROWS - len(model.log) > 0
    assert model.most_concurrent > 1

    table = result.result_df
    assert len(table) == ROWS
    assert (table["state"] == "ERROR").sum() == snapshot.refused_calls
    refused_trace_id = table.loc[table["state"] == "ERROR", "trace_id"].iloc[0]
    refused_span = MlflowClient().get_trace(refused_trace_id).data.spans[0]
    assert "refused before it started" in refused_span.status.description

    assert table["token_budget_used/value"].sum() == snapshot.used_tokens
    assert result.metrics["token_budget_used/total"] == snapshot.used_tokens
    assert result.metrics["token_budget_remaining/min"] == 0
    assert result.metrics["token_budget_exceeded/max"] == 1
    assert not result.passed and "token_budget_exceeded" in result.reason
    assert budget_metrics_of_run(result.run_id) == expected_budget_metrics(budget)
    assert budget_metrics_of_run(result.run_id)["token_budget_exceeded"] == 1
    run = MlflowClient().get_run(result.run_id)
    assert run.info.status == "FAILED"
    # MLflow's lineage tag names the model, not the budget wrapper.
    assert run.data.tags["mlflow.genaiEvaluate.agent.function"].endswith(".FakeChatModel")


@pytest.mark.slow
def test_warn_mode_runs_every_row_of_a_real_evaluate_and_flags_the_overrun(experiment_id, network_attempts, caplog):
    model = FakeChatModel()
    budget = TokenBudgetEvaluator(model, max_tokens=MAX_TOKENS, on_exceed="warn", cost_per_1k_tokens=0.5)

    with caplog.at_level(logging.WARNING, logger="evaluation.token_budget"):
        result = budget.evaluate(rows(ROWS))

    snapshot = budget.snapshot()
    assert sorted(call.question for call in model.log) == sorted(f"q{n}" for n in range(ROWS))
    assert snapshot.calls == ROWS and snapshot.refused_calls == 0
    assert snapshot.used_tokens == sum(call.tokens for call in model.log) > MAX_TOKENS
    over_budget = [call for call in model.log if call.admitted_at_used >= MAX_TOKENS]
    assert snapshot.over_budget_calls == len(over_budget) > 0
    assert model.most_concurrent > 1

    table = result.result_df
    assert len(table) == ROWS and (table["state"] == "OK").all()
    assert table["token_budget_used/value"].sum() == snapshot.used_tokens
    exceeded_rows = [c for c in budget.calls() if c.over_budget or c.used_after > MAX_TOKENS]
    assert table["token_budget_exceeded/value"].sum() == len(exceeded_rows)
    assert result.metrics["token_budget_used/total"] == snapshot.used_tokens
    assert result.metrics["token_budget_exceeded/max"] == 1
    assert budget_metrics_of_run(result.run_id) == expected_budget_metrics(budget)
    assert budget_metrics_of_run(result.run_id)["token_budget_exceeded"] == 1
    assert MlflowClient().get_run(result.run_id).info.status == "FINISHED"
    assert any("Token budget exceeded" in record.getMessage() for record in caplog.records)


def test_usage_recorded_on_traced_spans_is_counted_once(experiment_id, network_attempts):
    def client_with_autologging(question: str) -> str:
        # What an autologged client (OpenAI, LangChain, ...) leaves in the trace.
        with mlflow.start_span(name="chat.completions", span_type="CHAT_MODEL") as span:
            span.set_attribute(
                SpanAttributeKey.CHAT_USAGE,
                {"input_tokens": 12, "output_tokens": 8, "total_tokens": 20},
            )
        return f"plain text answer to {question}"

    budget = TokenBudgetEvaluator(client_with_autologging, max_tokens=10_000)
    result = budget.evaluate(rows(5))

    assert budget.used_tokens == 100
    assert {call.usage_source for call in budget.calls()} == {"trace"}
    for trace_id in result.result_df["trace_id"]:
        assert MlflowClient().get_trace(trace_id).info.token_usage["total_tokens"] == 20


def test_direct_evaluate_spends_a_probe_call_before_the_rows(experiment_id, network_attempts):
    model = FakeChatModel()
    budget = TokenBudgetEvaluator(model, max_tokens=1_000_000)

    result = mlflow.genai.evaluate(data=rows(10), predict_fn=budget, scorers=budget.budget_scorers())

    # evaluate() first calls predict_fn on row 0 to see whether it emits a trace.
    questions = sorted(call.question for call in model.log)
    assert questions == ["q0", "q0", *(f"q{n}" for n in range(1, 10))]
    probe_tokens = model.log[0].tokens
    assert budget.used_tokens == sum(call.tokens for call in model.log)
    assert result.metrics["token_budget_used/total"] == budget.used_tokens - probe_tokens
    assert result.passed  # the budget scorers pass while the budget holds


def test_direct_evaluate_returns_normally_and_enforce_ends_the_active_run(experiment_id, network_attempts):
    model = FakeChatModel()
    budget = TokenBudgetEvaluator(model, max_tokens=200, on_exceed="raise")

    with pytest.raises(TokenBudgetExceeded, match="calls refused"), mlflow.start_run() as run:
        result = mlflow.genai.evaluate(data=rows(20), predict_fn=budget, scorers=budget.budget_scorers())
        # evaluate() kept refused rows as row errors and returned normally.
        assert (result.result_df["state"] == "ERROR").sum() == budget.snapshot().refused_calls
        budget.log_to_mlflow()
        budget.enforce(result)

    assert result.run_id == run.info.run_id
    finished = MlflowClient().get_run(run.info.run_id)
    assert finished.info.status == "FAILED"
    assert finished.data.metrics["token_budget_exceeded"] == 1
    assert finished.data.metrics["token_budget_calls"] == len(model.log)


def test_a_budget_tagged_on_the_experiment_governs_its_evaluation(tracking_uri, monkeypatch, network_attempts):
    # The serverless budget component sets this tag from stack config.
    name = "/Users/me@corp.com/evals"
    experiment_id = MlflowClient().create_experiment(name, tags={TOKEN_BUDGET_TAG: "300"})
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    model = FakeChatModel()
    budget = TokenBudgetEvaluator.from_experiment(name, model=model)

    with pytest.raises(TokenBudgetExceeded) as raised:
        budget.evaluate(rows(12))

    run = MlflowClient().get_run(raised.value.result.run_id)
    assert run.info.experiment_id == experiment_id
    assert run.data.metrics["token_budget_used"] == sum(call.tokens for call in model.log) >= 300
    assert run.data.metrics["token_budget_calls"] + run.data.metrics["token_budget_refused_calls"] == 12
