"""A budget's settings, checked: as passed to `TokenBudgetEvaluator`, or read from the budget tags
of an MLflow experiment (`contracts.TOKEN_BUDGET_TAG`, `ON_EXCEED_TAG`, `COST_PER_1K_TOKENS_TAG`,
set by the `EvaluationBudget` component)."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from contracts import COST_PER_1K_TOKENS_TAG, ON_EXCEED_MODES, ON_EXCEED_TAG, RAISE, TOKEN_BUDGET_TAG

if TYPE_CHECKING:
    from mlflow.entities import Experiment


def checked_model(model: object) -> Callable[..., Any]:
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}.")
    if inspect.iscoroutinefunction(model) or inspect.iscoroutinefunction(model.__call__):
        raise TypeError("model must be a synchronous callable; async models are not supported.")
    return model


def checked_max_tokens(max_tokens: Any) -> int:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
        raise TypeError(f"max_tokens must be a positive int, got {max_tokens!r}.")
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens}.")
    return int(max_tokens)


def checked_on_exceed(on_exceed: object) -> str:
    if not isinstance(on_exceed, str) or on_exceed not in ON_EXCEED_MODES:
        raise ValueError(f"on_exceed must be 'raise' or 'warn', got {on_exceed!r}.")
    return on_exceed


def checked_cost(cost: Any) -> float | None:
    if cost is None:
        return None
    if isinstance(cost, bool) or not isinstance(cost, numbers.Real):
        raise TypeError(f"cost_per_1k_tokens must be a number or None, got {cost!r}.")
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"cost_per_1k_tokens must be zero or more, got {cost}.")
    return float(cost)


def find_experiment(client: MlflowClient, experiment: str | int) -> Experiment:
    """The active experiment with this id or name (an all-digit key is tried as an id first)."""
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


def max_tokens_from_tags(experiment: Experiment) -> int:
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


def on_exceed_from_tags(experiment: Experiment) -> str:
    raw = (experiment.tags or {}).get(ON_EXCEED_TAG, RAISE)
    if raw.strip() not in ON_EXCEED_MODES:
        raise ValueError(f"{_describe(experiment)} tag {ON_EXCEED_TAG}={raw!r} must be 'raise' or 'warn'.")
    return raw.strip()


def cost_from_tags(experiment: Experiment) -> float | None:
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


def _describe(experiment: Experiment) -> str:
    return f"experiment {experiment.name!r} (id {experiment.experiment_id})"
