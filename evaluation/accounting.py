"""The token ledger of one budget: which model calls were admitted, refused or run over budget,
and the tokens they used.  Thread-safe: `mlflow.genai.evaluate()` calls the model from a pool.

A call is admitted only while the tokens of *finished* calls are below `max_tokens`; calls in
flight finish and are counted, so the total can end above the ceiling by what they used.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING

from contracts import RAISE
from evaluation.usage import TokenUsage

if TYPE_CHECKING:
    from mlflow.genai.evaluation.entities import EvaluationResult

# The evaluator's logger: callers filter and capture its warnings under this one name.
logger = logging.getLogger("evaluation.token_budget")

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
REFUSED = "refused"

# No digits: evaluate() retries any error whose text contains "429" (see evaluation/token_budget.py).
REFUSAL_MESSAGE = (
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


@dataclasses.dataclass(frozen=True)
class RowAccount:
    """One evaluation row's part of the accounting: what the budget scorers report."""

    used_tokens: int
    remaining_tokens: int
    exceeded: bool


class Accounting:
    """The ledger of one budget (`on_exceed`: what admitting a call past the ceiling does)."""

    def __init__(self, max_tokens: int, on_exceed: str, cost_per_1k_tokens: float | None) -> None:
        self.max_tokens = max_tokens
        self.on_exceed = on_exceed
        self.cost_per_1k_tokens = cost_per_1k_tokens
        self._lock = threading.Lock()
        self._calls: list[ModelCall] = []
        self._sequences_by_trace: dict[str, list[int]] = {}
        self._used = self._input = self._output = 0
        self._refused = self._over_budget = self._in_flight = 0
        self._ceiling_reported = False

    def admit(self, trace_id: str | None) -> ModelCall:
        """A new call, admitted; in raise mode past the ceiling, refused: `TokenBudgetExceeded`."""
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
        raise TokenBudgetExceeded(REFUSAL_MESSAGE, snapshot)

    def settle(self, call: ModelCall, usage: TokenUsage, source: str | None, status: str) -> None:
        """Count an admitted call's tokens once it ended (`status` completed or failed)."""
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

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            return self._snapshot_locked()

    def calls(self) -> list[ModelCall]:
        """Every call so far, refused ones included, in admission order."""
        with self._lock:
            return list(self._calls)

    def row_account(self, trace_id: str) -> RowAccount | None:
        """The calls made under one trace (one evaluation row), or None if there were none."""
        with self._lock:
            sequences = self._sequences_by_trace.get(trace_id, [])
            row_calls = [self._calls[sequence] for sequence in sequences]
        if not row_calls:
            return None
        used_after = max(
            call.used_after if call.used_after is not None else call.used_at_admission for call in row_calls
        )
        return RowAccount(
            used_tokens=sum(call.usage.total_tokens for call in row_calls if call.usage),
            remaining_tokens=max(0, self.max_tokens - used_after),
            exceeded=used_after > self.max_tokens
            or any(call.status == REFUSED or call.over_budget for call in row_calls),
        )

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


def _ceiling_reached_message(used: int, max_tokens: int, on_exceed: str) -> str:
    consequence = (
        "new model calls will be refused (on_exceed='raise')"
        if on_exceed == RAISE
        else "calls continue and the overrun is recorded (on_exceed='warn')"
    )
    return f"Token budget reached: {used:,} of {max_tokens:,} tokens used; {consequence}."
