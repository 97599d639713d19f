"""``ServerlessBudget``: a Databricks serverless budget policy with its grants and experiment tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi

from components.naming import slug
from providers.budget_policy_grants import BudgetPolicyGrants
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


class ServerlessBudget(pulumi.ComponentResource):
    policy_id: pulumi.Output[str]
    policy_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServerlessBudgetArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
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
            ExperimentPolicyTag(f"{name}-experiment-{slug(experiment)}", experiment=experiment,
                                policy_id=self.policy.policy_id, opts=child)
            for experiment in args.experiments
        ]

        self.policy_id = self.policy.policy_id
        self.policy_name = self.policy.policy_name
        self.register_outputs({"policy_id": self.policy_id, "policy_name": self.policy_name})
