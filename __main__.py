"""The ml-budgets stack program: teams and gateway budgets from stack config.

Config reference: README.md, "Stack config".  Nothing here imports mlflow or databricks-sdk:
the providers do that in their own process, when the engine calls them.
"""

import pulumi

from components import GatewayBudget, TeamBudget, TeamBudgetArgs
from stack_config import load_stack_config

stack_config = load_stack_config()

teams = {
    team.name: TeamBudget(
        team.name,
        TeamBudgetArgs(
            serverless=team.serverless,
            gateway=team.gateway,
            databricks_gateway=team.databricks_gateway,
            evaluation=team.evaluation,
        ),
    )
    for team in stack_config.teams
}
gateway_budgets = {name: GatewayBudget(name, args) for name, args in stack_config.gateway_budgets.items()}

pulumi.export("teams", {name: team.exports() for name, team in teams.items()})
pulumi.export(
    "gateway_budgets",
    {
        name: {
            "alert_policy_ids": budget.alert_policy_ids,
            "hard_stop_policy_id": budget.hard_stop_policy_id,
            "hard_stop_alert_policy_id": budget.hard_stop_alert_policy_id,
            "webhook_id": budget.webhook_id,
            "enforced_everywhere_at": budget.enforced_everywhere_at,
        }
        for name, budget in gateway_budgets.items()
    },
)
