"""AccountBudget and the budgets API's shapes (``databricks.sdk.service.billing``): request bodies
from checked inputs, and inputs back from a ``BudgetConfiguration``.  The API returns actions and
principal overrides in an order of its own: inputs are built as sets keyed by meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

from providers.account_budget_rules import RESOURCE_TYPES, decimal_string

if TYPE_CHECKING:
    from databricks.sdk.service import billing


@overload
def _alert_configuration(
    alert: Mapping[str, Any], per_user: bool, existing: None = None, with_ids: Literal[False] = False
) -> billing.CreateBudgetConfigurationBudgetAlertConfigurations: ...


@overload
def _alert_configuration(
    alert: Mapping[str, Any], per_user: bool, existing: billing.AlertConfiguration | None, with_ids: Literal[True]
) -> billing.AlertConfiguration: ...


def _alert_configuration(
    alert: Mapping[str, Any],
    per_user: bool,
    existing: billing.AlertConfiguration | None = None,
    with_ids: bool = False,
) -> billing.CreateBudgetConfigurationBudgetAlertConfigurations | billing.AlertConfiguration:
    from databricks.sdk.service import billing

    action_types = billing.ActionConfigurationType
    wanted: list[tuple[billing.ActionConfigurationType, str | None]] = [
        (action_types.EMAIL_NOTIFICATION, address) for address in alert.get("notify") or []
    ]
    if alert.get("block_usage"):
        wanted.append((action_types.BLOCK_USAGE, None))
    old_ids = (
        {(a.action_type, a.target or None): a.action_configuration_id for a in (existing.action_configurations or [])}
        if existing
        else {}
    )
    scope = billing.AlertConfigurationScopeType
    common: dict[str, Any] = dict(
        quantity_threshold=decimal_string(alert["threshold_usd"]),
        quantity_type=billing.AlertConfigurationQuantityType.LIST_PRICE_DOLLARS_USD,
        time_period=billing.AlertConfigurationTimePeriod.MONTH,
        trigger_type=billing.AlertConfigurationTriggerType.CUMULATIVE_SPENDING_EXCEEDED,
        scope_type=scope.ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER
        if per_user
        else scope.ALERT_CONFIGURATION_SCOPE_TYPE_SHARED,
        principal_overrides=[
            billing.PrincipalOverride(override_threshold=decimal_string(dollars), principal_id=int(principal))
            for principal, dollars in (alert.get("overrides") or {}).items()
        ]
        if per_user
        else None,
    )
    if not with_ids:
        new_actions = [
            billing.CreateBudgetConfigurationBudgetActionConfigurations(action_type=t, target=target)
            for t, target in wanted
        ]
        return billing.CreateBudgetConfigurationBudgetAlertConfigurations(action_configurations=new_actions, **common)
    # An update names the alerts and actions it keeps by id, matched by meaning (never by
    # position: the API reorders them, and an id moved onto another action type is refused).
    actions = [
        billing.ActionConfiguration(action_configuration_id=old_ids.get((t, target)), action_type=t, target=target)
        for t, target in wanted
    ]
    return billing.AlertConfiguration(
        alert_configuration_id=existing.alert_configuration_id if existing else None,
        action_configurations=actions,
        **common,
    )


def _filter(props: Mapping[str, Any]) -> billing.BudgetConfigurationFilter:
    from databricks.sdk.service import billing

    tags = [
        billing.BudgetConfigurationFilterTagClause(
            key=key,
            value=billing.BudgetConfigurationFilterClause(
                operator=billing.BudgetConfigurationFilterOperator.IN, values=list(values)
            ),
        )
        for key, values in (props.get("tags") or {}).items()
    ]
    workspaces = None
    if props.get("workspace_ids"):
        workspaces = billing.BudgetConfigurationFilterWorkspaceIdClause(
            operator=billing.BudgetConfigurationFilterOperator.IN, values=[int(w) for w in props["workspace_ids"]]
        )
    return billing.BudgetConfigurationFilter(tags=tags, workspace_id=workspaces)


def create_body(props: Mapping[str, Any]) -> billing.CreateBudgetConfigurationBudget:
    from databricks.sdk.service import billing

    gateway = props.get("resource_type") == "AI_GATEWAY"
    alerts = [_alert_configuration(a, per_user=False) for a in props.get("alerts") or []]
    if props.get("per_user_alert"):
        alerts.append(_alert_configuration(props["per_user_alert"], per_user=True))
    return billing.CreateBudgetConfigurationBudget(
        display_name=props["display_name"],
        filter=_filter(props),
        alert_configurations=alerts,
        resource_type=billing.BudgetResourceType(RESOURCE_TYPES[props.get("resource_type") or "ALL"]),
        include_external_spend=bool(props.get("include_external_spend")) if gateway else None,
    )


def update_body(
    budget_id: str, props: Mapping[str, Any], current: billing.BudgetConfiguration
) -> billing.UpdateBudgetConfigurationBudget:
    from databricks.sdk.service import billing

    def scope_of(alert: billing.AlertConfiguration) -> str:
        return alert.scope_type.value if alert.scope_type else "ALERT_CONFIGURATION_SCOPE_TYPE_SHARED"

    shared_now = {
        Decimal(a.quantity_threshold or "0"): a
        for a in current.alert_configurations or []
        if scope_of(a).endswith("SHARED")
    }
    per_user_now = next((a for a in current.alert_configurations or [] if scope_of(a).endswith("PER_USER")), None)
    alerts = [
        _alert_configuration(
            a, per_user=False, existing=shared_now.get(Decimal(decimal_string(a["threshold_usd"]))), with_ids=True
        )
        for a in props.get("alerts") or []
    ]
    if props.get("per_user_alert"):
        alerts.append(
            _alert_configuration(props["per_user_alert"], per_user=True, existing=per_user_now, with_ids=True)
        )
    return billing.UpdateBudgetConfigurationBudget(
        budget_configuration_id=budget_id,
        display_name=props["display_name"],
        filter=_filter(props),
        alert_configurations=alerts,
        resource_type=current.resource_type,
        include_external_spend=current.include_external_spend,
    )


def budget_inputs(budget: billing.BudgetConfiguration) -> dict[str, Any]:
    """A ``BudgetConfiguration`` in the inputs' normalized shape (what check() produces)."""
    resource_type = next(
        (
            short
            for short, full in RESOURCE_TYPES.items()
            if budget.resource_type and budget.resource_type.value == full
        ),
        "ALL",
    )
    shared, per_user = [], None
    for alert in budget.alert_configurations or []:
        actions = alert.action_configurations or []
        shape = {
            "threshold_usd": float(Decimal(alert.quantity_threshold or "0")),
            "notify": sorted(
                {
                    a.target
                    for a in actions
                    if a.action_type and a.action_type.value == "EMAIL_NOTIFICATION" and a.target
                }
            ),
            "block_usage": any(a.action_type and a.action_type.value == "BLOCK_USAGE" for a in actions),
        }
        if alert.scope_type and alert.scope_type.value.endswith("PER_USER"):
            shape["overrides"] = {
                str(o.principal_id): float(Decimal(o.override_threshold or "0"))
                for o in sorted(alert.principal_overrides or [], key=lambda o: o.principal_id or 0)
            }
            per_user = shape
        else:
            shared.append(shape)
    filter_ = budget.filter
    tags = {t.key: sorted(set(t.value.values or [])) for t in (filter_.tags if filter_ else None) or [] if t.value}
    workspaces = sorted(
        int(w) for w in ((filter_.workspace_id.values or []) if filter_ and filter_.workspace_id else [])
    )
    return {
        "display_name": budget.display_name,
        "alerts": sorted(shared, key=lambda a: a["threshold_usd"]),
        "tags": dict(sorted(tags.items())),
        "workspace_ids": workspaces,
        "resource_type": resource_type,
        "per_user_alert": per_user,
        "include_external_spend": bool(budget.include_external_spend),
    }


def outputs_of(budget: billing.BudgetConfiguration, account_id: str | None) -> dict[str, Any]:
    return {"budget_id": budget.budget_configuration_id, "account_id": account_id, **budget_inputs(budget)}
