"""A token ceiling for `mlflow.genai.evaluate()` runs against paid LLM APIs.

How `mlflow.genai.evaluate()` (MLflow 3.17) treats a `predict_fn`, and what this
module does about it:

* It calls `predict_fn(**row["inputs"])` from a thread pool (size
  `MLFLOW_GENAI_EVAL_MAX_WORKERS`, or derived from the predict rate limit,
  which defaults to an adaptive 10 calls/s), so the accounting here is locked.
* It catches every `Exception` a row's `predict_fn` raises and records it as
  that row's error, then goes on with the next rows. A budget error raised
  inside `predict_fn` therefore cannot stop the run; `evaluate()` returns
  normally. The run is ended by `TokenBudgetEvaluator.evaluate()` (or by
  calling `enforce()` after `mlflow.genai.evaluate()`), which raises
  `TokenBudgetExceeded` once the harness has finished.
* It retries a row when the error looks like an HTTP 429 (its text contains
  "429" or "rate limit"), so the per-call refusal message carries no numbers.
* Before the run it calls `predict_fn` once more on the first row, untraced,
  only to learn whether the function emits a trace. Against a paid API that
  probe is a billed call. The wrapper here always emits a trace, so
  `TokenBudgetEvaluator.evaluate()` turns the probe off; with a direct
  `mlflow.genai.evaluate(predict_fn=...)` it happens and is counted.
* It predicts and scores in a pipeline: a row is scored as soon as its
  prediction finishes, while other rows are still predicting. The budget
  scorers therefore report per-row values taken from the accounting (see
  `budget_scorers`), not a run total that is still moving.

This module is the wrapper; its parts: `evaluation.accounting` (the locked ledger: admission,
settlement, snapshots), `evaluation.scorers` (the budget scorers), `evaluation.settings`
(arguments and experiment tags, checked), `evaluation.messages` (what an exceeded budget says),
`evaluation.mlflow_runs` (tracking URI, metrics, a run marked FAILED), and `evaluation.usage` /
`evaluation.counters` (where a call's tokens come from).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities.span import NoOpSpan
from mlflow.tracing.constant import SpanAttributeKey
from mlflow.tracking import MlflowClient

from contracts import RAISE, WARN
from evaluation.accounting import (
    COMPLETED,
    FAILED,
    REFUSED,
    RUNNING,
    Accounting,
    BudgetSnapshot,
    ModelCall,
    RowAccount,
    TokenBudgetExceeded,
    logger,
)
from evaluation.counters import TokenCounter, resolve_token_counter
from evaluation.messages import dollars, exceeded_message
from evaluation.mlflow_runs import environment_variable, log_metrics, mark_finished_run_failed, tracking_uri
from evaluation.scorers import budget_scorers, total
from evaluation.settings import (
    checked_cost,
    checked_max_tokens,
    checked_model,
    checked_on_exceed,
    cost_from_tags,
    find_experiment,
    max_tokens_from_tags,
    on_exceed_from_tags,
)
from evaluation.usage import (
    FROM_COUNTER,
    FROM_RESPONSE,
    FROM_TRACE,
    NO_TOKENS,
    TokenUsage,
    counted_usage,
    usage_recorded_under,
    usage_reported_in,
)

if TYPE_CHECKING:
    from mlflow.genai.evaluation.entities import EvaluationResult
    from mlflow.genai.scorers import Scorer

__all__ = [
    "COMPLETED",
    "FAILED",
    "REFUSED",
    "RUNNING",
    "BudgetSnapshot",
    "ModelCall",
    "TokenBudgetEvaluator",
    "TokenBudgetExceeded",
    "current_call",
    "dollars",
    "total",
]

_SKIP_TRACE_VALIDATION_ENV = "MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION"

_current_call: contextvars.ContextVar[ModelCall | None] = contextvars.ContextVar(
    "token_budget_current_call", default=None
)


def current_call() -> ModelCall | None:
    """The admitted call whose model is running in this thread, if any.

    Lets a model see the budget as it stood when it was admitted (for example
    to cap a request's `max_tokens`).
    """
    return _current_call.get()


class TokenBudgetEvaluator:
    """Wraps a model callable as an `mlflow.genai.evaluate()` `predict_fn` with a token ceiling.

    A call is admitted only while the tokens used by finished calls are below
    `max_tokens`. Calls already admitted finish and are counted, so the total
    can end above the ceiling by what the calls in flight at that moment used;
    this is how the AI gateway enforces its budgets too. Once the ceiling is
    reached:

    * `on_exceed="raise"`: no new model call starts; each further row fails
      with `TokenBudgetExceeded` (recorded by evaluate() as that row's error),
      and `evaluate()` / `enforce()` raise `TokenBudgetExceeded` at the end.
    * `on_exceed="warn"`: calls go on; a warning is logged once and every call
      admitted over the ceiling is counted in `over_budget_calls`.

    Tokens of a call come from the usage its response reports (OpenAI-style
    `usage`), else from token usage MLflow tracing recorded inside the call
    (autologged clients), else from `token_counter` over the input and output
    text: "approximate" (default, no extra package), "tiktoken" (needs the
    optional tiktoken package), or any `callable(text) -> int`.

    `cost_per_1k_tokens` only feeds the estimated cost that is reported.

    One evaluator is one budget: its accounting adds up every call made through
    it, across evaluate() runs, until a new evaluator is made. Only those calls
    count; LLM-judge scorers call their own models outside it. Pass it, or its
    `predict_fn` (the same wrapper, named after the model for MLflow's run
    lineage tags), as `predict_fn`.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        max_tokens: int,
        cost_per_1k_tokens: float | None = None,
        on_exceed: str = RAISE,
        token_counter: TokenCounter | str | None = None,
    ):
        self.model = checked_model(model)
        self._accounting = Accounting(
            checked_max_tokens(max_tokens),
            checked_on_exceed(on_exceed),
            checked_cost(cost_per_1k_tokens),
        )
        self._count_tokens = resolve_token_counter(token_counter)
        self._span_name = getattr(model, "__name__", type(model).__name__)
        # Where evaluate() runs: the experiment (and its server) from_experiment() read, else
        # wherever mlflow.genai.evaluate() would run (the active experiment and tracking URI).
        self.experiment_id: str | None = None
        self.tracking_uri: str | None = None
        self.predict_fn = self._predict_fn_with_model_identity()

    @classmethod
    def from_experiment(
        cls,
        experiment: str | int,
        *,
        model: Callable[..., Any],
        client: MlflowClient | None = None,
        tracking_uri: str | None = None,
        on_exceed: str | None = None,
        cost_per_1k_tokens: float | None = None,
        token_counter: TokenCounter | str | None = None,
    ) -> TokenBudgetEvaluator:
        """Build the evaluator from the budget tags of an MLflow experiment.

        `experiment` is an experiment id or name (e.g. "/Users/me@corp.com/evals").
        The ceiling comes from the `TOKEN_BUDGET_TAG` tag; `on_exceed` and
        `cost_per_1k_tokens` come from their tags unless passed here.
        """
        if client is not None and tracking_uri is not None:
            raise ValueError("Pass either client or tracking_uri, not both.")
        client = client or MlflowClient(tracking_uri=tracking_uri)
        found = find_experiment(client, experiment)
        budget = cls(
            model,
            max_tokens=max_tokens_from_tags(found),
            on_exceed=on_exceed or on_exceed_from_tags(found),
            cost_per_1k_tokens=(cost_per_1k_tokens if cost_per_1k_tokens is not None else cost_from_tags(found)),
            token_counter=token_counter,
        )
        budget.experiment_id = found.experiment_id
        budget.tracking_uri = client.tracking_uri
        return budget

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with mlflow.start_span(name=self._span_name) as span:
            span.set_inputs(kwargs if not args else {"args": list(args), **kwargs})
            call = self._accounting.admit(_trace_id_of(span))
            admitted = _current_call.set(call)
            try:
                response = self.model(*args, **kwargs)
                usage, source = self._measure(span, (args, kwargs), response)
            except BaseException:
                self._accounting.settle(call, NO_TOKENS, None, FAILED)
                raise
            finally:
                _current_call.reset(admitted)
            self._accounting.settle(call, usage, source, COMPLETED)
            span.set_attribute(SpanAttributeKey.CHAT_USAGE, usage.as_mlflow_usage())
            span.set_outputs(response)
            return response

    def evaluate(
        self,
        data: Any,
        scorers: list[Scorer] | None = None,
        *,
        model_id: str | None = None,
    ) -> EvaluationResult:
        """Run `mlflow.genai.evaluate()` on the model under this budget.

        Adds the budget scorers, skips evaluate()'s billed probe call, logs the
        budget metrics to the evaluation run, then applies `enforce()`: in raise
        mode an exceeded budget marks a finished run FAILED and raises
        `TokenBudgetExceeded`, whose `result` is the EvaluationResult.

        An evaluator made by `from_experiment()` runs in that experiment, on the
        tracking server it was read from (unless a run is already active).
        """
        with self._in_budget_experiment(), environment_variable(_SKIP_TRACE_VALIDATION_ENV, "true"):
            result = mlflow.genai.evaluate(
                data=data,
                scorers=[*(scorers or []), *self.budget_scorers()],
                predict_fn=self.predict_fn,
                model_id=model_id,
            )
        self.log_to_mlflow(run_id=result.run_id)
        self.enforce(result)
        return result

    @contextlib.contextmanager
    def _in_budget_experiment(self) -> Iterator[None]:
        if self.experiment_id is None or mlflow.active_run() is not None:
            yield
            return
        with tracking_uri(self.tracking_uri), mlflow.start_run(experiment_id=self.experiment_id):
            yield

    def enforce(self, result: EvaluationResult | None = None) -> None:
        """End a run the way `on_exceed` says, once the calls are done.

        Does nothing while the budget holds. When it was exceeded, warn mode logs
        a warning; raise mode marks the result's run FAILED if it already
        finished (a run still active fails when the error leaves it) and raises
        `TokenBudgetExceeded`.
        """
        snapshot = self.snapshot()
        if not snapshot.exceeded:
            return
        message = exceeded_message(snapshot, self.on_exceed)
        if self.on_exceed == WARN:
            logger.warning(message)
            return
        if result is not None:
            mark_finished_run_failed(self._client(), result.run_id)
        raise TokenBudgetExceeded(message, snapshot, result)

    def budget_scorers(self) -> list[Scorer]:
        """Scorers `token_budget_used`, `token_budget_remaining`, `token_budget_exceeded`.

        evaluate() scores each row right after its prediction, while other rows
        still run, so each scorer reports that row's part of the live accounting:

        * token_budget_used: tokens the row's model calls used (0 if refused);
          aggregated as `total` (the run's row tokens) and `mean`.
        * token_budget_remaining: tokens left right after the row's calls were
          accounted; aggregated as `min`, the run's final remaining.
        * token_budget_exceeded: whether the budget was exceeded by then or the
          row was refused / over budget; aggregated as `max`, 1 if it ever was.

        A row whose trace holds no call through this evaluator gets no value.
        """
        return budget_scorers(self._row_account)

    def log_to_mlflow(self, run_id: str | None = None) -> dict[str, float]:
        """Log the budget metrics to `run_id`, or to the active run. Returns them."""
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise ValueError("log_to_mlflow() needs a run_id or an active MLflow run.")
            run_id = active.info.run_id
        metrics = self.snapshot().as_metrics()
        log_metrics(self._client(), run_id, metrics)
        return metrics

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

    def snapshot(self) -> BudgetSnapshot:
        return self._accounting.snapshot()

    def calls(self) -> list[ModelCall]:
        """Every call so far, refused ones included, in admission order."""
        return self._accounting.calls()

    @property
    def max_tokens(self) -> int:
        return self._accounting.max_tokens

    @max_tokens.setter
    def max_tokens(self, max_tokens: int) -> None:
        self._accounting.max_tokens = checked_max_tokens(max_tokens)

    @property
    def on_exceed(self) -> str:
        return self._accounting.on_exceed

    @on_exceed.setter
    def on_exceed(self, on_exceed: str) -> None:
        self._accounting.on_exceed = checked_on_exceed(on_exceed)

    @property
    def cost_per_1k_tokens(self) -> float | None:
        return self._accounting.cost_per_1k_tokens

    @cost_per_1k_tokens.setter
    def cost_per_1k_tokens(self, cost_per_1k_tokens: float | None) -> None:
        self._accounting.cost_per_1k_tokens = checked_cost(cost_per_1k_tokens)

    @property
    def used_tokens(self) -> int:
        return self.snapshot().used_tokens

    @property
    def remaining_tokens(self) -> int:
        return self.snapshot().remaining_tokens

    @property
    def exceeded(self) -> bool:
        return self.snapshot().exceeded

    def _measure(self, span: Any, arguments: Any, response: Any) -> tuple[TokenUsage, str]:
        reported = usage_reported_in(response)
        if reported is not None:
            return reported, FROM_RESPONSE
        if not isinstance(span, NoOpSpan):
            recorded = usage_recorded_under(span)
            if recorded is not None:
                return recorded, FROM_TRACE
        return counted_usage(self._count_tokens, arguments, response), FROM_COUNTER

    def _row_account(self, trace: Any) -> RowAccount | None:
        trace_id = getattr(getattr(trace, "info", None), "trace_id", None)
        return None if trace_id is None else self._accounting.row_account(trace_id)

    def _predict_fn_with_model_identity(self) -> Callable[..., Any]:
        # evaluate() tags its run with the name and source digest of predict_fn;
        # a function wrapping the model names the model, the evaluator would not.
        model = self.model

        @functools.wraps(model, updated=())
        def predict_fn(*args: Any, **kwargs: Any) -> Any:
            return self(*args, **kwargs)

        if not inspect.isroutine(model):  # a callable instance goes by its class, as in MLflow
            model_class = type(model)
            predict_fn.__module__ = model_class.__module__
            predict_fn.__name__ = model_class.__name__
            predict_fn.__qualname__ = model_class.__qualname__
        return predict_fn


def _trace_id_of(span: Any) -> str | None:
    return None if isinstance(span, NoOpSpan) else span.trace_id
