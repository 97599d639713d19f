"""Pulumi dynamic providers for AI and ML spend control on Databricks and MLflow.

Resource classes are imported lazily so that a program which declares only some of them does
not pay for the others (none of them imports mlflow or databricks-sdk at module level).
"""

from importlib import import_module
from typing import Any

_RESOURCE_MODULES = {
    "ServerlessBudgetPolicy": "providers.serverless_budget_policy",
    "BudgetPolicyGrants": "providers.budget_policy_grants",
    "GatewayBudgetPolicy": "providers.gateway_budget_policy",
    "BudgetAlertWebhook": "providers.budget_alert_webhook",
    "ExperimentTag": "providers.experiment_tag",
    "ExperimentPolicyTag": "providers.experiment_policy_tag",
    "AccountBudget": "providers.account_budget",
}

__all__ = list(_RESOURCE_MODULES)


def __getattr__(name: str) -> Any:
    module_name = _RESOURCE_MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'providers' has no attribute {name!r}")
    return getattr(import_module(module_name), name)
