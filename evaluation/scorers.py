"""The budget scorers `token_budget_used`, `token_budget_remaining` and `token_budget_exceeded`.

evaluate() scores each row right after its prediction, while other rows still run, so each
scorer reports that row's part of the live accounting (an `evaluation.accounting.RowAccount`),
not a run total that is still moving.  A row whose trace holds no call through the evaluator
gets no value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlflow.genai.scorers import scorer

from evaluation.accounting import RowAccount

if TYPE_CHECKING:
    from mlflow.entities import Trace
    from mlflow.genai.scorers import Scorer


def budget_scorers(account: Callable[[Trace], RowAccount | None]) -> list[Scorer]:
    """The three scorers over ``account`` (a row's trace -> its part of the accounting)."""

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


def total(values: list[float]) -> float:
    """Aggregation: the sum of the per-row values (metric suffix `/total`)."""
    return float(sum(values))


def _always(value: Any) -> bool:
    return True


def _is_false(value: Any) -> bool:
    return not value
