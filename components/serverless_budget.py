"""``ServerlessBudget``: a Databricks serverless budget policy with its grants and experiment tags,
and optionally a monthly dollar limit: an account budget over exactly the usage the policy tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

import stack_config_schema as config_schema
from components.account_budget_check import report_account_budget_failures
from components.alert_tiers import tier_usd
from components.naming import slug
from providers.account_budget import AccountBudget
from providers.budget_policy_grants import BudgetPolicyGrants
from providers.core import Failures
from providers.experiment_policy_tag import ExperimentPolicyTag
from providers.serverless_budget_policy import ServerlessBudgetPolicy


@dataclass
class ServerlessBudgetArgs:
    policy_name: pulumi.Input[str]
    custom_tags: Mapping[str, str] = field(default_factory=dict)
    workspace_ids: Sequence[int] = ()
    users: Sequence[str] = ()
    managers: Sequence[str] = ()
    authoritative_grants: bool = False
    experiments: Sequence[str] = ()
    """MLflow experiments (ids or names) whose scorers and evaluations this policy pays for."""
    monthly_limit_usd: float | None = None
    """Monthly list-price dollars for the usage carrying this policy's tags (an account budget)."""
    alert_thresholds: Sequence[float] = (50.0, 80.0, 100.0)
    """Percentages of ``monthly_limit_usd`` at which ``notify`` gets an email (at most 4)."""
    notify: Sequence[str] = ()
    """Email addresses told when a threshold is crossed."""

    def validate(self, path: str, failures: Failures) -> None:
        """Report at config paths under ``path`` what the policy, its grants, its experiment tags or
        the dollar limit's account budget would refuse; keep each value as their validators
        normalize it (experiments: the valid ones)."""
        from providers import budget_policy_grants as grants
        from providers import experiment_tag as tag
        from providers import serverless_budget_policy as policy

        def at(key: str) -> str:
            return config_schema.key_path(config_schema.SERVERLESS, path, key)

        self.policy_name = policy.validate_policy_name(self.policy_name, failures, at("policyName"))
        self.custom_tags = policy.validate_custom_tags(self.custom_tags, failures, at("customTags")) or {}
        self.workspace_ids = policy.validate_workspace_ids(list(self.workspace_ids), failures, at("workspaceIds")) or []
        self.users = grants.validate_principals(list(self.users), failures, at("users")) or []
        self.managers = grants.validate_principals(list(self.managers), failures, at("managers")) or []
        experiments = [
            tag.validate_experiment(experiment, failures, f"{at('experiments')}[{i}]")
            for i, experiment in enumerate(self.experiments)
        ]
        self.experiments = [e for e in experiments if isinstance(e, str) and e]
        if self.monthly_limit_usd is None:
            return
        if not self.alert_thresholds:
            failures.add(at("alertThresholds"), "is empty: a dollar limit needs at least one alert threshold")
            return
        name = self.policy_name
        report_account_budget_failures(
            {
                "display_name": name if isinstance(name, str) and name else "x",
                "tags": policy_tag_filter(self.custom_tags),
                "alerts": serverless_budget_alerts(self.monthly_limit_usd, self.alert_thresholds, self.notify),
            },
            {"tags": at("customTags"), "alerts": at("alertThresholds"), "alerts.notify": at("notify")},
            failures,
        )


def serverless_budget_alerts(
    limit_usd: float, thresholds: Sequence[float], notify: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {"threshold_usd": tier_usd(limit_usd, percent), "notify": list(notify), "block_usage": False}
        for percent in thresholds
    ]


def policy_tag_filter(custom_tags: Mapping[str, str]) -> dict[str, list[str]]:
    """The account budget filter that counts exactly the usage a budget policy's tags attribute."""
    return {key: [value] for key, value in custom_tags.items()}


class ServerlessBudget(pulumi.ComponentResource):
    policy_id: pulumi.Output[str]
    policy_name: pulumi.Output[str]
    budget_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: ServerlessBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-budgets:index:ServerlessBudget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.policy = ServerlessBudgetPolicy(
            f"{name}-policy",
            policy_name=args.policy_name,
            custom_tags=dict(args.custom_tags),
            binding_workspace_ids=list(args.workspace_ids),
            opts=child,
        )
        self.grants = None
        if args.users or args.managers or args.authoritative_grants:
            self.grants = BudgetPolicyGrants(
                f"{name}-grants",
                policy_id=self.policy.policy_id,
                users=list(args.users),
                managers=list(args.managers),
                authoritative=args.authoritative_grants,
                opts=child,
            )
        self.experiment_tags = [
            ExperimentPolicyTag(
                f"{name}-experiment-{slug(experiment)}",
                experiment=experiment,
                policy_id=self.policy.policy_id,
                opts=child,
            )
            for experiment in args.experiments
        ]

        self.budget = None
        if args.monthly_limit_usd is not None:
            self.budget = AccountBudget(
                f"{name}-budget",
                display_name=args.policy_name,
                tags=policy_tag_filter(args.custom_tags),
                alerts=serverless_budget_alerts(args.monthly_limit_usd, args.alert_thresholds, args.notify),
                opts=child,
            )

        self.policy_id = self.policy.policy_id
        self.policy_name = self.policy.policy_name
        self.budget_id = self.budget.budget_id if self.budget else None
        self.register_outputs(
            {"policy_id": self.policy_id, "policy_name": self.policy_name, "budget_id": self.budget_id}
        )
