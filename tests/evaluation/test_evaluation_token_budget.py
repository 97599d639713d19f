"""TokenBudgetEvaluator accounting, admission and arguments, without mlflow.genai.evaluate()."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import mlflow
import pytest

from evaluation import (
    TokenBudgetEvaluator,
    TokenBudgetExceeded,
    TokenUsage,
    approximate_token_count,
    current_call,
)
from evaluation.counters import resolve_token_counter
from evaluation.usage import response_text, usage_reported_in


@pytest.fixture(scope="module", autouse=True)
def tracing_off(tmp_path_factory):
    # Calls outside evaluate() would export traces, and even switching tracing
    # off opens the tracking store: without this, a mlflow.db in the working directory.
    previous_uri = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")
    mlflow.tracing.disable()
    yield
    # Changing the URI resets MLflow's tracer provider, which starts again enabled
    # on next use; tracing.enable() here would open the tmp store only to drop it.
    mlflow.set_tracking_uri(previous_uri)


def openai_response(prompt_tokens: int, completion_tokens: int, text: str = "ok") -> dict:
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def model_using(prompt_tokens: int, completion_tokens: int):
    def model(question: str) -> dict:
        return openai_response(prompt_tokens, completion_tokens)

    return model


# --- arguments --------------------------------------------------------------


ON_EXCEED_CHOICES = "on_exceed must be 'raise' or 'warn'"


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"max_tokens": 0}, ValueError, "max_tokens must be a positive number of tokens, got 0"),
        ({"max_tokens": -100}, ValueError, "max_tokens must be a positive number of tokens"),
        ({"max_tokens": 10.5}, TypeError, "max_tokens must be a positive int"),
        ({"max_tokens": "1000"}, TypeError, "max_tokens must be a positive int"),
        ({"max_tokens": True}, TypeError, "max_tokens must be a positive int"),
        ({"max_tokens": 10, "on_exceed": "explode"}, ValueError, ON_EXCEED_CHOICES),
        ({"max_tokens": 10, "on_exceed": None}, ValueError, ON_EXCEED_CHOICES),
        ({"max_tokens": 10, "cost_per_1k_tokens": -0.5}, ValueError, "must be zero or more"),
        ({"max_tokens": 10, "cost_per_1k_tokens": "cheap"}, TypeError, "must be a number"),
        ({"max_tokens": 10, "token_counter": "sentencepiece"}, ValueError, "token_counter must"),
    ],
)
def test_bad_arguments_are_clear_errors(arguments, error, message):
    with pytest.raises(error, match=message):
        TokenBudgetEvaluator(model_using(1, 1), **arguments)


def test_settings_changed_after_construction_are_checked_and_apply_to_the_next_call():
    budget = TokenBudgetEvaluator(model_using(3, 2), max_tokens=100)
    budget(question="first")
    with pytest.raises(ValueError, match="max_tokens must be a positive number of tokens"):
        budget.max_tokens = 0
    with pytest.raises(ValueError, match=ON_EXCEED_CHOICES):
        budget.on_exceed = "explode"
    with pytest.raises(ValueError, match="must be zero or more"):
        budget.cost_per_1k_tokens = -1
    assert (budget.max_tokens, budget.on_exceed, budget.cost_per_1k_tokens) == (100, "raise", None)

    budget.max_tokens = 5  # the 5 tokens already used reach it: the next call is refused
    budget.cost_per_1k_tokens = 2
    with pytest.raises(TokenBudgetExceeded):
        budget(question="second")
    snapshot = budget.snapshot()
    assert (snapshot.max_tokens, snapshot.refused_calls, snapshot.estimated_cost_usd) == (5, 1, 0.01)


def test_model_must_be_a_synchronous_callable():
    async def async_model(question):
        return "no"

    with pytest.raises(TypeError, match="model must be callable"):
        TokenBudgetEvaluator("gpt-4o", max_tokens=10)
    with pytest.raises(TypeError, match="synchronous"):
        TokenBudgetEvaluator(async_model, max_tokens=10)


def test_predict_fn_carries_the_models_name_and_signature():
    def answer_question(question: str, context: str = "") -> dict:
        return openai_response(1, 1)

    budget = TokenBudgetEvaluator(answer_question, max_tokens=10)

    assert budget.predict_fn.__name__ == "answer_question"
    assert inspect.signature(budget.predict_fn) == inspect.signature(answer_question)
    assert budget.predict_fn(question="hi") == openai_response(1, 1)
    assert budget.used_tokens == 2


def test_predict_fn_of_a_callable_instance_goes_by_its_class():
    class ChatClient:
        def __init__(self):
            self.calls = 0

        def __call__(self, question: str) -> dict:
            self.calls += 1
            return openai_response(1, 1)

    client = ChatClient()
    budget = TokenBudgetEvaluator(client, max_tokens=10)

    assert budget.predict_fn.__qualname__ == ChatClient.__qualname__
    assert list(inspect.signature(budget.predict_fn).parameters) == ["question"]
    assert not hasattr(budget.predict_fn, "calls")  # the instance's state stays on the instance
    budget.predict_fn(question="hi")
    assert client.calls == 1


# --- accounting -------------------------------------------------------------


def test_totals_equal_the_sum_of_reported_usage_across_threads():
    def model(question: str) -> dict:
        number = int(question)
        return openai_response(prompt_tokens=number % 13 + 1, completion_tokens=number % 7)

    budget = TokenBudgetEvaluator(model, max_tokens=10**9)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: budget(question=str(n)), range(2000)))

    snapshot = budget.snapshot()
    expected_input = sum(n % 13 + 1 for n in range(2000))
    expected_output = sum(n % 7 for n in range(2000))
    assert snapshot.input_tokens == expected_input
    assert snapshot.output_tokens == expected_output
    assert snapshot.used_tokens == expected_input + expected_output
    assert snapshot.calls == 2000
    assert snapshot.in_flight_calls == 0
    assert not snapshot.exceeded


def test_raise_mode_lets_admitted_calls_finish_then_refuses_new_ones():
    both_admitted = threading.Barrier(2, timeout=10)
    model_calls = []

    def model(question: str) -> dict:
        model_calls.append(question)
        both_admitted.wait()  # neither returns until both were admitted at 0 tokens used
        return openai_response(40, 20)

    budget = TokenBudgetEvaluator(model, max_tokens=100, on_exceed="raise")
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda q: budget(question=q), ["a", "b"]))

    assert [r["usage"]["total_tokens"] for r in responses] == [60, 60]
    assert budget.used_tokens == 120  # the call that crossed the line completed
    with pytest.raises(TokenBudgetExceeded, match="refused before it started"):
        budget(question="c")
    assert model_calls.count("c") == 0

    snapshot = budget.snapshot()
    assert (snapshot.calls, snapshot.refused_calls, snapshot.remaining_tokens) == (2, 1, 0)
    assert snapshot.exceeded
    assert [call.status for call in budget.calls()] == ["completed", "completed", "refused"]
    assert all(call.used_at_admission == 0 for call in budget.calls()[:2])
    with pytest.raises(TokenBudgetExceeded, match=r"120 tokens used of max_tokens=100") as raised:
        budget.enforce()
    assert raised.value.snapshot == snapshot


def test_a_call_is_admitted_only_while_used_is_below_max_tokens():
    budget = TokenBudgetEvaluator(model_using(50, 49), max_tokens=100)
    budget(question="first")  # 99 used
    budget(question="second")  # admitted at 99: 198 used
    with pytest.raises(TokenBudgetExceeded):
        budget(question="third")

    exactly = TokenBudgetEvaluator(model_using(60, 40), max_tokens=100)
    exactly(question="first")  # 100 used: the ceiling is reached, not exceeded
    assert exactly.remaining_tokens == 0
    assert not exactly.exceeded
    exactly.enforce()  # nothing to enforce yet
    with pytest.raises(TokenBudgetExceeded):
        exactly(question="second")
    assert exactly.exceeded  # a call was wanted beyond the ceiling


def test_the_per_call_refusal_never_looks_like_a_rate_limit_error():
    # evaluate() retries errors whose text has "429" or "rate limit" in it.
    budget = TokenBudgetEvaluator(model_using(4290, 4290), max_tokens=4290)
    budget(question="spend it all")
    with pytest.raises(TokenBudgetExceeded) as raised:
        budget(question="one more")
    text = str(raised.value).lower()
    assert "429" not in text and "rate limit" not in text


def test_warn_mode_keeps_calling_and_records_the_overrun(caplog):
    budget = TokenBudgetEvaluator(model_using(40, 20), max_tokens=100, on_exceed="warn")
    with caplog.at_level(logging.WARNING, logger="evaluation.token_budget"):
        for question in "abcde":
            budget(question=question)
        budget.enforce()

    snapshot = budget.snapshot()
    assert (snapshot.used_tokens, snapshot.calls, snapshot.refused_calls) == (300, 5, 0)
    assert snapshot.over_budget_calls == 3  # admitted at 120, 180 and 240 tokens used
    assert snapshot.exceeded
    assert [call.over_budget for call in budget.calls()] == [False, False, True, True, True]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("Token budget reached" in m for m in messages) == 1
    assert any("Token budget exceeded: 300 tokens used" in m for m in messages)


def test_a_failing_model_call_counts_no_tokens_and_frees_its_slot():
    def flaky_model(question: str) -> dict:
        raise ConnectionError("upstream down")

    budget = TokenBudgetEvaluator(flaky_model, max_tokens=100)
    with pytest.raises(ConnectionError):
        budget(question="q")

    snapshot = budget.snapshot()
    assert (snapshot.used_tokens, snapshot.in_flight_calls, snapshot.calls) == (0, 0, 1)
    assert budget.calls()[0].status == "failed"


def test_the_model_can_see_its_admission():
    seen = []

    def model(question: str) -> dict:
        seen.append(current_call())
        return openai_response(10, 5)

    budget = TokenBudgetEvaluator(model, max_tokens=100)
    budget(question="a")
    budget(question="b")

    assert [(call.sequence, call.used_at_admission) for call in seen] == [(0, 0), (1, 15)]
    assert current_call() is None


def test_metrics_have_the_documented_names_and_values():
    budget = TokenBudgetEvaluator(model_using(700, 300), max_tokens=1500, cost_per_1k_tokens=2.5)
    budget(question="a")
    budget(question="b")
    with pytest.raises(TokenBudgetExceeded):
        budget(question="c")

    metrics = budget.snapshot().as_metrics()
    assert metrics == {
        "token_budget_used": 2000.0,
        "token_budget_input_tokens": 1400.0,
        "token_budget_output_tokens": 600.0,
        "token_budget_remaining": 0.0,
        "token_budget_calls": 2.0,
        "token_budget_exceeded": 1.0,
        "token_budget_estimated_cost_usd": 5.0,
        "token_budget_max_tokens": 1500.0,
        "token_budget_refused_calls": 1.0,
        "token_budget_over_budget_calls": 0.0,
    }
    assert not any("/" in name for name in metrics)


def test_estimated_cost_is_left_out_without_a_price():
    budget = TokenBudgetEvaluator(model_using(1, 1), max_tokens=10)
    budget(question="a")
    assert "token_budget_estimated_cost_usd" not in budget.snapshot().as_metrics()


def test_log_to_mlflow_needs_a_run():
    budget = TokenBudgetEvaluator(model_using(1, 1), max_tokens=10)
    assert mlflow.active_run() is None
    with pytest.raises(ValueError, match="needs a run_id or an active MLflow run"):
        budget.log_to_mlflow()


# --- where tokens come from -------------------------------------------------


def test_usage_reported_in_openai_style_dicts_and_sdk_objects():
    chat_object = SimpleNamespace(usage=SimpleNamespace(prompt_tokens=11, completion_tokens=7, total_tokens=18))
    responses_api = {"output": [], "usage": {"input_tokens": 5, "output_tokens": 3}}

    assert usage_reported_in(openai_response(11, 7)) == TokenUsage(11, 7, 18)
    assert usage_reported_in(chat_object) == TokenUsage(11, 7, 18)
    assert usage_reported_in(responses_api) == TokenUsage(5, 3, 8)
    assert usage_reported_in({"usage": None}) is None
    assert usage_reported_in("plain text") is None


def test_the_counter_is_used_when_the_model_reports_no_usage():
    def words(text: str) -> int:
        return len(text.split())

    def model(question: str) -> dict:
        return {"choices": [{"message": {"role": "assistant", "content": "four words of answer"}}]}

    budget = TokenBudgetEvaluator(model, max_tokens=100, token_counter=words)
    budget(question="three word question")

    call = budget.calls()[0]
    assert call.usage == TokenUsage(3, 4, 7)
    assert call.usage_source == "counter"


def test_the_default_counter_needs_no_package_and_errs_high():
    plain_string_model = TokenBudgetEvaluator(lambda question: "x" * 40, max_tokens=100)
    plain_string_model(question="y" * 8)
    assert plain_string_model.calls()[0].usage == TokenUsage(2, 10, 12)

    assert approximate_token_count("") == 0
    assert approximate_token_count("abcd" * 10) == 10  # 4 characters a token
    assert approximate_token_count("a b c d e f") == 8  # 4 tokens every 3 words wins


def test_response_text_prefers_the_generated_message():
    response = {
        "id": "chatcmpl-123",
        "model": "gpt-4o",
        "choices": [{"message": {"role": "assistant", "content": "the answer"}}],
    }
    assert response_text(response) == "the answer"
    assert response_text({"answer": "yes", "sources": ["a", "b"]}) == "yes\na\nb"


class _FakeEncoding:
    """Stands in for a tiktoken encoding: one token per whitespace-separated word."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.special_arguments = []

    def encode(self, text: str, disallowed_special=()):
        self.special_arguments.append(disallowed_special)
        return text.split()


def test_tiktoken_counter_counts_with_the_tiktoken_encoding(monkeypatch):
    """tiktoken is optional and fetches encodings online: a stand-in module proves the wiring."""
    encodings = []

    def get_encoding(name):
        encodings.append(_FakeEncoding(name))
        return encodings[-1]

    monkeypatch.setitem(sys.modules, "tiktoken", SimpleNamespace(get_encoding=get_encoding))
    count = resolve_token_counter("tiktoken")
    assert [e.name for e in encodings] == ["cl100k_base"]
    assert count("hello big world") == 3 and count("") == 0
    assert encodings[0].special_arguments == [()], "text that looks like a special token is counted, not refused"


def test_asking_for_tiktoken_without_it_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import fails as if it were not installed
    with pytest.raises(ImportError, match="pip install tiktoken"):
        TokenBudgetEvaluator(model_using(1, 1), max_tokens=10, token_counter="tiktoken")


def test_model_calls_are_immutable_records():
    budget = TokenBudgetEvaluator(model_using(1, 1), max_tokens=10)
    budget(question="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.calls()[0].status = "refused"
