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
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities import Metric
from mlflow.entities.span import NoOpSpan
from mlflow.exceptions import MlflowException
from mlflow.genai.scorers import scorer
from mlflow.tracing.constant import SpanAttributeKey
from mlflow.tracking import MlflowClient

from contracts import (
    COST_PER_1K_TOKENS_TAG,
    ON_EXCEED_MODES,
    ON_EXCEED_TAG,
    RAISE,
    TOKEN_BUDGET_TAG,
    WARN,
)
from evaluation.counters import TokenCounter, resolve_token_counter
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
    from mlflow.entities import Experiment, Trace
    from mlflow.genai.evaluation.entities import EvaluationResult
    from mlflow.genai.scorers import Scorer

logger = logging.getLogger(__name__)


RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
REFUSED = "refused"

_SKIP_TRACE_VALIDATION_ENV = "MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION"

# No digits: evaluate() retries any error whose text contains "429" (see module docstring).
_REFUSAL_MESSAGE = (
    "Token budget exhausted: this model call was refused before it started "
    "(on_exceed='raise'). TokenBudgetEvaluator.snapshot() has the totals."
)


@dataclasses.dataclass(frozen=True)
class ModelCall:
    """One call through the evaluator, as the accounting saw it."""

    sequence: int  # admission order, from 0
    used_at_admission: int  # tokens used by calls finished before this one was admitted
    over_budget: bool  # admitted with the ceiling already reached (warn mode)
    trace_id: str | None
    status: str = RUNNING  # running, completed, failed or refused
    usage: TokenUsage | None = None
    usage_source: str | None = None  # response, trace or counter
    used_after: int | None = None  # running total right after this call was accounted


@dataclasses.dataclass(frozen=True)
class BudgetSnapshot:
    """The accounting at one moment, consistent across its fields."""

    max_tokens: int
    used_tokens: int
    input_tokens: int
    output_tokens: int
    calls: int  # model calls started (refused ones are not)
    refused_calls: int
    over_budget_calls: int
    in_flight_calls: int
    cost_per_1k_tokens: float | None

    @property
    def remaining_tokens(self) -> int:
        return max(0, self.max_tokens - self.used_tokens)

    @property
    def exceeded(self) -> bool:
        """More tokens used than allowed, or calls wanted after the ceiling was reached."""
        return self.used_tokens > self.max_tokens or self.refused_calls > 0 or self.over_budget_calls > 0

    @property
    def estimated_cost_usd(self) -> float | None:
        if self.cost_per_1k_tokens is None:
            return None
        return self.used_tokens / 1000 * self.cost_per_1k_tokens

    def as_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {
            "token_budget_used": self.used_tokens,
            "token_budget_input_tokens": self.input_tokens,
            "token_budget_output_tokens": self.output_tokens,
            "token_budget_remaining": self.remaining_tokens,
            "token_budget_calls": self.calls,
            "token_budget_exceeded": int(self.exceeded),
            "token_budget_max_tokens": self.max_tokens,
            "token_budget_refused_calls": self.refused_calls,
            "token_budget_over_budget_calls": self.over_budget_calls,
        }
        if self.estimated_cost_usd is not None:
            metrics["token_budget_estimated_cost_usd"] = self.estimated_cost_usd
        return {name: float(value) for name, value in metrics.items()}


class TokenBudgetExceeded(RuntimeError):
    """The token budget ran out (raise mode). `snapshot` has the accounting;
    `result` the EvaluationResult when raised at the end of an evaluation."""

    def __init__(
        self,
        message: str,
        snapshot: BudgetSnapshot,
        result: EvaluationResult | None = None,
    ):
        super().__init__(message)
        self.snapshot = snapshot
        self.result = result


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
        self.model = _checked_model(model)
        self.max_tokens = _checked_max_tokens(max_tokens)
        self.on_exceed = _checked_on_exceed(on_exceed)
        self.cost_per_1k_tokens = _checked_cost(cost_per_1k_tokens)
        self._count_tokens = resolve_token_counter(token_counter)
        self._span_name = getattr(model, "__name__", type(model).__name__)
        self._lock = threading.Lock()
        self._calls: list[ModelCall] = []
        self._sequences_by_trace: dict[str, list[int]] = {}
        self._used = self._input = self._output = 0
        self._refused = self._over_budget = self._in_flight = 0
        self._ceiling_reported = False
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
        found = _find_experiment(client, experiment)
        budget = cls(
            model,
            max_tokens=_max_tokens_from_tags(found),
            on_exceed=on_exceed or _on_exceed_from_tags(found),
            cost_per_1k_tokens=(cost_per_1k_tokens if cost_per_1k_tokens is not None else _cost_from_tags(found)),
            token_counter=token_counter,
        )
        budget.experiment_id = found.experiment_id
        budget.tracking_uri = client.tracking_uri
        return budget

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with mlflow.start_span(name=self._span_name) as span:
            span.set_inputs(kwargs if not args else {"args": list(args), **kwargs})
            call = self._admit(_trace_id_of(span))
            admitted = _current_call.set(call)
            try:
                response = self.model(*args, **kwargs)
                usage, source = self._measure(span, (args, kwargs), response)
            except BaseException:
                self._settle(call, NO_TOKENS, None, FAILED)
                raise
            finally:
                _current_call.reset(admitted)
            self._settle(call, usage, source, COMPLETED)
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
        with self._in_budget_experiment(), _environment_variable(_SKIP_TRACE_VALIDATION_ENV, "true"):
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
        with _tracking_uri(self.tracking_uri), mlflow.start_run(experiment_id=self.experiment_id):
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
        message = _exceeded_message(snapshot, self.on_exceed)
        if self.on_exceed == WARN:
            logger.warning(message)
            return
        if result is not None:
            _mark_finished_run_failed(self._client(), result.run_id)
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
        account = self._row_account

        @scorer(name="token_budget_used", aggregations=[total, "mean"], pass_if=_always)
        def token_budget_used(trace: Trace) -> int | None:
            row = account(trace)
            return None if row is None else row.used_tokens

        @scorer(name="token_budget_remaining", aggregations=["min"], pass_if=_always)
        def token_budget_remaining(trace: Trace) -> int | None:
            row = account(trace)
            return None if row is None else row.remaining_tokens

        @scorer(name="token_budget_exceeded", aggregations=["max"], pass_if=_is_false)
        def token_budget_exceeded(trace: Trace) -> bool | None:
            row = account(trace)
            return None if row is None else row.exceeded

        return [token_budget_used, token_budget_remaining, token_budget_exceeded]

    def log_to_mlflow(self, run_id: str | None = None) -> dict[str, float]:
        """Log the budget metrics to `run_id`, or to the active run. Returns them."""
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise ValueError("log_to_mlflow() needs a run_id or an active MLflow run.")
            run_id = active.info.run_id
        metrics = self.snapshot().as_metrics()
        timestamp_ms = int(time.time() * 1000)
        self._client().log_batch(
            run_id,
            metrics=[Metric(name, value, timestamp_ms, 0) for name, value in metrics.items()],
        )
        return metrics

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            return self._snapshot_locked()

    def calls(self) -> list[ModelCall]:
        """Every call so far, refused ones included, in admission order."""
        with self._lock:
            return list(self._calls)

    @property
    def used_tokens(self) -> int:
        return self.snapshot().used_tokens

    @property
    def remaining_tokens(self) -> int:
        return self.snapshot().remaining_tokens

    @property
    def exceeded(self) -> bool:
        return self.snapshot().exceeded

    def _admit(self, trace_id: str | None) -> ModelCall:
        with self._lock:
            ceiling_reached = self._used >= self.max_tokens
            call = ModelCall(
                sequence=len(self._calls),
                used_at_admission=self._used,
                over_budget=ceiling_reached,
                trace_id=trace_id,
            )
            if ceiling_reached and self.on_exceed == RAISE:
                call = dataclasses.replace(call, over_budget=False, status=REFUSED, used_after=self._used)
                self._record(call)
                self._refused += 1
                snapshot = self._snapshot_locked()
            else:
                self._record(call)
                self._over_budget += ceiling_reached
                self._in_flight += 1
                return call
        raise TokenBudgetExceeded(_REFUSAL_MESSAGE, snapshot)

    def _settle(self, call: ModelCall, usage: TokenUsage, source: str | None, status: str) -> None:
        with self._lock:
            self._used += usage.total_tokens
            self._input += usage.input_tokens
            self._output += usage.output_tokens
            self._in_flight -= 1
            self._calls[call.sequence] = dataclasses.replace(
                call, status=status, usage=usage, usage_source=source, used_after=self._used
            )
            ceiling_just_reached = not self._ceiling_reported and self._used >= self.max_tokens
            self._ceiling_reported = self._ceiling_reported or ceiling_just_reached
            used = self._used
        if ceiling_just_reached:
            logger.warning(_ceiling_reached_message(used, self.max_tokens, self.on_exceed))

    def _measure(self, span: Any, arguments: Any, response: Any) -> tuple[TokenUsage, str]:
        reported = usage_reported_in(response)
        if reported is not None:
            return reported, FROM_RESPONSE
        if not isinstance(span, NoOpSpan):
            recorded = usage_recorded_under(span)
            if recorded is not None:
                return recorded, FROM_TRACE
        return counted_usage(self._count_tokens, arguments, response), FROM_COUNTER

    def _record(self, call: ModelCall) -> None:
        self._calls.append(call)
        if call.trace_id is not None:
            self._sequences_by_trace.setdefault(call.trace_id, []).append(call.sequence)

    def _snapshot_locked(self) -> BudgetSnapshot:
        # Called with self._lock held; snapshot() would deadlock on the plain Lock.
        return BudgetSnapshot(
            max_tokens=self.max_tokens,
            used_tokens=self._used,
            input_tokens=self._input,
            output_tokens=self._output,
            calls=len(self._calls) - self._refused,
            refused_calls=self._refused,
            over_budget_calls=self._over_budget,
            in_flight_calls=self._in_flight,
            cost_per_1k_tokens=self.cost_per_1k_tokens,
        )

    def _row_account(self, trace: Any) -> _RowAccount | None:
        trace_id = getattr(getattr(trace, "info", None), "trace_id", None)
        if trace_id is None:
            return None
        with self._lock:
            sequences = self._sequences_by_trace.get(trace_id, [])
            row_calls = [self._calls[sequence] for sequence in sequences]
        if not row_calls:
            return None
        used_after = max(
            call.used_after if call.used_after is not None else call.used_at_admission for call in row_calls
        )
        return _RowAccount(
            used_tokens=sum(call.usage.total_tokens for call in row_calls if call.usage),
            remaining_tokens=max(0, self.max_tokens - used_after),
            exceeded=used_after > self.max_tokens
            or any(call.status == REFUSED or call.over_budget for call in row_calls),
        )

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


@dataclasses.dataclass(frozen=True)
class _RowAccount:
    used_tokens: int
    remaining_tokens: int
    exceeded: bool


def total(values: list[float]) -> float:
    """Aggregation: the sum of the per-row values (metric suffix `/total`)."""
    return float(sum(values))


def _always(value: Any) -> bool:
    return True


def _is_false(value: Any) -> bool:
    return not value


def _trace_id_of(span: Any) -> str | None:
    return None if isinstance(span, NoOpSpan) else span.trace_id


def _ceiling_reached_message(used: int, max_tokens: int, on_exceed: str) -> str:
    consequence = (
        "new model calls will be refused (on_exceed='raise')"
        if on_exceed == RAISE
        else "calls continue and the overrun is recorded (on_exceed='warn')"
    )
    return f"Token budget reached: {used:,} of {max_tokens:,} tokens used; {consequence}."


def _exceeded_message(snapshot: BudgetSnapshot, on_exceed: str) -> str:
    # Exactly at the ceiling with further calls wanted: the budget was reached, not exceeded.
    verb = "exceeded" if snapshot.used_tokens > snapshot.max_tokens else "reached"
    message = (
        f"Token budget {verb}: {snapshot.used_tokens:,} tokens used of "
        f"max_tokens={snapshot.max_tokens:,} in {snapshot.calls:,} model calls"
    )
    if on_exceed == RAISE:
        message += f"; {snapshot.refused_calls:,} calls refused (on_exceed='raise')"
    else:
        message += f"; {snapshot.over_budget_calls:,} calls made over budget (on_exceed='warn')"
    if snapshot.estimated_cost_usd is not None:
        message += f"; estimated cost {dollars(snapshot.estimated_cost_usd)}"
    return message + "."


def dollars(amount: float) -> str:
    """US dollars with cents, and with the significant digits of an amount under a dollar
    ($0.005, not $0.01)."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    decimals = 2 - math.floor(math.log10(amount))  # three significant digits
    text = f"{amount:.{decimals}f}".rstrip("0")
    return "$" + text + "0" * max(0, 4 - len(text))  # at least two decimals: $0.50


def _mark_finished_run_failed(client: MlflowClient, run_id: str) -> None:
    if client.get_run(run_id).info.status == "FINISHED":
        client.set_terminated(run_id, status="FAILED")


@contextlib.contextmanager
def _tracking_uri(uri: str | None) -> Iterator[None]:
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    _set_tracking_uri(uri)
    try:
        yield
    finally:
        _set_tracking_uri(previous)


def _set_tracking_uri(uri: str | None) -> None:
    # None unsets it (MLflow's default applies again); set_tracking_uri's annotation omits None.
    mlflow.set_tracking_uri(uri)  # type: ignore[arg-type]


@contextlib.contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _checked_model(model: object) -> Callable[..., Any]:
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}.")
    if inspect.iscoroutinefunction(model) or inspect.iscoroutinefunction(model.__call__):
        raise TypeError("model must be a synchronous callable; async models are not supported.")
    return model


def _checked_max_tokens(max_tokens: Any) -> int:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
        raise TypeError(f"max_tokens must be a positive int, got {max_tokens!r}.")
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens}.")
    return int(max_tokens)


def _checked_on_exceed(on_exceed: object) -> str:
    if not isinstance(on_exceed, str) or on_exceed not in ON_EXCEED_MODES:
        raise ValueError(f"on_exceed must be 'raise' or 'warn', got {on_exceed!r}.")
    return on_exceed


def _checked_cost(cost: Any) -> float | None:
    if cost is None:
        return None
    if isinstance(cost, bool) or not isinstance(cost, numbers.Real):
        raise TypeError(f"cost_per_1k_tokens must be a number or None, got {cost!r}.")
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"cost_per_1k_tokens must be zero or more, got {cost}.")
    return float(cost)


def _find_experiment(client: MlflowClient, experiment: str | int) -> Experiment:
    key = str(experiment)
    lookups: tuple[Callable[[str], Experiment | None], ...] = (client.get_experiment, client.get_experiment_by_name)
    if not key.isdigit():
        lookups = lookups[::-1]
    for lookup in lookups:
        try:
            found = lookup(key)
        except MlflowException:
            found = None
        if found is not None and found.lifecycle_stage != "deleted":
            return found
    raise ValueError(f"No active MLflow experiment with id or name {key!r} at tracking URI {client.tracking_uri!r}.")


def _describe(experiment: Experiment) -> str:
    return f"experiment {experiment.name!r} (id {experiment.experiment_id})"


def _max_tokens_from_tags(experiment: Experiment) -> int:
    raw = (experiment.tags or {}).get(TOKEN_BUDGET_TAG)
    if raw is None:
        raise ValueError(
            f"{_describe(experiment)} has no {TOKEN_BUDGET_TAG!r} tag, so it carries no "
            f"token budget. Set the tag (the EvaluationBudget component does, from stack "
            f"config `evaluation`) or pass max_tokens to TokenBudgetEvaluator directly."
        )
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not value.is_integer() or value <= 0:
        raise ValueError(
            f"{_describe(experiment)} tag {TOKEN_BUDGET_TAG}={raw!r} must be a positive whole number of tokens."
        )
    return int(value)


def _on_exceed_from_tags(experiment: Experiment) -> str:
    raw = (experiment.tags or {}).get(ON_EXCEED_TAG, RAISE)
    if raw.strip() not in ON_EXCEED_MODES:
        raise ValueError(f"{_describe(experiment)} tag {ON_EXCEED_TAG}={raw!r} must be 'raise' or 'warn'.")
    return raw.strip()


def _cost_from_tags(experiment: Experiment) -> float | None:
    raw = (experiment.tags or {}).get(COST_PER_1K_TOKENS_TAG)
    if raw is None:
        return None
    try:
        cost = float(raw.strip())
    except ValueError:
        cost = math.nan
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(
            f"{_describe(experiment)} tag {COST_PER_1K_TOKENS_TAG}={raw!r} must be a number of dollars, zero or more."
        )
    return cost
