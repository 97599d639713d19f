"""``EvaluationBudget``: the token budget of ``mlflow.genai.evaluate()`` runs in some experiments.

It writes the three experiment tags ``evaluation.TokenBudgetEvaluator.from_experiment`` reads
(contracts.py): the token ceiling, what to do when it is reached, and the price per 1,000 tokens
(optional) that turns token counts into a cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

import stack_config_schema as config_schema
from components.naming import slug
from contracts import COST_PER_1K_TOKENS_TAG, ON_EXCEED_MODES, ON_EXCEED_TAG, RAISE, TOKEN_BUDGET_TAG
from providers.core import Failures
from providers.experiment_tag import ExperimentTag

# Before EvaluationBudget, a team's token ceiling was an ExperimentPolicyTag of its ServerlessBudget.
_OLD_TOKEN_TAG_TYPE = "pulumi-python:dynamic/mlbudgets:ExperimentPolicyTag"


@dataclass
class EvaluationBudgetArgs:
    experiments: Sequence[str]
    """MLflow experiments (ids or names) whose evaluation runs this budget limits."""
    max_tokens: int
    on_exceed: str = RAISE
    """``raise`` stops the run at the ceiling; ``warn`` logs a warning and lets it finish."""
    price_per_1k_tokens: float | None = None
    """US dollars per 1,000 tokens, to report the run's cost; not written when None."""

    def validate(self, path: str, failures: Failures) -> None:
        """Report at config paths under ``path`` a mode or price the evaluator would not read."""

        def at(key: str) -> str:
            return config_schema.key_path(config_schema.EVALUATION, path, key)

        if self.on_exceed not in ON_EXCEED_MODES:
            modes = " or ".join(repr(m) for m in ON_EXCEED_MODES)
            failures.add(at("onExceed"), f"must be {modes}, got {self.on_exceed!r}")
        price = self.price_per_1k_tokens
        if price is not None and not (math.isfinite(price) and price >= 0):
            failures.add(at("pricePer1kTokens"), f"must be US dollars per 1,000 tokens, zero or more, got {price!r}")


class EvaluationBudget(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        args: EvaluationBudgetArgs,
        opts: pulumi.ResourceOptions | None = None,
        moved_from: pulumi.Resource | None = None,
    ) -> None:
        """``moved_from``: the ServerlessBudget whose token-ceiling tags this budget takes over
        (stacks deployed before EvaluationBudget existed); aliases keep those tags in place."""
        super().__init__("ml-budgets:index:EvaluationBudget", name, None, opts)
        self.tags: list[ExperimentTag] = []
        for experiment in args.experiments:
            values = {TOKEN_BUDGET_TAG: str(args.max_tokens), ON_EXCEED_TAG: args.on_exceed}
            if args.price_per_1k_tokens is not None:
                values[COST_PER_1K_TOKENS_TAG] = f"{args.price_per_1k_tokens:g}"
            for key, value in values.items():
                self.tags.append(self._tag(name, experiment, key, value, moved_from))
        self.register_outputs({})

    def _tag(
        self, name: str, experiment: str, key: str, value: str, moved_from: pulumi.Resource | None
    ) -> ExperimentTag:
        aliases: list[pulumi.Input[pulumi.Alias | str]] = []
        if key == TOKEN_BUDGET_TAG and moved_from is not None:
            old_name = f"{moved_from.pulumi_resource_name}-token-budget-{slug(experiment)}"
            aliases.append(pulumi.Alias(name=old_name, type_=_OLD_TOKEN_TAG_TYPE, parent=moved_from))
        label = key.rpartition(".")[2].replace("_", "-")
        return ExperimentTag(
            f"{name}-{label}-{slug(experiment)}",
            experiment=experiment,
            key=key,
            value=value,
            opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
        )
