"""``GatewayBudget``: a spend limit on the MLflow AI Gateway.

Alert thresholds (ALERT policies at a percentage of the limit) notify through one webhook; an
optional hard stop (a REJECT policy at 100 %) answers HTTP 429 until the window resets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import pulumi

from components.naming import percent_label, slug
from providers.budget_alert_webhook import BudgetAlertWebhook
from providers.gateway_budget_policy import GatewayBudgetPolicy


@dataclass
class WebhookArgs:
    url: pulumi.Input[str]
    """Receiver URL; Slack and PagerDuty URLs carry tokens, so it is always kept secret."""
    secret: Optional[pulumi.Input[str]] = None
    """HMAC key for X-MLflow-Signature; always kept secret."""
    events: Optional[Sequence[str]] = None
    description: Optional[str] = None
    active: bool = True


@dataclass
class GatewayBudgetArgs:
    limit_usd: float
    window: Union[str, dict[str, Any]] = "monthly"
    scope: str = "GLOBAL"
    target: Optional[str] = None
    alert_thresholds: Sequence[float] = (50.0, 80.0)
    """Percentages of ``limit_usd`` at which an ALERT fires."""
    hard_stop: bool = True
    """A REJECT policy at 100 % of ``limit_usd``."""
    webhook: Optional[WebhookArgs] = None


def _secret(value: Optional[pulumi.Input[str]]) -> Optional[pulumi.Output[str]]:
    return None if value is None else pulumi.Output.secret(value)


class GatewayBudget(pulumi.ComponentResource):
    alert_policy_ids: pulumi.Output[dict]
    hard_stop_policy_id: Optional[pulumi.Output[str]]
    webhook_id: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: GatewayBudgetArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("ml-budgets:index:GatewayBudget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.webhook = None
        if args.webhook is not None:
            webhook = args.webhook
            self.webhook = BudgetAlertWebhook(
                f"{name}-webhook",
                webhook_name=slug(name),
                url=_secret(webhook.url),
                secret=_secret(webhook.secret),
                events=list(webhook.events) if webhook.events else None,
                description=webhook.description or f"ml-budgets alerts for {name}",
                active=webhook.active,
                opts=child,
            )

        def policy(suffix: str, amount: float, action: str) -> GatewayBudgetPolicy:
            return GatewayBudgetPolicy(
                f"{name}-{suffix}",
                amount_usd=round(amount, 6),
                window=args.window,
                action=action,
                scope=args.scope,
                target=args.target,
                opts=child,
            )

        self.alerts = {
            percent: policy(f"alert-{percent_label(percent)}", args.limit_usd * percent / 100, "ALERT")
            for percent in args.alert_thresholds
        }
        self.hard_stop = policy("hard-stop", args.limit_usd, "REJECT") if args.hard_stop else None

        self.alert_policy_ids = pulumi.Output.from_input(
            {percent_label(p): r.budget_policy_id for p, r in self.alerts.items()}
        )
        self.hard_stop_policy_id = self.hard_stop.budget_policy_id if self.hard_stop else None
        self.webhook_id = self.webhook.webhook_id if self.webhook else None
        self.register_outputs(
            {
                "alert_policy_ids": self.alert_policy_ids,
                "hard_stop_policy_id": self.hard_stop_policy_id,
                "webhook_id": self.webhook_id,
            }
        )
