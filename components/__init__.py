"""Reusable budget components, built only from the resources in ``providers``."""

from components.databricks_gateway_budget import DatabricksGatewayBudget, DatabricksGatewayBudgetArgs
from components.evaluation_budget import EvaluationBudget, EvaluationBudgetArgs
from components.gateway_budget import GatewayBudget, GatewayBudgetArgs, MlflowServerTracking, RelayRoute, WebhookArgs
from components.serverless_budget import ServerlessBudget, ServerlessBudgetArgs
from components.team_budget import TeamBudget, TeamBudgetArgs

__all__ = [
    "DatabricksGatewayBudget",
    "DatabricksGatewayBudgetArgs",
    "EvaluationBudget",
    "EvaluationBudgetArgs",
    "GatewayBudget",
    "GatewayBudgetArgs",
    "MlflowServerTracking",
    "RelayRoute",
    "ServerlessBudget",
    "ServerlessBudgetArgs",
    "TeamBudget",
    "TeamBudgetArgs",
    "WebhookArgs",
]
