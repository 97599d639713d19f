"""``TeamBudget``: one team's serverless budget, MLflow gateway budget, Databricks AI Gateway
budget and evaluation budget, the unit most stacks declare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.databricks_gateway_budget import DatabricksGatewayBudget, DatabricksGatewayBudgetArgs
from components.evaluation_budget import EvaluationBudget, EvaluationBudgetArgs
from components.gateway_budget import GatewayBudget, GatewayBudgetArgs
from components.serverless_budget import ServerlessBudget, ServerlessBudgetArgs


@dataclass
class TeamBudgetArgs:
    serverless: ServerlessBudgetArgs | None = None
    gateway: GatewayBudgetArgs | None = None
    databricks_gateway: DatabricksGatewayBudgetArgs | None = None
    evaluation: EvaluationBudgetArgs | None = None


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
