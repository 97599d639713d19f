"""``DatabricksGatewayBudget``: a monthly dollar cap on Databricks AI Gateway usage.

One account budget of resource type AI_GATEWAY: alerts at percentages of the cap email the
listed addresses, the cap itself blocks usage (BLOCK_USAGE, the highest shared threshold), and an
optional per-user limit blocks each user at their own spend, with higher limits for named
principals (groups, users, service principals, by account principal id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

import stack_config_schema as config_schema
from components.account_budget_check import report_account_budget_failures
from components.alert_tiers import below_the_limit, tier_usd
from providers.account_budget import AccountBudget
from providers.core import Failures


@dataclass
class DatabricksGatewayBudgetArgs:
    monthly_limit_usd: float
    """The shared monthly cap in list-price US dollars."""
    notify: Sequence[str] = ()
    """Email addresses told at every threshold and at the cap."""
    alert_thresholds: Sequence[float] = (50.0, 80.0)
    """Percentages of the cap at which ``notify`` gets an email (100 is the cap alert itself); at most 3 more."""
    hard_stop: bool = True
    """Block AI Gateway usage once the cap is reached, until the month ends."""
    per_user_limit_usd: float | None = None
    """Each user's own monthly limit."""
    per_user_hard_stop: bool = True
    overrides: Mapping[str, float] = field(default_factory=dict)
    """Per-user limit for named principals: account principal id -> dollars (e.g. a group's id)."""
    tags: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Count only usage carrying these tags (key -> any of the values)."""
    workspace_ids: Sequence[int] = ()
    include_external_spend: bool = False
    """Also count third-party spend billed through Databricks (fixed at creation)."""
    display_name: str | None = None

    def validate(self, path: str, failures: Failures) -> None:
        """Report at config paths under ``path`` what the account budget's ``check`` would refuse;
        keep its normalized workspace ids."""

        def at(key: str) -> str:
            return config_schema.key_path(config_schema.DATABRICKS_GATEWAY, path, key)

        if self.overrides and self.per_user_limit_usd is None:
            failures.add(
                at("overrides"), "needs `perUserLimitUsd`: overrides raise the per-user limit for named principals"
            )
        checked = report_account_budget_failures(
            gateway_budget_props(self.display_name or "x", self),
            {
                "display_name": at("displayName"),
                "alerts": at("alertThresholds"),
                "alerts.notify": at("notify"),
                "per_user_alert": at("perUserLimitUsd"),
                "per_user_alert.notify": at("notify"),
                "per_user_alert.overrides": at("overrides"),
                "tags": at("tags"),
                "workspace_ids": at("workspaceIds"),
                "include_external_spend": at("includeExternalSpend"),
            },
            failures,
        )
        if isinstance(checked.get("workspace_ids"), list):
            self.workspace_ids = checked["workspace_ids"]


def gateway_budget_props(name: str, args: DatabricksGatewayBudgetArgs) -> dict[str, Any]:
    """The ``AccountBudget`` inputs of a gateway budget (also what stack config checks)."""
    notify = list(args.notify)
    alerts = [
        {"threshold_usd": tier_usd(args.monthly_limit_usd, percent), "notify": notify, "block_usage": False}
        for percent in below_the_limit(args.alert_thresholds)  # the cap is the 100 % alert
    ]
    alerts.append({"threshold_usd": args.monthly_limit_usd, "notify": notify, "block_usage": args.hard_stop})
    per_user = None
    if args.per_user_limit_usd is not None:
        per_user = {
            "threshold_usd": args.per_user_limit_usd,
            "notify": notify,
            "block_usage": args.per_user_hard_stop,
            "overrides": dict(args.overrides),
        }
    return {
        "display_name": args.display_name or name,
        "resource_type": "AI_GATEWAY",
        "alerts": alerts,
        "per_user_alert": per_user,
        # A string stays a string, so check() rejects it instead of reading "prod" as p, r, o, d.
        "tags": {key: values if isinstance(values, str) else list(values) for key, values in args.tags.items()},
        "workspace_ids": list(args.workspace_ids),
        "include_external_spend": args.include_external_spend,
    }


class DatabricksGatewayBudget(pulumi.ComponentResource):
    budget_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabricksGatewayBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ml-budgets:index:DatabricksGatewayBudget", name, None, opts)
        self.budget = AccountBudget(
            f"{name}-budget", **gateway_budget_props(name, args), opts=pulumi.ResourceOptions(parent=self)
        )
        self.budget_id = self.budget.budget_id
        self.register_outputs({"budget_id": self.budget_id})
