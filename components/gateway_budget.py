"""``GatewayBudget``: a spend limit on the MLflow AI Gateway.

Alert thresholds (ALERT policies at a percentage of the limit) notify through one webhook; an
optional hard stop (a REJECT policy at 100 %) answers HTTP 429 until the window resets.  MLflow
announces ALERT policies only, so the hard stop is paired with an ALERT at the same amount: the
moment traffic is cut is announced too.

The webhook goes to a raw URL (which then hears every alert of the MLflow server) or to a route
of the alert relay (``alert_relay/``): the component builds the route's URL from its own
policies' ids, ``<relay>/mlflow/<route>?policy=<id>…&hard_stop=<id>``, so the relay forwards
only this budget's alerts and marks the hard stop's, and recreated policies update it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pulumi

import stack_config_schema as config_schema
from components.alert_tiers import tier_usd
from components.naming import percent_label, slug
from providers.budget_alert_webhook import MAX_URL_LENGTH, BudgetAlertWebhook
from providers.core import Failures
from providers.gateway_budget_policy import GatewayBudgetPolicy


@dataclass
class RelayRoute:
    """A route of the alert relay: MLflow posts to ``<url>/mlflow/<route>?policy=…``."""

    url: str
    """The relay's base URL, e.g. ``https://alert-relay.internal.example.com``."""
    route: str
    """A route name of the relay's config (it holds the destinations and the signing secret)."""


@dataclass
class WebhookArgs:
    url: pulumi.Input[str] | None = None
    """Receiver URL; Slack and PagerDuty URLs carry tokens, so it is always kept secret."""
    secret: pulumi.Input[str] | None = None
    """HMAC key for X-MLflow-Signature; always kept secret."""
    events: Sequence[str] | None = None
    description: str | None = None
    active: bool = True
    relay: RelayRoute | None = None
    """Instead of ``url``: deliver through this relay route (needs ``secret``)."""

    def validate(self, path: str, failures: Failures) -> None:
        """Report at config paths under ``path`` what the webhook's own validators refuse; keep
        the events and secret as they normalize them."""
        from providers import budget_alert_webhook as hook

        def at(key: str) -> str:
            return config_schema.key_path(config_schema.WEBHOOK, path, key)

        if self.url is not None:
            hook.validate_url(self.url, failures, at("url"))
        if self.events is not None:
            self.events = hook.validate_events(self.events, failures, at("events"))
        self.secret = hook.validate_secret(self.secret, failures, at("secret"))


# alert_relay.config.ROUTE_NAME (not imported: the program does not load the relay).
ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def relay_route(
    route: str, relay_url: str | None, webhook: WebhookArgs, path: str, failures: Failures
) -> RelayRoute | None:
    """The relay route a webhook delivers through, failures at config paths under the webhook's
    ``path`` for what would keep it from delivering; None without the relay's URL."""

    def at(key: str) -> str:
        return config_schema.key_path(config_schema.WEBHOOK, path, key)

    if webhook.url is not None:
        failures.add(at("route"), "set either `route` (through the alert relay) or `url`, not both")
    if not ROUTE_NAME.fullmatch(route):
        failures.add(at("route"), f"must be a relay route name (1-63 letters, digits, '_' or '-'), got {route!r}")
    if relay_url is None:
        failures.add(at("route"), f"needs {config_schema.NAMESPACE}:alertRelay.url, the relay's base URL")
    if webhook.secret is None:
        failures.add(
            at("secret"),
            "is required with `route`: the relay forwards only signed deliveries "
            "(set it with `pulumi config set --secret --path`, and the same value in the relay's environment)",
        )
    return RelayRoute(url=relay_url, route=route) if relay_url else None


# MLflow budget policy ids are "bp-" + 32 hex digits.
POLICY_ID_PLACEHOLDER = "bp-" + "0" * 32


def relay_webhook_url_length(relay: RelayRoute, alert_tiers: int, hard_stops: int) -> int:
    """The length of the URL the component will build, known before the policies exist."""
    return len(relay_webhook_url(relay, [POLICY_ID_PLACEHOLDER] * alert_tiers, [POLICY_ID_PLACEHOLDER] * hard_stops))


def relay_webhook_url(relay: RelayRoute, policy_ids: Sequence[str], hard_stop_ids: Sequence[str]) -> str:
    query = urlencode([("policy", p) for p in policy_ids] + [("hard_stop", p) for p in hard_stop_ids])
    return f"{relay.url.rstrip('/')}/mlflow/{relay.route}?{query}"


@dataclass(frozen=True)
class MlflowServerTracking:
    """How the MLflow server tracks gateway budgets (``providers/gateway_enforcement.py``);
    None: not said (MLflow's defaults: 4 workers, in-memory, 600 s)."""

    workers: int | None = None
    """``mlflow server --workers``."""
    budget_tracker: str | None = None
    """``redis`` when ``MLFLOW_GATEWAY_BUDGET_REDIS_URL`` is set, else ``in-memory``."""
    refresh_interval_seconds: int | None = None
    """``MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL``."""

    def say_when_caps_are_enforced(
        self, gateways: Sequence[GatewayBudgetArgs], tracking_uri: str | None, path: str
    ) -> None:
        """At preview and up: a server whose workers count spend apart, and how long caps take
        (``path``: where this server is declared)."""
        from providers import gateway_enforcement as enforcement

        if not gateways:
            return
        if enforcement.per_worker_caps(self.workers, self.budget_tracker) and any(g.hard_stop for g in gateways):
            pulumi.log.warn(enforcement.per_worker_caps_warning(self.workers, path))
        # Budgets written into a database (sqlite:///…) reach no worker before its refresh.
        through_server = tracking_uri is None or tracking_uri.startswith(("http://", "https://", "databricks"))
        delay = enforcement.propagation_seconds(self.workers if through_server else None, self.refresh_interval_seconds)
        if delay:
            said = "" if self.refresh_interval_seconds else " (MLflow's default; say yours in " + path + ")"
            pulumi.log.info(
                f"gateway caps created or changed by this update are enforced by every MLflow server worker "
                f"within {delay} s, the budget refresh interval{said}: see each budget's enforced_everywhere_at"
            )


@dataclass
class GatewayBudgetArgs:
    limit_usd: float
    window: str | dict[str, Any] = "monthly"
    scope: str = "GLOBAL"
    target: str | None = None
    alert_thresholds: Sequence[float] = (50.0, 80.0)
    """Percentages of ``limit_usd`` at which an ALERT fires."""
    hard_stop: bool = True
    """A REJECT policy at 100 % of ``limit_usd``."""
    webhook: WebhookArgs | None = None
    allow_untracked: bool = False
    """Accept a budget MLflow cannot count spend for (usage tracking off, unpriced model)."""
    declared_at: str | None = None
    """Where this budget is declared (a stack config path), for error messages."""
    server: MlflowServerTracking | None = None
    """How the MLflow server tracks budgets: gives each policy its ``enforced_everywhere_at``."""

    def validate(self, path: str, failures: Failures) -> None:
        """Report at config paths under ``path`` what the policies would refuse or what could not
        work; keep the window, scope and target as the policies' validators normalize them."""
        from providers import gateway_budget_policy as policy

        def at(key: str) -> str:
            return config_schema.key_path(config_schema.GATEWAY, path, key)

        if not self.alert_thresholds and not self.hard_stop:
            failures.add(path, "declares nothing: set alertThresholds, hardStop: true, or both")
        if self.webhook is not None and self.webhook.relay is not None:
            self._check_relay_url_fits(self.webhook.relay, at("alertThresholds"), failures)
        self.window = policy.validate_window(self.window, failures, at("window"))
        self.scope = policy.validate_scope(self.scope, failures, at("scope"))
        self.target = policy.validate_target(self.target, failures, at("target"), self.scope)

    def _check_relay_url_fits(self, relay: RelayRoute, path: str, failures: Failures) -> None:
        tiers = len(set(self.alert_thresholds) - ({100} if self.hard_stop else set()))
        length = relay_webhook_url_length(relay, tiers, 1 if self.hard_stop else 0)
        if length > MAX_URL_LENGTH:
            failures.add(
                path,
                f"has too many tiers for one relay webhook: its URL lists every "
                f"policy id and would be {length} characters, MLflow stores at most {MAX_URL_LENGTH} "
                "(use fewer tiers, or a shorter alertRelay.url or route)",
            )


def check_alerts_reach_a_webhook(gateways: Sequence[tuple[str, GatewayBudgetArgs]], failures: Failures) -> None:
    """A failure at each budget's ``<path>.webhook`` whose alerts no webhook of the stack hears."""
    # MLflow sends every budget alert to every subscribed webhook: a webhook with a raw URL hears
    # them all; a relay route forwards only its own budget's.  Alerts that reach no webhook fire
    # into the void, and a hard stop is announced by an alert too.
    if any(g.webhook and g.webhook.relay is None for _, g in gateways):
        return
    for path, gateway in gateways:
        if (gateway.alert_thresholds or gateway.hard_stop) and gateway.webhook is None:
            fires = (
                "alertThresholds fire alerts" if gateway.alert_thresholds else "hardStop announces itself with an alert"
            )
            failures.add(
                config_schema.key_path(config_schema.GATEWAY, path, "webhook"),
                f"is required: {fires}, and no webhook in this stack receives them "
                "(give this budget a relay `route`, or give one budget a `url` that hears every alert)",
            )


def _latest(times: Sequence[str | None]) -> str:
    # ISO 8601 UTC strings sort by time: the latest is when the whole budget is in force.
    return max((t for t in times if t), default="")


def _secret(value: pulumi.Input[str] | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)


class GatewayBudget(pulumi.ComponentResource):
    alert_policy_ids: pulumi.Output[dict[str, str]]
    hard_stop_policy_id: pulumi.Output[str] | None
    hard_stop_alert_policy_id: pulumi.Output[str] | None
    webhook_id: pulumi.Output[str] | None
    enforced_everywhere_at: pulumi.Output[str]
    """ISO 8601 UTC: by then every worker of the MLflow server enforces this budget as last written."""

    def __init__(self, name: str, args: GatewayBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-budgets:index:GatewayBudget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        server = args.server or MlflowServerTracking()

        def policy(suffix: str, amount_usd: float, action: str) -> GatewayBudgetPolicy:
            return GatewayBudgetPolicy(
                f"{name}-{suffix}",
                amount_usd=round(amount_usd, 6),
                window=args.window,
                action=action,
                scope=args.scope,
                target=args.target,
                allow_untracked=args.allow_untracked,
                declared_at=args.declared_at,
                gateway_workers=server.workers,
                budget_tracker=server.budget_tracker,
                refresh_interval_seconds=server.refresh_interval_seconds,
                opts=child,
            )

        self.alerts = {
            percent: policy(f"alert-{percent_label(percent)}", tier_usd(args.limit_usd, percent), "ALERT")
            for percent in args.alert_thresholds
        }
        self.hard_stop = policy("hard-stop", args.limit_usd, "REJECT") if args.hard_stop else None
        # An alert tier at 100 % already announces the hard stop; otherwise add one.
        self.hard_stop_alert = None
        if self.hard_stop is not None:
            self.hard_stop_alert = self.alerts.get(100.0) or policy("hard-stop-alert", args.limit_usd, "ALERT")

        self.webhook = self._webhook(name, args.webhook, child) if args.webhook is not None else None

        # from_input unwraps the nested Outputs; its signature (Input[U] -> Output[U]) cannot say so.
        self.alert_policy_ids = pulumi.Output.from_input(
            {percent_label(p): r.budget_policy_id for p, r in self.alerts.items()}  # type: ignore[misc]
        )
        self.hard_stop_policy_id = self.hard_stop.budget_policy_id if self.hard_stop else None
        self.hard_stop_alert_policy_id = self.hard_stop_alert.budget_policy_id if self.hard_stop_alert else None
        self.webhook_id = self.webhook.webhook_id if self.webhook else None
        policies = [*self.alerts.values(), *([self.hard_stop] if self.hard_stop else [])]
        self.enforced_everywhere_at = pulumi.Output.all(*(p.enforced_everywhere_at for p in policies)).apply(_latest)
        self.register_outputs(
            {
                "alert_policy_ids": self.alert_policy_ids,
                "hard_stop_policy_id": self.hard_stop_policy_id,
                "hard_stop_alert_policy_id": self.hard_stop_alert_policy_id,
                "webhook_id": self.webhook_id,
                "enforced_everywhere_at": self.enforced_everywhere_at,
            }
        )

    def _webhook(self, name: str, webhook: WebhookArgs, opts: pulumi.ResourceOptions) -> BudgetAlertWebhook:
        url = webhook.url
        if webhook.relay is not None:
            url = self._relay_url(webhook.relay)
        if url is None:
            raise ValueError(f"GatewayBudget {name!r}: the webhook needs a `url` or a `relay` route")
        return BudgetAlertWebhook(
            f"{name}-webhook",
            webhook_name=slug(name),
            url=pulumi.Output.secret(url),
            secret=_secret(webhook.secret),
            events=list(webhook.events) if webhook.events else None,
            description=webhook.description or f"ml-budgets alerts for {name}",
            active=webhook.active,
            opts=opts,
        )

    def _relay_url(self, relay: RelayRoute) -> pulumi.Output[str]:
        stop = self.hard_stop_alert
        tiers = [r for r in self.alerts.values() if r is not stop]
        ids = [r.budget_policy_id for r in tiers] + ([stop.budget_policy_id] if stop else [])
        return pulumi.Output.all(*ids).apply(
            lambda resolved: relay_webhook_url(relay, resolved[: len(tiers)], resolved[len(tiers) :])
        )
