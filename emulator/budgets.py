"""Emulated Databricks account budgets (``billing.BudgetsAPI``) and their live spend statuses.

Pure Python, no HTTP, the JSON shapes of databricks-sdk >= 0.158 (``BudgetConfiguration``,
``CreateBudgetConfigurationBudget``, ``UpdateBudgetConfigurationBudget``, ``BudgetSpendStatus``).
The rules are those the SDK's docstrings state (see emulator/README.md, "Budgets"):

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
as sets.  ``reorder()`` shuffles them once more, as a later server-side rewrite would.

Ids in an update: an alert or action that carries its ``*_configuration_id`` is updated in
place and must belong to this budget; an action keeps its ``action_type`` ("Action type cannot
be updated", the error terraform-provider-databricks #5978 hits by matching ids by position).
Alerts and actions without an id are new.
"""

from __future__ import annotations

import base64
import builtins
import copy
import hashlib
import json
import re
import time
import uuid
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from emulator import errors

if TYPE_CHECKING:  # pragma: no cover
    from emulator.state import AccountState

DISPLAY_NAME_MAX = 128
MAX_SHARED_ALERTS_PER_PERIOD = 4
MAX_PER_USER_ALERTS_PER_PERIOD = 1
LIST_PAGE_SIZE = 20
SPEND_PAGE_SIZE_DEFAULT = 100
SPEND_PAGE_SIZE_MAX = 100
INT64_MAX = 2**63 - 1

ALL_RESOURCES = "BUDGET_RESOURCE_TYPE_ALL_RESOURCES"
AI_GATEWAY = "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY"
SHARED = "ALERT_CONFIGURATION_SCOPE_TYPE_SHARED"
PER_USER = "ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER"
EMAIL = "EMAIL_NOTIFICATION"
BLOCK = "BLOCK_USAGE"

_CREATE_FIELDS = frozenset(
    {"account_id", "alert_configurations", "display_name", "filter", "include_external_spend", "resource_type"}
)
_UPDATE_FIELDS = _CREATE_FIELDS | {"budget_configuration_id"}
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
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WORKSPACE_FILTER_RE = re.compile(r"^\s*workspace_id\s*(=\s*(?P<one>\d+)|IN\s*\((?P<many>[^)]*)\))\s*$")


class BudgetStore:
    """The budgets of one :class:`AccountState` (its lock, account id, journal and caller)."""

    def __init__(self, state: AccountState) -> None:
        self._state = state
        self._budgets: dict[str, dict[str, Any]] = {}  # id -> stored budget (wire shape + "_usage")
        self.list_page_size = LIST_PAGE_SIZE
        self.caller_group_ids: set[int] = set()  # groups of the token's principal (for overrides)

    # ------------------------------------------------------------------ API

    def create(self, body: Any) -> dict[str, Any]:
        """``POST /api/2.1/accounts/{a}/budgets`` with ``{"budget": {...}}``."""
        budget = _body_budget(body)
        _reject_unknown(budget, _CREATE_FIELDS, "budget")
        with self._state._lock:
            self._check_body_account(budget)
            now = _now_ms()
            stored = {
                "budget_configuration_id": str(uuid.uuid4()),
                "account_id": self._state.account_id,
                "create_time": now,
                "update_time": now,
                **_validated(budget, current=None),
                "_usage": [],
            }
            self._budgets[stored["budget_configuration_id"]] = stored
            self._journal(stored["budget_configuration_id"])
            return {"budget": _wire(stored)}

    def get(self, budget_id: str) -> dict[str, Any]:
        with self._state._lock:
            return {"budget": _wire(self._budget(budget_id))}

    def update(self, budget_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../budgets/{id}``: the body's budget replaces the stored one."""
        budget = _body_budget(body)
        _reject_unknown(budget, _UPDATE_FIELDS, "budget")
        with self._state._lock:
            current = self._budget(budget_id)
            self._check_body_account(budget)
            body_id = budget.get("budget_configuration_id")
            if body_id not in (None, "") and body_id != budget_id:
                raise errors.invalid(
                    f"budget.budget_configuration_id {body_id!r} does not match the budget id in the path "
                    f"{budget_id!r}."
                )
            fields = _validated(budget, current=current)
            current.update(fields)
            if "filter" not in fields:
                current.pop("filter", None)
            current["update_time"] = max(_now_ms(), current["update_time"] + 1)
            self._journal(budget_id)
            return {"budget": _wire(current)}

    def delete(self, budget_id: str) -> None:
        with self._state._lock:
            self._budget(budget_id)
            del self._budgets[budget_id]
            self._journal(budget_id, deleted=True)

    def list(self, page_token: str | None) -> dict[str, Any]:
        """``GET .../budgets?page_token=``: by id, ``list_page_size`` per page (keyset paging)."""
        after = _decode_token(page_token, "budgets") if page_token else ""
        with self._state._lock:
            items = sorted(
                (b for k, b in self._budgets.items() if k > after), key=lambda b: b["budget_configuration_id"]
            )
            page = items[: self.list_page_size]
            response: dict[str, Any] = {}
            if page:
                response["budgets"] = [_wire(b) for b in page]
            if len(items) > len(page):
                response["next_page_token"] = _encode_token(page[-1]["budget_configuration_id"], "budgets")
            return response

    def spend_status(self, budget_id: str) -> dict[str, Any]:
        """``GET /api/2.1/accounts/{a}/budget-spend-statuses/{id}``: the caller's spend against the
        blocking thresholds; NOT_FOUND for a missing budget or one without a blocking threshold."""
        if not _UUID_RE.match(budget_id or ""):
            raise errors.invalid(f"Invalid budget_id {budget_id!r}: expected a UUID.")
        with self._state._lock:
            budget = self._budgets.get(budget_id)
            statuses = self._alert_spend_statuses(budget) if budget else []
            if not statuses:
                raise errors.ApiError(
                    404, "NOT_FOUND", f"Budget {budget_id} does not exist or has no blocking threshold."
                )
            return {"name": self._status_name(budget_id), "alert_spend_statuses": statuses}

    def list_spend_statuses(self, filter_: str | None, page_size: int | None, page_token: str | None) -> dict[str, Any]:
        """``GET /api/2.1/accounts/{a}/budget-spend-statuses``: every budget with a blocking threshold."""
        if page_size is None or page_size == 0:
            page_size = SPEND_PAGE_SIZE_DEFAULT
        if page_size < 0:
            raise errors.invalid(f"page_size must not be negative, got {page_size}.")
        page_size = min(page_size, SPEND_PAGE_SIZE_MAX)
        workspaces = _parse_workspace_filter(filter_)
        query_key = json.dumps(sorted(workspaces) if workspaces is not None else None)
        after = _decode_token(page_token, query_key) if page_token else ""
        with self._state._lock:
            matching: list[dict[str, Any]] = []
            for budget_id in sorted(self._budgets):
                budget = self._budgets[budget_id]
                if budget_id <= after or not _applies_to(budget, workspaces):
                    continue
                statuses = self._alert_spend_statuses(budget)
                if statuses:
                    matching.append({"name": self._status_name(budget_id), "alert_spend_statuses": statuses})
            page = matching[:page_size]
            response: dict[str, Any] = {}
            if page:
                response["budget_spend_statuses"] = page
            if len(matching) > len(page):
                response["next_page_token"] = _encode_token(page[-1]["name"].rsplit("/", 1)[1], query_key)
            return response

    # ------------------------------------------------------------------ control (tests)

    def add_usage(self, budget_id: str, usd: Any, principal_id: int | None = None, external: bool = False) -> dict:
        """Record spend in this month against a budget, by a principal (default: the caller)."""
        amount = _decimal(str(usd), "usd")
        with self._state._lock:
            budget = self._budget(budget_id)
            budget["_usage"].append(
                {
                    "usd": str(amount),
                    "principal_id": int(principal_id if principal_id is not None else self._state.creator_user_id),
                    "external": bool(external),
                    "month": time.strftime("%Y-%m", time.gmtime()),
                }
            )
            self._journal(budget_id)
            return {"usage": len(budget["_usage"])}

    def reorder(self, budget_id: str) -> dict[str, Any]:
        """Reverse the order of alerts, actions and overrides, as a server-side rewrite may."""
        with self._state._lock:
            budget = self._budget(budget_id)
            budget["alert_configurations"].reverse()
            for alert in budget["alert_configurations"]:
                for key in ("action_configurations", "principal_overrides"):
                    if key in alert:
                        alert[key].reverse()
            self._journal(budget_id)
            return {"budget": _wire(budget)}

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> builtins.list[dict[str, Any]]:
        return [copy.deepcopy(b) for b in self._budgets.values()]

    def to_json_one(self, budget_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._budgets[budget_id])

    def load(self, budget: dict[str, Any]) -> None:
        self._budgets[budget["budget_configuration_id"]] = copy.deepcopy(budget)

    def forget(self, budget_id: str) -> None:
        self._budgets.pop(budget_id, None)

    def clear(self) -> None:
        self._budgets.clear()

    def __len__(self) -> int:
        return len(self._budgets)

    def ids(self) -> builtins.list[str]:
        with self._state._lock:
            return sorted(self._budgets)

    # ------------------------------------------------------------------ internals

    def _journal(self, budget_id: str, deleted: bool = False) -> None:
        self._state._journal(("budget_delete" if deleted else "budget", budget_id))

    def _budget(self, budget_id: Any) -> dict[str, Any]:  # as the request gave it: may be any JSON value
        if not isinstance(budget_id, str) or not _UUID_RE.match(budget_id):
            raise errors.invalid(f"Invalid budget_id {budget_id!r}: expected a UUID.")
        found = self._budgets.get(budget_id)
        if found is None:
            raise errors.not_found(f"Budget configuration {budget_id} does not exist.")
        return found

    def _check_body_account(self, budget: dict[str, Any]) -> None:
        account = budget.get("account_id")
        if account not in (None, "") and account != self._state.account_id:
            raise errors.invalid(
                f"budget.account_id {account!r} is not the account in the path ({self._state.account_id})."
            )

    def _status_name(self, budget_id: str) -> str:
        return f"accounts/{self._state.account_id}/budget-spend-statuses/{budget_id}"

    def _alert_spend_statuses(self, budget: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        if budget.get("resource_type") != AI_GATEWAY:
            return []
        month = time.strftime("%Y-%m", time.gmtime())
        usage = [
            u
            for u in budget["_usage"]
            if u["month"] == month and (budget.get("include_external_spend") or not u["external"])
        ]
        caller = self._state.creator_user_id
        statuses = []
        for alert in budget["alert_configurations"]:
            if not any(a["action_type"] == BLOCK for a in alert.get("action_configurations", [])):
                continue
            threshold = Decimal(alert["quantity_threshold"])
            status: dict[str, Any] = {"time_period": alert["time_period"], "scope_type": alert["scope_type"]}
            if alert["scope_type"] == SHARED:
                spend = sum((Decimal(u["usd"]) for u in usage), Decimal(0))
            else:
                spend = sum((Decimal(u["usd"]) for u in usage if u["principal_id"] == caller), Decimal(0))
                threshold = self._effective_threshold(alert, threshold)
                status["spend"] = _plain(spend)
                status["threshold"] = _plain(threshold)
            status["percent_consumed"] = _percent(spend, threshold)
            statuses.append(status)
        return statuses

    def _effective_threshold(self, alert: dict[str, Any], threshold: Decimal) -> Decimal:
        overrides = {o["principal_id"]: Decimal(o["override_threshold"]) for o in alert.get("principal_overrides", [])}
        caller = self._state.creator_user_id
        if caller in overrides:
            return overrides[caller]
        groups = [overrides[g] for g in self.caller_group_ids if g in overrides]
        return max(groups) if groups else threshold


# ---------------------------------------------------------------------- validation


def _body_budget(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.malformed("Invalid JSON given in the body of the request - expected a map.")
    _reject_unknown(body, frozenset({"budget"}), "request body")
    budget = body.get("budget")
    if not isinstance(budget, dict):
        raise errors.invalid("budget is required: a budget configuration object.")
    return budget


def _reject_unknown(obj: dict[str, Any], known: frozenset, where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise errors.invalid(f"Unknown field(s) in {where}: {', '.join(unknown)}.")


def _validated(budget: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
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
    _reject_unknown(raw, _ALERT_FIELDS | {"alert_configuration_id"}, where)
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
    _reject_unknown(raw, _ACTION_FIELDS | {"action_configuration_id"}, where)
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
    _reject_unknown(raw, _OVERRIDE_FIELDS, where)
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
    _reject_unknown(raw, _FILTER_FIELDS, "budget.filter")
    result: dict[str, Any] = {}
    tags = []
    for i, clause in enumerate(_list(raw.get("tags"), "budget.filter.tags")):
        where = f"budget.filter.tags[{i}]"
        if not isinstance(clause, dict):
            raise errors.invalid(f"{where} must be an object.")
        _reject_unknown(clause, frozenset({"key", "value"}), where)
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
    _reject_unknown(raw, frozenset({"operator", "values"}), where)
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


def _decimal(raw: str, where: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.invalid(f"{where} must be a decimal number, got {raw!r}.") from None
    if value < 0:
        raise errors.invalid(f"{where} must not be negative.")
    return value


# ---------------------------------------------------------------------- answers


def _wire(stored: dict[str, Any]) -> dict[str, Any]:
    """The budget as the API answers it (empty lists left out, like the SDK's ``as_dict()``)."""
    body = {k: copy.deepcopy(v) for k, v in stored.items() if not k.startswith("_")}
    for alert in body["alert_configurations"]:
        for key in ("action_configurations", "principal_overrides"):
            if not alert.get(key):
                alert.pop(key, None)
    return body


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _percent(spend: Decimal, threshold: Decimal) -> str:
    if threshold == 0:
        return "100.0"
    percent = (spend * 100 / threshold).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)
    return f"{percent:.1f}"


def _parse_workspace_filter(raw: str | None) -> set[int] | None:
    if raw is None or raw.strip() == "":
        return None
    match = _WORKSPACE_FILTER_RE.match(raw)
    if not match:
        raise errors.invalid(f"Unsupported filter {raw!r}: use `workspace_id = 123` or `workspace_id IN (123, 456)`.")
    if match.group("one"):
        return {int(match.group("one"))}
    parts = [p.strip() for p in match.group("many").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise errors.invalid(f"Unsupported filter {raw!r}: the IN list must hold one or more numeric workspace ids.")
    return {int(p) for p in parts}


def _applies_to(budget: dict[str, Any], workspaces: set[int] | None) -> bool:
    if workspaces is None:
        return True
    clause = (budget.get("filter") or {}).get("workspace_id")
    return clause is None or bool(workspaces & set(clause["values"]))


def _encode_token(after: str, query_key: str) -> str:
    raw = json.dumps({"a": after, "q": query_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def _decode_token(token: str, query_key: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode("ascii")))
        after, token_query = data["a"], data["q"]
        if not isinstance(after, str):
            raise ValueError(after)
    except (ValueError, KeyError, TypeError):  # not base64, not JSON, not our shape
        raise errors.invalid(f"Invalid page_token {token!r}.") from None
    if token_query != query_key:
        raise errors.invalid("page_token was issued for a different filter: all other parameters must match.")
    return after


def _now_ms() -> int:
    return int(time.time() * 1000)
