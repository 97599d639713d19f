"""``TeamBudget``: one team's serverless budget, MLflow gateway budget, Databricks AI Gateway
budget and evaluation budget, the unit most stacks declare."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

import stack_config_schema as config_schema
from components.databricks_gateway_budget import DatabricksGatewayBudget, DatabricksGatewayBudgetArgs
from components.evaluation_budget import EvaluationBudget, EvaluationBudgetArgs
from components.gateway_budget import GatewayBudget, GatewayBudgetArgs
from components.serverless_budget import ServerlessBudget, ServerlessBudgetArgs
from providers.core import Failures


@dataclass
class TeamBudgetArgs:
    serverless: ServerlessBudgetArgs | None = None
    gateway: GatewayBudgetArgs | None = None
    databricks_gateway: DatabricksGatewayBudgetArgs | None = None
    evaluation: EvaluationBudgetArgs | None = None


def check_teams_do_not_share(teams: Sequence[TeamBudgetArgs], path: str, failures: Failures) -> None:
    """Two resources must not manage one object: a policy name or an experiment's tags
    (``path``: where the list of teams is declared)."""
    policy_names: dict[str, int] = {}
    experiments: dict[str, int] = {}
    for i, team in enumerate(teams):
        if not team.serverless:
            continue
        serverless = f"{path}[{i}].serverless"
        name = team.serverless.policy_name
        if not isinstance(name, str):  # config gives strings; an Output from code cannot be compared here
            continue
        if name in policy_names:
            failures.add(
                config_schema.key_path(config_schema.SERVERLESS, serverless, "policyName"),
                f"{name!r} is also the policy of teams[{policy_names[name]}]; policy names are unique in an account",
            )
        policy_names.setdefault(name, i)
        for j, experiment in enumerate(team.serverless.experiments):
            if experiment in experiments:
                owner = experiments[experiment]
                where = "this team" if owner == i else f"teams[{owner}]"
                failures.add(
                    f"{config_schema.key_path(config_schema.SERVERLESS, serverless, 'experiments')}[{j}]",
                    f"{experiment!r} is already listed by {where}; an experiment has one budget policy",
                )
            experiments.setdefault(experiment, i)
    _check_one_evaluation_budget_per_experiment(teams, path, failures)


def _check_one_evaluation_budget_per_experiment(teams: Sequence[TeamBudgetArgs], path: str, failures: Failures) -> None:
    owners: dict[str, int] = {}
    for i, team in enumerate(teams):
        listed = config_schema.key_path(config_schema.EVALUATION, f"{path}[{i}].evaluation", "experiments")
        for j, experiment in enumerate(team.evaluation.experiments if team.evaluation else []):
            if experiment in owners:
                where = "this team" if owners[experiment] == i else f"teams[{owners[experiment]}]"
                failures.add(
                    f"{listed}[{j}]",
                    f"{experiment!r} already has a token budget from {where}; an experiment has one",
                )
            owners.setdefault(experiment, i)


class TeamBudget(pulumi.ComponentResource):
    policy_id: pulumi.Output[str] | None
    webhook_id: pulumi.Output[str] | None

    def __init__(self, team: str, args: TeamBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-budgets:index:TeamBudget", team, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.serverless = ServerlessBudget(f"{team}-serverless", args.serverless, child) if args.serverless else None
        self.gateway = GatewayBudget(f"{team}-gateway", args.gateway, child) if args.gateway else None
        self.databricks_gateway = (
            DatabricksGatewayBudget(f"{team}-databricks-gateway", args.databricks_gateway, child)
            if args.databricks_gateway
            else None
        )
        self.evaluation = None
        if args.evaluation:
            # Its token-ceiling tags used to belong to the serverless budget: aliases keep them.
            self.evaluation = EvaluationBudget(f"{team}-evaluation", args.evaluation, child, moved_from=self.serverless)

        self.policy_id = self.serverless.policy_id if self.serverless else None
        self.webhook_id = self.gateway.webhook_id if self.gateway else None
        self.register_outputs({"policy_id": self.policy_id, "webhook_id": self.webhook_id})

    def exports(self) -> dict[str, pulumi.Output[Any]]:
        """What users need from this team: its policy id, budget ids, webhook id and gateway policy ids."""
        out: dict[str, pulumi.Output[Any]] = {}
        if self.serverless:
            out["policy_id"] = self.serverless.policy_id
            if self.serverless.budget_id is not None:
                out["budget_id"] = self.serverless.budget_id
        if self.databricks_gateway:
            out["databricks_gateway_budget_id"] = self.databricks_gateway.budget_id
        if self.gateway:
            out["gateway_alert_policy_ids"] = self.gateway.alert_policy_ids
            if self.gateway.hard_stop_policy_id is not None:
                out["gateway_hard_stop_policy_id"] = self.gateway.hard_stop_policy_id
            if self.gateway.hard_stop_alert_policy_id is not None:  # set exactly when there is a hard stop
                out["gateway_hard_stop_alert_policy_id"] = self.gateway.hard_stop_alert_policy_id
            if self.gateway.webhook_id is not None:
                out["webhook_id"] = self.gateway.webhook_id
            out["gateway_enforced_everywhere_at"] = self.gateway.enforced_everywhere_at
        return out
