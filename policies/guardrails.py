"""The ml-budgets guardrails: policies over the resources an ml-budgets stack declares.

The pack runs in its own virtualenv, without the project's packages: it knows the resources by
their type tokens and input names (providers/*.py), not by importing them.  The engine hands a
policy each resource's inputs; during ``pulumi preview`` an input computed from another resource
(a policy id) is unknown, so the policies read only inputs that come from stack config.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Type tokens: a pulumi.dynamic.Resource subclass declared with module="mlbudgets", name=N
# registers as "pulumi-python:dynamic/mlbudgets:N".
DYNAMIC = "pulumi-python:dynamic/mlbudgets:"
GATEWAY_BUDGET_POLICY = DYNAMIC + "GatewayBudgetPolicy"
BUDGET_POLICY_GRANTS = DYNAMIC + "BudgetPolicyGrants"
SERVERLESS_BUDGET_POLICY = DYNAMIC + "ServerlessBudgetPolicy"
ACCOUNT_BUDGET = DYNAMIC + "AccountBudget"
TEAM_BUDGET = "ml-budgets:index:TeamBudget"

WINDOW_PRESETS = {"daily": ("DAYS", 1), "weekly": ("WEEKS", 1), "monthly": ("MONTHS", 1)}
DAYS_PER_UNIT = {"MINUTES": 1 / 1440, "HOURS": 1 / 24, "DAYS": 1, "WEEKS": 7, "MONTHS": 30}
CEILING_DAYS = 30
ACCOUNT_BUDGET_WINDOW = ("MONTHS", 1)  # Databricks budgets are monthly, cumulative
SCOPES = ["GLOBAL", "WORKSPACE", "ENDPOINT", "USER"]
SAFE_PRINCIPAL_PREFIXES = ("groups/", "servicePrincipals/")


# ---- reading resource inputs -----------------------------------------------------------------


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def window_of(value: Any) -> tuple[str, int] | None:
    """(unit, length) of a gateway budget window, as declared ("monthly") or as checked ({unit, value})."""
    if isinstance(value, str):
        return WINDOW_PRESETS.get(value.strip().lower())
    if isinstance(value, Mapping):
        unit, length = value.get("unit"), value.get("value")
        if isinstance(unit, str) and unit.upper() in DAYS_PER_UNIT and isinstance(length, (int, float)) and length >= 1:
            return unit.upper(), int(length)
    return None


def window_text(window: tuple[str, int]) -> str:
    unit, length = window
    singular = unit[:-1].lower()
    return f"per {singular}" if length == 1 else f"per {length} {unit.lower()}"


def per_ceiling_period(amount: float, window: tuple[str, int]) -> float:
    """The most a cap lets through in CEILING_DAYS days (a month counts as 30 days)."""
    unit, length = window
    return amount * CEILING_DAYS / (DAYS_PER_UNIT[unit] * length)


def text(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) else None


@dataclass
class GatewayLimit:
    """One dollar amount on the gateway: an MLflow gateway budget policy or a Databricks AI
    Gateway account budget threshold."""

    resource: PolicyResource
    subject: str  # what it limits: "ENDPOINT 'search-chat'", "GLOBAL", "account budget 'x'"
    target: str | None
    scope: str
    amount: float
    window: tuple[str, int]
    hard_stop: bool

    @property
    def group(self) -> tuple[str, str]:
        """The limits that belong together: one MLflow scope and target, or one account budget."""
        return (self.scope, self.resource.urn if self.scope == "ACCOUNT" else self.target or "")

    def describe(self) -> str:
        return f"{usd(self.amount)} {window_text(self.window)}"


def gateway_policy_limit(resource: PolicyResource) -> GatewayLimit | None:
    props = resource.props
    amount, window = props.get("amount_usd"), window_of(props.get("window"))
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or window is None:
        return None  # invalid inputs: the provider's check rejects them with a precise message
    scope = text(props.get("scope")) or "GLOBAL"
    target = props.get("target") if isinstance(props.get("target"), str) else None
    subject = f"{scope} {target!r}" if target else scope
    return GatewayLimit(resource, subject, target, scope, float(amount), window, text(props.get("action")) == "REJECT")


def account_budget_limits(resource: PolicyResource) -> list[GatewayLimit]:
    """The shared alert thresholds of a Databricks AI Gateway account budget."""
    props = resource.props
    if text(props.get("resource_type")) != "AI_GATEWAY":
        return []
    name = props.get("display_name") or resource.name
    limits = []
    for alert in props.get("alerts") or []:
        threshold = alert.get("threshold_usd")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            continue
        limits.append(
            GatewayLimit(
                resource,
                f"account budget {name!r}",
                name,
                "ACCOUNT",
                float(threshold),
                ACCOUNT_BUDGET_WINDOW,
                bool(alert.get("block_usage")),
            )
        )
    return limits


def gateway_limits(resources: Iterable[PolicyResource]) -> list[GatewayLimit]:
    limits: list[GatewayLimit] = []
    for resource in resources:
        if resource.resource_type == GATEWAY_BUDGET_POLICY:
            limit = gateway_policy_limit(resource)
            if limit is not None:
                limits.append(limit)
        elif resource.resource_type == ACCOUNT_BUDGET:
            limits.extend(account_budget_limits(resource))
    # The engine registers resources in whatever order the program's outputs resolve: sort, so
    # messages and the resource a violation is reported on do not change from run to run.
    return sorted(limits, key=lambda limit: (limit.amount, limit.resource.name))


def team_of(resource: PolicyResource) -> str | None:
    parent = resource.parent
    while parent is not None:
        if parent.resource_type == TEAM_BUDGET:
            name: str = parent.name
            return name
        parent = parent.parent
    return None


def config(args: Any) -> Mapping[str, Any]:
    return args.get_config() or {}


# ---- gateway-hard-stop ---------------------------------------------------------------------


def validate_hard_stops(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = config(args)
    scopes = set(settings.get("scopes", ["ENDPOINT"]))
    alert_only = set(settings.get("alertOnlyTargets", []))
    include_account_budgets = settings.get("accountBudgets", True)

    groups: dict[tuple[str, str], list[GatewayLimit]] = defaultdict(list)
    for limit in gateway_limits(args.resources):
        if limit.scope == "ACCOUNT" and not include_account_budgets:
            continue
        groups[limit.group].append(limit)

    for (scope, _), limits in groups.items():
        subject, target = limits[0].subject, limits[0].target
        stops = [limit for limit in limits if limit.hard_stop]
        needs_stop = (scope == "ACCOUNT" or scope in scopes) and target not in alert_only
        if not stops and needs_stop:
            tiers = ", ".join(limit.describe() for limit in limits)
            fix = (
                "set hardStop: true (the alert at the cap gets block_usage)"
                if scope == "ACCOUNT"
                else "set hardStop: true (a REJECT policy at the limit)"
            )
            exemption = f"list {target!r} in alertOnlyTargets" if target else "remove its scope from scopes"
            report(
                f"{subject} has alert tiers ({tiers}) but no hard stop, so spend is never cut off: "
                f"{fix}, or, if it must never be cut off, {exemption} in this policy's config.",
                limits[0].resource.urn,
            )
        for stop_window in sorted({limit.window for limit in stops}):
            cap = min(limit.amount for limit in stops if limit.window == stop_window)
            for alert in limits:
                if not alert.hard_stop and alert.window == stop_window and alert.amount > cap:
                    report(
                        f"{subject}: the alert tier at {alert.describe()} is above the hard stop at "
                        f"{usd(cap)} {window_text(stop_window)}; spend stops at the hard stop, so this alert "
                        f"can never fire: lower it to {usd(cap)} or less.",
                        alert.resource.urn,
                    )


# ---- gateway-cap-ceilings ------------------------------------------------------------------


def validate_ceilings(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = config(args)
    team_ceiling, org_ceiling = settings.get("teamCeilingUsd"), settings.get("orgCeilingUsd")
    caps = [limit for limit in gateway_limits(args.resources) if limit.hard_stop]
    if not caps:
        return
    if team_ceiling is None and org_ceiling is None:
        report(
            "no ceiling is configured, so no cap is checked: set teamCeilingUsd and/or orgCeilingUsd "
            "(US dollars per 30 days) in this policy's config, or disable the policy."
        )
        return

    by_team: dict[str, list[GatewayLimit]] = defaultdict(list)
    team_urns: dict[str, str] = {}
    for cap in caps:
        team = team_of(cap.resource)
        if team is not None:
            by_team[team].append(cap)
            team_urns.setdefault(team, _team_urn(cap.resource))

    def total(limits: list[GatewayLimit]) -> float:
        return sum(per_ceiling_period(limit.amount, limit.window) for limit in limits)

    def breakdown(limits: list[GatewayLimit]) -> str:
        return "; ".join(f"{limit.resource.name}: {limit.describe()}" for limit in limits)

    if team_ceiling is not None:
        for team, team_caps in by_team.items():
            spent = total(team_caps)
            if spent > team_ceiling:
                report(
                    f"team {team!r} caps {usd(spent)} per {CEILING_DAYS} days ({breakdown(team_caps)}), above the "
                    f"team ceiling of {usd(team_ceiling)}: lower its limitUsd or raise teamCeilingUsd.",
                    team_urns[team],
                )
    if org_ceiling is not None:
        for cap in caps:
            allowed = per_ceiling_period(cap.amount, cap.window)
            if allowed > org_ceiling:
                report(
                    f"{cap.subject} is capped at {cap.describe()} ({usd(allowed)} per {CEILING_DAYS} days), above "
                    f"the org-wide ceiling of {usd(org_ceiling)}: lower it or raise orgCeilingUsd.",
                    cap.resource.urn,
                )
        team_caps = [cap for caps_of_team in by_team.values() for cap in caps_of_team]
        spent = total(team_caps)
        if len(team_caps) > 1 and spent > org_ceiling:  # a single cap was judged above
            report(
                f"the teams' caps add up to {usd(spent)} per {CEILING_DAYS} days ({breakdown(team_caps)}), above the "
                f"org-wide ceiling of {usd(org_ceiling)}: lower some team limits or raise orgCeilingUsd."
            )


def _team_urn(resource: PolicyResource) -> str:
    parent = resource.parent
    while parent is not None and parent.resource_type != TEAM_BUDGET:
        parent = parent.parent
    urn: str = parent.urn if parent is not None else resource.urn
    return urn


# ---- grants-to-groups / grants-keep-manager -------------------------------------------------


def validate_grantees(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUDGET_POLICY_GRANTS:
        return
    allow_user_managers = config(args).get("allowUserManagers", True)
    roles = [("users", "User")] + ([] if allow_user_managers else [("managers", "Manager")])
    for field, role in roles:
        for principal in args.props.get(field) or []:
            if isinstance(principal, str) and not principal.startswith(SAFE_PRINCIPAL_PREFIXES):
                report(
                    f"{args.name} grants {role} to {principal}: grant it to a group (groups/<name>) or a service "
                    f"principal (servicePrincipals/<application id>), so access follows team membership."
                    + ("" if field == "managers" else " Individual users may be Managers (allowUserManagers).")
                )


def validate_keeps_manager(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUDGET_POLICY_GRANTS or args.props.get("authoritative") is not True:
        return
    if not args.props.get("managers"):
        report(
            f"{args.name} is authoritative and names no Manager: applying it removes every Manager of the "
            f"policy, its owners included. Add a group or service principal to managers, or make the grants "
            f"additive (authoritativeGrants: false)."
        )


# ---- serverless-cost-tags / account-budget-notifies -----------------------------------------


def validate_cost_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVERLESS_BUDGET_POLICY:
        return
    required = config(args).get("requiredTagKeys", ["cost-center"])
    tags = args.props.get("custom_tags") or {}
    missing = [key for key in required if key not in tags or tags[key] in (None, "")]
    if missing:
        name = args.props.get("policy_name") or args.name
        report(
            f"serverless budget policy {name!r} lacks the cost-attribution tag(s) {', '.join(missing)}: add them "
            f"under customTags, so its spend is attributed in system.billing.usage."
        )


def validate_notifies(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ACCOUNT_BUDGET:
        return
    alerts = list(args.props.get("alerts") or [])
    per_user = args.props.get("per_user_alert")
    if per_user:
        alerts.append(per_user)
    if not any(address for alert in alerts for address in alert.get("notify") or []):
        name = args.props.get("display_name") or args.name
        blocks = any(alert.get("block_usage") for alert in alerts)
        consequence = "usage is blocked with nobody told" if blocks else "its alerts reach nobody"
        report(
            f"account budget {name!r} notifies no one, so {consequence}: add an address to the notify "
            f"list of at least one alert."
        )


# ---- gateway-budget-tracking ----------------------------------------------------------------

MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS = 600  # MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL
SERVER_CONFIG = "ml-budgets:mlflowServer"


def validate_budget_tracking(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A REJECT cap on a server declared (ml-budgets:mlflowServer) to count spend per worker."""
    if args.resource_type != GATEWAY_BUDGET_POLICY or text(args.props.get("action")) != "REJECT":
        return
    settings = config(args)
    workers, tracker = args.props.get("gateway_workers"), args.props.get("budget_tracker")
    workers = int(workers) if isinstance(workers, (int, float)) and not isinstance(workers, bool) else None
    interval = args.props.get("refresh_interval_seconds") or MLFLOW_DEFAULT_REFRESH_INTERVAL_SECONDS
    limit = gateway_policy_limit(args)  # reads .props, as a PolicyResource does
    subject = f"the hard stop {args.name}" + (f" ({limit.subject} {limit.describe()})" if limit else "")
    if tracker == "in-memory" and (workers is None or workers > 1):
        count = f"{workers} workers" if workers else "MLflow's default 4 workers"
        report(
            f"{subject} runs on an MLflow server with {count} and the in-memory budget tracker: each worker "
            f"counts spend on its own, so the cap lets through up to {workers or 4}x its amount. Set "
            f"MLFLOW_GATEWAY_BUDGET_REDIS_URL on the server and budgetTracker: redis in {SERVER_CONFIG}, or run "
            "it with --workers 1."
        )
    elif tracker is None and workers != 1 and settings.get("requireDeclaredServer", False):
        report(
            f"{subject}: the stack does not say how its MLflow server tracks budgets, so nobody can tell whether "
            f"the cap holds across workers: declare {SERVER_CONFIG} (workers, budgetTracker, "
            "budgetRefreshIntervalSeconds)."
        )
    most = settings.get("maxRefreshIntervalSeconds")
    if most is not None and isinstance(interval, (int, float)) and interval > most:
        said = "" if args.props.get("refresh_interval_seconds") else " (MLflow's default: none declared)"
        report(
            f"{subject}: a created or changed cap reaches every MLflow worker only after the budget refresh "
            f"interval, {interval:g} s{said}, longer than the {most:g} s allowed: set "
            f"MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL on the server and budgetRefreshIntervalSeconds in "
            f"{SERVER_CONFIG} to {most:g} or less."
        )


# ---- the policies ---------------------------------------------------------------------------


def _schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def _resource_policy(
    name: str,
    description: str,
    validate: Callable[[ResourceValidationArgs, ReportViolation], None],
    schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate, config_schema=schema)


POLICIES = [
    StackValidationPolicy(
        name="gateway-hard-stop",
        description="Every gateway budget has a hard stop, and no alert tier is above it.",
        validate=validate_hard_stops,
        config_schema=_schema(
            scopes={
                "type": "array",
                "items": {"enum": SCOPES},
                "default": ["ENDPOINT"],
                "description": "MLflow gateway budget scopes that need a hard stop (REJECT).",
            },
            alertOnlyTargets={
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Endpoints (or users) reviewed to run on alerts alone.",
            },
            accountBudgets={
                "type": "boolean",
                "default": True,
                "description": "Also require a BLOCK_USAGE alert on Databricks AI Gateway account budgets.",
            },
        ),
    ),
    StackValidationPolicy(
        name="gateway-cap-ceilings",
        description="Gateway caps stay under the per-team and org-wide ceilings (US dollars per 30 days).",
        validate=validate_ceilings,
        config_schema=_schema(
            teamCeilingUsd={
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Most a team's caps together may let through in 30 days.",
            },
            orgCeilingUsd={
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Most any one cap, and all team caps together, may let through in 30 days.",
            },
        ),
    ),
    _resource_policy(
        "grants-to-groups",
        "Budget policies are granted to groups and service principals, not to individual users.",
        validate_grantees,
        _schema(
            allowUserManagers={"type": "boolean", "default": True, "description": "Allow individual users as Managers."}
        ),
    ),
    _resource_policy(
        "grants-keep-manager",
        "Authoritative grants keep at least one Manager, so no policy locks out its owners.",
        validate_keeps_manager,
    ),
    _resource_policy(
        "serverless-cost-tags",
        "Every serverless budget policy carries the cost-attribution tags the organization requires.",
        validate_cost_tags,
        _schema(
            requiredTagKeys={
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "default": ["cost-center"],
                "description": "Tag keys every policy must carry.",
            }
        ),
    ),
    _resource_policy(
        "account-budget-notifies",
        "Every Databricks account budget notifies at least one address.",
        validate_notifies,
    ),
    _resource_policy(
        "gateway-budget-tracking",
        "Hard stops run on an MLflow server whose workers share spend (Redis tracker, or one worker), "
        "and caps reach every worker within the allowed refresh interval.",
        validate_budget_tracking,
        _schema(
            requireDeclaredServer={
                "type": "boolean",
                "default": False,
                "description": "Every hard stop's stack must declare ml-budgets:mlflowServer.",
            },
            maxRefreshIntervalSeconds={
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Longest MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL allowed (600 s unless declared).",
            },
        ),
    ),
]
