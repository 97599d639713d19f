"""What an account budget must be: the rules the SDK's docstrings state for ``billing.BudgetsAPI``
(databricks-sdk >= 0.158: ``CreateBudgetConfigurationBudget``, ``UpdateBudgetConfigurationBudget``),
each failure raised as the 400 Databricks answers.  emulator/README.md, "Budgets", lists them:

* ``display_name`` 1-128 characters; at least one alert configuration;
* every alert: ``time_period`` MONTH, ``trigger_type`` CUMULATIVE_SPENDING_EXCEEDED,
  ``quantity_type`` LIST_PRICE_DOLLARS_USD, ``quantity_threshold`` a non-negative decimal string;
* at most four shared alerts per period, each with a distinct threshold;
* ``resource_type`` BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY alone allows BLOCK_USAGE (at most one
  shared alert per period, the one with the highest threshold), per-user alerts (at most one
  per period, with ``principal_overrides``) and ``include_external_spend`` (immutable);
* actions EMAIL_NOTIFICATION (``target`` = an address) or BLOCK_USAGE; filters are tag clauses
  ``key IN values`` and ``workspace_id IN values``.

Like Databricks, the emulator keeps ``action_configurations`` and ``principal_overrides`` in an
order of its own (by generated id), not the order they were sent in: clients must compare them
as sets.

Ids in an update: an alert or action that carries its ``*_configuration_id`` is updated in
place and must belong to this budget; an action keeps its ``action_type`` ("Action type cannot
be updated", the error terraform-provider-databricks #5978 hits by matching ids by position).
Alerts and actions without an id are new.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from emulator import errors

DISPLAY_NAME_MAX = 128
MAX_SHARED_ALERTS_PER_PERIOD = 4
MAX_PER_USER_ALERTS_PER_PERIOD = 1
INT64_MAX = 2**63 - 1

ALL_RESOURCES = "BUDGET_RESOURCE_TYPE_ALL_RESOURCES"
AI_GATEWAY = "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY"
SHARED = "ALERT_CONFIGURATION_SCOPE_TYPE_SHARED"
PER_USER = "ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER"
EMAIL = "EMAIL_NOTIFICATION"
BLOCK = "BLOCK_USAGE"

CREATE_FIELDS = frozenset(
    {"account_id", "alert_configurations", "display_name", "filter", "include_external_spend", "resource_type"}
)
UPDATE_FIELDS = CREATE_FIELDS | {"budget_configuration_id"}
_ALERT_FIELDS = frozenset(
    {
        "action_configurations",
        "principal_overrides",
        "quantity_threshold",
        "quantity_type",
        "scope_type",
        "time_period",
        "trigger_type",
    }
)
_ACTION_FIELDS = frozenset({"action_type", "target"})
_OVERRIDE_FIELDS = frozenset({"principal_id", "override_threshold"})
_FILTER_FIELDS = frozenset({"tags", "workspace_id"})
_ENUMS = {
    "time_period": ("MONTH",),
    "trigger_type": ("CUMULATIVE_SPENDING_EXCEEDED",),
    "quantity_type": ("LIST_PRICE_DOLLARS_USD",),
}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def body_budget(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.malformed("Invalid JSON given in the body of the request - expected a map.")
    reject_unknown(body, frozenset({"budget"}), "request body")
    budget = body.get("budget")
    if not isinstance(budget, dict):
        raise errors.invalid("budget is required: a budget configuration object.")
    return budget


def reject_unknown(obj: dict[str, Any], known: frozenset, where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise errors.invalid(f"Unknown field(s) in {where}: {', '.join(unknown)}.")


def validated(budget: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The stored fields of a create (``current`` None) or a full-replacement update."""
    name = budget.get("display_name")
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("budget.display_name is required.")
    if len(name) > DISPLAY_NAME_MAX:
        raise errors.invalid(f"budget.display_name must be at most {DISPLAY_NAME_MAX} characters, got {len(name)}.")
    resource_type = budget.get("resource_type") or ALL_RESOURCES
    if resource_type not in (ALL_RESOURCES, AI_GATEWAY):
        raise errors.invalid(f"budget.resource_type {resource_type!r} is not one of {ALL_RESOURCES}, {AI_GATEWAY}.")
    gateway = resource_type == AI_GATEWAY
    external = budget.get("include_external_spend")
    if external is not None and not isinstance(external, bool):
        raise errors.invalid("budget.include_external_spend must be true or false.")
    if external and not gateway:
        raise errors.invalid(
            f"budget.include_external_spend is only supported for budgets with resource_type {AI_GATEWAY}."
        )
    if current is not None:
        if external is None:
            external = current.get("include_external_spend", False)
        if bool(external) != bool(current.get("include_external_spend", False)):
            raise errors.invalid("budget.include_external_spend cannot be changed after the budget is created.")
    fields: dict[str, Any] = {
        "display_name": name,
        "resource_type": resource_type,
        "alert_configurations": _validated_alerts(budget.get("alert_configurations"), gateway, current),
    }
    if gateway:
        fields["include_external_spend"] = bool(external)
    filter_ = _validated_filter(budget.get("filter"))
    if filter_:
        fields["filter"] = filter_
    return fields


def _validated_alerts(raw: Any, gateway: bool, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise errors.invalid("budget.alert_configurations: a budget must have at least one alert configuration.")
    existing = {a["alert_configuration_id"]: a for a in (current or {}).get("alert_configurations", [])}
    alerts = [_validated_alert(a, i, gateway, existing) for i, a in enumerate(raw)]
    ids = [a["alert_configuration_id"] for a in alerts]
    if len(set(ids)) != len(ids):
        raise errors.invalid("budget.alert_configurations: an alert_configuration_id appears twice.")
    for period in {a["time_period"] for a in alerts}:
        shared = [a for a in alerts if a["time_period"] == period and a["scope_type"] == SHARED]
        per_user = [a for a in alerts if a["time_period"] == period and a["scope_type"] == PER_USER]
        if len(shared) > MAX_SHARED_ALERTS_PER_PERIOD:
            raise errors.invalid(
                f"budget.alert_configurations: at most {MAX_SHARED_ALERTS_PER_PERIOD} shared alerts per time period "
                f"are allowed, got {len(shared)} for {period}."
            )
        thresholds = [Decimal(a["quantity_threshold"]) for a in shared]
        if len(set(thresholds)) != len(thresholds):
            raise errors.invalid(
                f"budget.alert_configurations: each shared alert in a time period must have a unique "
                f"quantity_threshold ({period} repeats one)."
            )
        if len(per_user) > MAX_PER_USER_ALERTS_PER_PERIOD:
            raise errors.invalid(
                f"budget.alert_configurations: at most one per-user alert per time period is allowed ({period})."
            )
        blocking = [a for a in shared if any(x["action_type"] == BLOCK for x in a["action_configurations"])]
        if len(blocking) > 1:
            raise errors.invalid(
                "budget.alert_configurations: at most one shared alert per time period can have a BLOCK_USAGE "
                f"action ({period})."
            )
        if blocking and Decimal(blocking[0]["quantity_threshold"]) != max(thresholds):
            raise errors.invalid(
                "budget.alert_configurations: the BLOCK_USAGE action must be on the shared alert with the highest "
                f"threshold in its time period ({period})."
            )
    return alerts


def _validated_alert(raw: Any, index: int, gateway: bool, existing: dict[str, dict[str, Any]]) -> dict[str, Any]:
    where = f"budget.alert_configurations[{index}]"
    if not isinstance(raw, dict):
        raise errors.invalid(f"{where} must be an object.")
    reject_unknown(raw, _ALERT_FIELDS | {"alert_configuration_id"}, where)
    alert_id = raw.get("alert_configuration_id")
    previous = None
    if alert_id not in (None, ""):
        previous = existing.get(alert_id)
        if previous is None:
            raise errors.invalid(f"{where}.alert_configuration_id {alert_id!r} is not an alert of this budget.")
    alert: dict[str, Any] = {"alert_configuration_id": alert_id or str(uuid.uuid4())}
    for key, allowed in _ENUMS.items():
        value = raw.get(key)
        if value not in allowed:
            raise errors.invalid(f"{where}.{key} must be {' or '.join(allowed)}, got {value!r}.")
        alert[key] = value
    threshold = raw.get("quantity_threshold")
    if not isinstance(threshold, str) or not _DECIMAL_RE.match(threshold):
        raise errors.invalid(
            f'{where}.quantity_threshold must be a non-negative decimal string such as "100.00", got {threshold!r}.'
        )
    alert["quantity_threshold"] = threshold
    scope = raw.get("scope_type") or SHARED
    if scope not in (SHARED, PER_USER):
        raise errors.invalid(f"{where}.scope_type {scope!r} is not one of {SHARED}, {PER_USER}.")
    if scope == PER_USER and not gateway:
        raise errors.invalid(
            f"{where}: per-user alerts are only supported for budgets with resource_type {AI_GATEWAY}."
        )
    alert["scope_type"] = scope
    old_actions = {a["action_configuration_id"]: a for a in (previous or {}).get("action_configurations", [])}
    actions = [
        _validated_action(a, f"{where}.action_configurations[{j}]", gateway, old_actions)
        for j, a in enumerate(_list(raw.get("action_configurations"), f"{where}.action_configurations"))
    ]
    meanings = [(a["action_type"], a.get("target")) for a in actions]
    if len(set(meanings)) != len(meanings):
        raise errors.invalid(f"{where}.action_configurations: the same action is configured twice.")
    alert["action_configurations"] = sorted(actions, key=lambda a: a["action_configuration_id"])
    overrides = _list(raw.get("principal_overrides"), f"{where}.principal_overrides")
    if scope == PER_USER:
        checked = [_validated_override(o, f"{where}.principal_overrides[{j}]") for j, o in enumerate(overrides)]
        principals = [o["principal_id"] for o in checked]
        if len(set(principals)) != len(principals):
            raise errors.invalid(f"{where}.principal_overrides: a principal_id appears twice.")
        # Stored in the server's own order (by a hash of the principal), not the order sent.
        alert["principal_overrides"] = sorted(checked, key=lambda o: _scramble(o["principal_id"], alert))
    return alert


def _validated_action(raw: Any, where: str, gateway: bool, old_actions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise errors.invalid(f"{where} must be an object.")
    reject_unknown(raw, _ACTION_FIELDS | {"action_configuration_id"}, where)
    action_type = raw.get("action_type")
    if action_type not in (EMAIL, BLOCK):
        raise errors.invalid(f"{where}.action_type must be {EMAIL} or {BLOCK}, got {action_type!r}.")
    if action_type == BLOCK and not gateway:
        raise errors.invalid(f"{where}: BLOCK_USAGE is only supported for budgets with resource_type {AI_GATEWAY}.")
    action: dict[str, Any] = {"action_type": action_type}
    action_id = raw.get("action_configuration_id")
    if action_id not in (None, ""):
        previous = old_actions.get(action_id)
        if previous is None:
            raise errors.invalid(f"{where}.action_configuration_id {action_id!r} is not an action of this alert.")
        if previous["action_type"] != action_type:
            raise errors.invalid(
                f"{where}: Action type cannot be updated ({previous['action_type']} -> {action_type})."
            )
    action["action_configuration_id"] = action_id or str(uuid.uuid4())
    target = raw.get("target")
    if action_type == EMAIL:
        if not isinstance(target, str) or not _EMAIL_RE.match(target):
            raise errors.invalid(f"{where}.target must be an email address for EMAIL_NOTIFICATION, got {target!r}.")
        action["target"] = target
    elif target not in (None, ""):
        raise errors.invalid(f"{where}.target is not used by BLOCK_USAGE; leave it empty.")
    return action


def _validated_override(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise errors.invalid(f"{where} must be an object.")
    reject_unknown(raw, _OVERRIDE_FIELDS, where)
    principal = raw.get("principal_id")
    if isinstance(principal, str) and principal.isdigit():
        principal = int(principal)  # proto3 JSON carries int64 as a string or a number
    if isinstance(principal, bool) or not isinstance(principal, int) or not 0 < principal <= INT64_MAX:
        raise errors.invalid(
            f"{where}.principal_id must be an account principal id (a positive int64), got {principal!r}."
        )
    threshold = raw.get("override_threshold")
    if not isinstance(threshold, str) or not _DECIMAL_RE.match(threshold):
        raise errors.invalid(f"{where}.override_threshold must be a non-negative decimal string, got {threshold!r}.")
    return {"principal_id": principal, "override_threshold": threshold}


def _validated_filter(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise errors.invalid("budget.filter must be an object.")
    reject_unknown(raw, _FILTER_FIELDS, "budget.filter")
    result: dict[str, Any] = {}
    tags = []
    for i, clause in enumerate(_list(raw.get("tags"), "budget.filter.tags")):
        where = f"budget.filter.tags[{i}]"
        if not isinstance(clause, dict):
            raise errors.invalid(f"{where} must be an object.")
        reject_unknown(clause, frozenset({"key", "value"}), where)
        key = clause.get("key")
        if not isinstance(key, str) or not key:
            raise errors.invalid(f"{where}.key is required.")
        values = _in_clause(clause.get("value"), f"{where}.value", str)
        tags.append({"key": key, "value": {"operator": "IN", "values": values}})
    keys = [t["key"] for t in tags]
    if len(set(keys)) != len(keys):
        raise errors.invalid("budget.filter.tags: a tag key appears in two clauses; list all its values in one clause.")
    if tags:
        result["tags"] = tags
    if raw.get("workspace_id") is not None:
        values = _in_clause(raw["workspace_id"], "budget.filter.workspace_id", int)
        result["workspace_id"] = {"operator": "IN", "values": values}
    return result


def _in_clause(raw: Any, where: str, kind: type) -> list:
    if not isinstance(raw, dict):
        raise errors.invalid(f"{where} must be an object {{operator, values}}.")
    reject_unknown(raw, frozenset({"operator", "values"}), where)
    if raw.get("operator") != "IN":
        raise errors.invalid(f"{where}.operator must be IN, got {raw.get('operator')!r}.")
    values = raw.get("values")
    if not isinstance(values, list) or not values:
        raise errors.invalid(f"{where}.values must be a non-empty list.")
    out = []
    for value in values:
        if kind is int:
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
                raise errors.invalid(f"{where}.values: {value!r} is not a workspace id (a positive int64).")
        elif not isinstance(value, str) or not value:
            raise errors.invalid(f"{where}.values: {value!r} is not a tag value (a non-empty string).")
        out.append(value)
    return out


def _scramble(principal_id: int, alert: dict[str, Any]) -> str:
    return hashlib.sha1(f"{alert['alert_configuration_id']}/{principal_id}".encode()).hexdigest()


def _list(raw: Any, where: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.invalid(f"{where} must be a list.")
    return raw


def decimal_amount(raw: str, where: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.invalid(f"{where} must be a decimal number, got {raw!r}.") from None
    if value < 0:
        raise errors.invalid(f"{where} must not be negative.")
    return value
