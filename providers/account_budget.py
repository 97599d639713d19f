"""``AccountBudget``: a Databricks account budget (``AccountClient.budgets``), in dollars.

A budget counts the account's monthly list-price spend that matches its filter (tag clauses
``key IN values`` and workspace ids; empty = the whole account) and, at each alert threshold,
emails the listed addresses.  An AI Gateway budget (``resource_type="AI_GATEWAY"``) counts
Databricks AI Gateway spend only and may also *block* usage at its highest shared threshold, and
carry a per-user limit with per-principal overrides.

The API returns ``action_configurations`` and ``principal_overrides`` in an order of its own,
so alerts, addresses and overrides are compared as sets keyed by what they mean (threshold,
address, principal), never by position: a server-side reordering never shows as a change.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import fields
from providers._base import DynamicResource, Failures, api_error, control_character_failure, gone, is_unknown, quoted
from providers._databricks import (
    DatabricksProvider,
    DatabricksProviderError,
    databricks_errors,
    returned_id,
    single_attempt,
)
from providers.adoption import ADOPT_KEY, adopt_existing, adopt_field
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service import billing

# --- constants -----------------------------------------------------------------------------------


MAX_DISPLAY_NAME = 128
MAX_SHARED_ALERTS = 4  # per period; every alert here is monthly
INT64_MAX = 2**63 - 1  # principal ids are map keys (strings), so they keep every digit
RESOURCE_TYPES = {
    "ALL": "BUDGET_RESOURCE_TYPE_ALL_RESOURCES",
    "AI_GATEWAY": "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY",
}
ALERT_KEYS = ("threshold_usd", "notify", "block_usage")
PER_USER_KEYS = (*ALERT_KEYS, "overrides")
PRINCIPAL_ID = re.compile(r"[1-9][0-9]{0,18}")
# Databricks documents no limits on a budget's filter or overrides; these bound what a typo or a
# generated config can send (and what a failure message can echo).  Tag lengths are the budget
# policies' documented ones.
MAX_TAG_KEYS = 20
MAX_TAG_VALUES = 50
MAX_TAG_KEY_LENGTH = 512
MAX_TAG_VALUE_LENGTH = 256
MAX_OVERRIDES = 200
validate_usd = fields.usd()  # $0.01 to $10^9: a higher threshold could never trip


# --- field validators ----------------------------------------------------------------------------
#
# Each reports under ``prop`` and returns the value normalized: alerts sorted by threshold,
# addresses and tag values sorted and unique, so equal meanings compare equal.  None raises on
# any JSON value.


def validate_display_name(name: Any, failures: Failures, prop: str = "display_name") -> Any:
    if not isinstance(name, str) or not name.strip():
        failures.add(prop, f"is required: a name of 1 to {MAX_DISPLAY_NAME} characters")
    elif len(name) > MAX_DISPLAY_NAME:
        failures.add(prop, f"is {len(name)} characters long; at most {MAX_DISPLAY_NAME} allowed")
    elif reason := control_character_failure(name):
        failures.add(prop, f"{quoted(name)} {reason}")
    return name


def _dollars(value: Any, prop: str, failures: Failures) -> Any:
    """A dollar amount within the shared bounds (as a float), else the value as given."""
    if is_unknown(value):
        return value
    checked = Failures()
    dollars = validate_usd(value, checked, prop)
    for failure in checked.items:
        failures.add(failure.property, failure.reason)
    return dollars


def _alert(raw: Any, prop: str, failures: Failures, keys: Sequence[str]) -> Any:
    """One alert in input shape: threshold in dollars, sorted unique addresses, block flag."""
    if is_unknown(raw):
        return raw
    if not isinstance(raw, Mapping):
        failures.add(prop, 'must be an object {"threshold_usd": 100, "notify": ["..."], "block_usage": false}')
        return None
    unknown = sorted(quoted(k) for k in set(map(str, raw)) - set(keys))
    if unknown:
        failures.add(prop, f"unknown key(s) {', '.join(unknown[:5])}; valid keys: {', '.join(keys)}")
    threshold = _dollars(raw.get("threshold_usd"), f"{prop}.threshold_usd", failures)
    block = raw.get("block_usage", False)
    if block is None:
        block = False
    if not isinstance(block, bool) and not is_unknown(block):
        failures.add(f"{prop}.block_usage", f"must be true or false, got {quoted(block)}")
    notify = fields.validate_emails(raw.get("notify"), failures, f"{prop}.notify")
    if notify == [] and block is False:
        failures.add(
            f"{prop}.notify",
            "is empty and block_usage is false: this alert would fire with nobody told and nothing stopped; "
            "list at least one address (or set block_usage on an AI_GATEWAY budget)",
        )
    return {"threshold_usd": threshold, "notify": notify, "block_usage": block}


def _overrides(raw: Any, prop: str, failures: Failures) -> Any:
    if raw is None:
        return {}
    if is_unknown(raw):
        return raw
    if not isinstance(raw, Mapping):
        failures.add(prop, 'must map an account principal id to dollars, e.g. {"123456789": 250}')
        return None
    if len(raw) > MAX_OVERRIDES:
        failures.add(prop, f"has {len(raw)} overrides; at most {MAX_OVERRIDES}")
        return None
    result = {}
    for principal, dollars in raw.items():
        if not PRINCIPAL_ID.fullmatch(str(principal)) or int(principal) > INT64_MAX:
            failures.add(
                prop,
                f"{quoted(principal)} is not an account principal id: use the numeric id of the user, group or "
                "service principal (Account console > User management, or AccountClient.groups.list())",
            )
        else:
            result[str(int(principal))] = _dollars(dollars, f"{prop}.{principal}", failures)
    return dict(sorted(result.items(), key=lambda item: int(item[0])))


def validate_alerts(raw: Any, failures: Failures, prop: str = "alerts", gateway: bool = False) -> Any:
    """Shared monthly alerts: at most 4, distinct thresholds, BLOCK_USAGE only on AI_GATEWAY
    and only on the highest threshold."""
    if raw is None:
        return []
    if is_unknown(raw):
        return raw
    if isinstance(raw, (str, Mapping)) or not isinstance(raw, Sequence):
        failures.add(prop, 'must be a list of {"threshold_usd", "notify", "block_usage"} objects')
        return None
    if len(raw) > MAX_SHARED_ALERTS:
        failures.add(prop, f"has {len(raw)} alerts; Databricks allows at most {MAX_SHARED_ALERTS} per month")
        return None
    alerts = [_alert(a, f"{prop}[{i}]", failures, ALERT_KEYS) for i, a in enumerate(raw)]
    known = [a for a in alerts if isinstance(a, dict) and isinstance(a["threshold_usd"], float)]
    thresholds = [a["threshold_usd"] for a in known]
    repeated = sorted({t for t in thresholds if thresholds.count(t) > 1})
    if repeated:
        failures.add(
            prop,
            f"threshold(s) {', '.join(_money(t) for t in repeated)} appear twice; each alert needs its own threshold",
        )
    blocking = [a for a in known if a["block_usage"] is True]
    if blocking and not gateway:
        failures.add(
            prop,
            'block_usage is only possible on an AI Gateway budget: set resource_type "AI_GATEWAY" '
            "or remove block_usage",
        )
    elif len(blocking) > 1:
        failures.add(prop, "more than one alert has block_usage; only the alert with the highest threshold may block")
    elif blocking and blocking[0]["threshold_usd"] != max(thresholds):
        failures.add(
            prop,
            f"block_usage is on {_money(blocking[0]['threshold_usd'])} but the highest threshold is "
            f"{_money(max(thresholds))}; Databricks blocks only at the highest shared threshold",
        )
    if any(a is None for a in alerts):
        return None
    return sorted(alerts, key=_threshold_order)


def _threshold_order(alert: Any) -> tuple[int, float]:
    threshold = alert.get("threshold_usd") if isinstance(alert, dict) else None
    return (0, threshold) if isinstance(threshold, float) else (1, 0)


def validate_per_user_alert(raw: Any, failures: Failures, prop: str = "per_user_alert", gateway: bool = False) -> Any:
    if raw is None:
        return None
    if is_unknown(raw):
        return raw
    if not gateway:
        failures.add(prop, 'is only possible on an AI Gateway budget: set resource_type "AI_GATEWAY" or remove it')
    alert = _alert(raw, prop, failures, PER_USER_KEYS)
    if alert is None or not isinstance(raw, Mapping):
        return None
    alert["overrides"] = _overrides(raw.get("overrides"), f"{prop}.overrides", failures)
    return alert


def validate_tags(raw: Any, failures: Failures, prop: str = "tags") -> Any:
    if raw is None:
        return {}
    if is_unknown(raw):
        return raw
    if not isinstance(raw, Mapping):
        failures.add(prop, 'must map a tag key to the list of values to count, e.g. {"team": ["search"]}')
        return None
    if len(raw) > MAX_TAG_KEYS:
        failures.add(prop, f"has {len(raw)} tag keys; at most {MAX_TAG_KEYS}")
        return None
    tags = {}
    for key, values in raw.items():
        if problem := _tag_text_problem(key, MAX_TAG_KEY_LENGTH):
            failures.add(prop, f"tag key {quoted(key)} {problem}")
            continue
        if is_unknown(values):
            tags[key] = values
            continue
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            failures.add(
                prop,
                f"tag {quoted(key)}: values must be a non-empty list of strings, e.g. [{quoted(values)}]"
                if isinstance(values, str)
                else f"tag {quoted(key)}: values must be a non-empty list of strings",
            )
            continue
        if len(values) > MAX_TAG_VALUES:
            failures.add(prop, f"tag {quoted(key)} has {len(values)} values; at most {MAX_TAG_VALUES}")
            continue
        if any(is_unknown(v) for v in values):
            tags[key] = list(values)
            continue
        problems = [(v, p) for v in values if (p := _tag_text_problem(v, MAX_TAG_VALUE_LENGTH))]
        for value, problem in problems[:3]:
            failures.add(prop, f"tag {quoted(key)} value {quoted(value)} {problem}")
        if not problems:
            tags[key] = sorted(set(values))
    return dict(sorted(tags.items()))


def _tag_text_problem(text: Any, max_length: int) -> str | None:
    if not isinstance(text, str) or not text:
        return "must be a non-empty string"
    if len(text) > max_length:
        return f"is {len(text)} characters long; at most {max_length}"
    return control_character_failure(text)


def validate_workspace_ids(raw: Any, failures: Failures, prop: str = "workspace_ids") -> Any:
    return fields.validate_workspace_ids(raw, failures, prop)


def validate_resource_type(value: Any, failures: Failures, prop: str = "resource_type") -> Any:
    if isinstance(value, str) and value in RESOURCE_TYPES:
        return value
    failures.add(prop, f'must be "ALL" (all usage) or "AI_GATEWAY" (AI Gateway usage), got {quoted(value)}')
    return value


def _no_empty(empty: Any) -> Any:
    """A comparison that reads an absent optional value and its empty form alike."""
    return lambda value: empty if value in (None, {}, []) else value


SCHEMA = Schema(
    "AccountBudget",
    "A Databricks account budget: monthly list-price dollars over usage matching a tag and workspace filter, "
    "with alerts that email addresses and (AI Gateway budgets) block usage.",
    [
        Field("display_name", "str", "1–128 characters", validate_display_name, required=True),
        Field(
            "alerts",
            "list[Any]",
            'monthly shared alerts: `{"threshold_usd": $0.01 to $10^9, "notify": [email, …], "block_usage": false}`; '
            "at most 4, each with its own threshold; an alert must notify someone or block",
            default=[],
            input_annotation="Sequence[pulumi.Input[Mapping[str, Any]]]",
            compare=_no_empty([]),
        ),
        Field(
            "tags",
            "dict[str, Any]",
            "tag key → list of values: only usage carrying one of the values of **every** key counts; "
            f"at most {MAX_TAG_KEYS} keys of {MAX_TAG_VALUES} values",
            validate_tags,
            default={},
            input_annotation="Mapping[str, pulumi.Input[Sequence[pulumi.Input[str]]]]",
            compare=_no_empty({}),
        ),
        Field(
            "workspace_ids",
            "list[Any]",
            "only usage of these workspaces counts; empty = all (integers, or strings of ASCII digits)",
            validate_workspace_ids,
            default=[],
            input_annotation="Sequence[pulumi.Input[int]]",
            compare=_no_empty([]),
        ),
        Field(
            "resource_type",
            "str",
            '`"ALL"` (all usage) or `"AI_GATEWAY"` (Databricks AI Gateway usage)',
            validate_resource_type,
            default="ALL",
            replaces=True,
        ),
        Field(
            "per_user_alert",
            "dict[str, Any] | None",
            '`AI_GATEWAY` only: `{"threshold_usd", "notify", "block_usage", "overrides": {principal id: '
            "threshold_usd}}`, each user's own monthly spend; overrides raise the limit for one user, group or "
            "service principal, named by its numeric account principal id",
            input_annotation="Mapping[str, Any]",
            compare=_no_empty(None),
        ),
        Field(
            "include_external_spend",
            "bool",
            "`AI_GATEWAY` only: also count third-party spend billed through Databricks; fixed at creation",
            fields.validate_flag,
            default=False,
            replaces=True,
        ),
        adopt_field("account budget"),
        Field("budget_id", "str", "the budget's id", output=True),
        Field("account_id", "str", "the Databricks account the budget lives in", output=True),
    ],
)


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    """Validate and normalize inputs without any API call (``check()``, and stack config)."""
    inputs, failures = SCHEMA.check(news)
    resource_type = inputs["resource_type"]
    gateway = resource_type == "AI_GATEWAY" or is_unknown(resource_type)
    inputs["alerts"] = validate_alerts(inputs.get("alerts"), failures, gateway=gateway)
    inputs["per_user_alert"] = validate_per_user_alert(inputs.get("per_user_alert"), failures, gateway=gateway)
    if inputs["alerts"] == [] and inputs["per_user_alert"] is None:
        failures.add("alerts", "is empty: a budget needs at least one alert (a threshold in dollars and who to notify)")
    if inputs["include_external_spend"] is True and not gateway:
        failures.add(
            "include_external_spend",
            'applies only to AI Gateway budgets: set resource_type "AI_GATEWAY" or remove it',
        )
    return inputs, failures


def _money(dollars: float) -> str:
    return f"${_decimal_string(dollars)}"


# --- wire conversion -----------------------------------------------------------------------------


def _decimal_string(dollars: float) -> str:
    """``quantity_threshold`` is a decimal string: 80.0 -> "80", 12.5 -> "12.5" (never 1E+2)."""
    text = format(Decimal(repr(float(dollars))).normalize(), "f")
    return text


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
        quantity_threshold=_decimal_string(alert["threshold_usd"]),
        quantity_type=billing.AlertConfigurationQuantityType.LIST_PRICE_DOLLARS_USD,
        time_period=billing.AlertConfigurationTimePeriod.MONTH,
        trigger_type=billing.AlertConfigurationTriggerType.CUMULATIVE_SPENDING_EXCEEDED,
        scope_type=scope.ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER
        if per_user
        else scope.ALERT_CONFIGURATION_SCOPE_TYPE_SHARED,
        principal_overrides=[
            billing.PrincipalOverride(override_threshold=_decimal_string(dollars), principal_id=int(principal))
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


def _create_body(props: Mapping[str, Any]) -> billing.CreateBudgetConfigurationBudget:
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


def _update_body(
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
            a, per_user=False, existing=shared_now.get(Decimal(_decimal_string(a["threshold_usd"]))), with_ids=True
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


def _outputs(budget: billing.BudgetConfiguration, account_id: str | None) -> dict[str, Any]:
    return {"budget_id": budget.budget_configuration_id, "account_id": account_id, **budget_inputs(budget)}


# --- create without twins ------------------------------------------------------------------------
#
# The budgets API takes no request id, and the SDK re-sends a POST whose answer was lost (dropped
# connection, timeout, 503): if the first attempt had been committed, that makes a twin budget
# no state tracks.  So each create is sent once (``single_attempt``), and before sending again
# after an answer that may have been lost, the account is searched for the budget that attempt made.


def _create_without_twins(client: AccountClient, props: Mapping[str, Any]) -> billing.BudgetConfiguration:
    import requests
    from databricks.sdk.errors import TemporarilyUnavailable, TooManyRequests

    wanted = {k: props.get(k) for k in (*SCHEMA.in_place, *SCHEMA.replacing)}
    started_ms = time.time() * 1000 - 60_000  # allow for clock skew with the server
    deadline = time.monotonic() + (client.config.retry_timeout_seconds or 300)
    last: Exception
    attempt = 0
    while True:
        attempt += 1
        try:
            with single_attempt(client):
                answer = client.budgets.create(_create_body(props))
            return _answered(answer.budget, "create", props["display_name"])
        except TooManyRequests as error:  # refused at the door: nothing was created
            last, wait = error, error.retry_after_secs or min(attempt, 10)
        except (requests.ConnectionError, requests.Timeout, TemporarilyUnavailable) as error:
            made = _budget_made_since(client, wanted, started_ms)
            if made is not None:
                return made
            last, wait = error, getattr(error, "retry_after_secs", None) or min(attempt, 10)
        if time.monotonic() + wait > deadline:
            raise TimeoutError(f"Timed out after {client.config.retry_timeout_seconds or 300}s") from last
        time.sleep(wait)


def _budget_made_since(
    client: AccountClient, wanted: Mapping[str, Any], since_ms: float
) -> billing.BudgetConfiguration | None:
    for budget in client.budgets.list():
        if (budget.create_time or 0) >= since_ms and all(
            SCHEMA.comparable(k, v) == SCHEMA.comparable(k, wanted.get(k)) for k, v in budget_inputs(budget).items()
        ):
            return budget
    return None


def _answered(budget: billing.BudgetConfiguration | None, verb: str, name: str) -> billing.BudgetConfiguration:
    """The budget of an API answer (the SDK types every field optional)."""
    if budget is None:
        raise api_error(
            verb,
            "account budget",
            name,
            "Databricks answered without the budget",
            _NO_BUDGET_HINT,
            error_class=DatabricksProviderError,
        )
    return budget


_NO_BUDGET_HINT = "Run `pulumi up` again; if it keeps failing, check the Databricks account's status."


# --- provider ------------------------------------------------------------------------------------


class AccountBudgetProvider(DatabricksProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        return failures.result(inputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        return self.replace_if_account_moved(result, olds)

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get(ADOPT_KEY):
            return adopt_existing(self, "account budget", props)
        client = self.account.client()
        with databricks_errors("create", "account budget", props["display_name"]):
            budget = _create_without_twins(client, props)
        budget_id = returned_id(budget.budget_configuration_id, "create", "account budget", props["display_name"])
        return CreateResult(budget_id, _outputs(budget, client.config.account_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from databricks.sdk.errors import NotFound

        client = self.account.client(props.get("account_id"))
        try:
            with databricks_errors("read", "account budget", id_, expected=(NotFound,)):
                budget = _answered(client.budgets.get(id_).budget, "read", id_)
        except NotFound:
            return gone()
        return ReadResult(
            budget.budget_configuration_id or id_, _outputs(budget, client.config.account_id), budget_inputs(budget)
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.account.client(olds.get("account_id"))
        with databricks_errors("update", "account budget", id_):
            current = _answered(client.budgets.get(id_).budget, "read", id_)
            budget = _answered(client.budgets.update(id_, _update_body(id_, news, current)).budget, "update", id_)
        return UpdateResult(_outputs(budget, client.config.account_id))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from databricks.sdk.errors import NotFound

        try:
            with databricks_errors("delete", "account budget", id_, expected=(NotFound,)):
                self.account.client(props.get("account_id")).budgets.delete(id_)
        except NotFound:
            pass  # already gone


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class AccountBudget(DynamicResource, module="mlbudgets", name="AccountBudget"):
    """A Databricks account budget: monthly list-price dollars over usage matching a tag and workspace
    filter, with alerts that email addresses and (AI Gateway budgets) block usage."""

    display_name: pulumi.Output[str]
    alerts: pulumi.Output[list[Any]]
    tags: pulumi.Output[dict[str, Any]]
    workspace_ids: pulumi.Output[list[Any]]
    resource_type: pulumi.Output[str]
    per_user_alert: pulumi.Output[dict[str, Any] | None]
    include_external_spend: pulumi.Output[bool]
    budget_id: pulumi.Output[str]
    account_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        display_name: pulumi.Input[str],
        alerts: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] | None = None,
        tags: pulumi.Input[Mapping[str, pulumi.Input[Sequence[pulumi.Input[str]]]]] | None = None,
        workspace_ids: pulumi.Input[Sequence[pulumi.Input[int]]] | None = None,
        resource_type: pulumi.Input[str] | None = None,
        per_user_alert: pulumi.Input[Mapping[str, Any]] | None = None,
        include_external_spend: pulumi.Input[bool] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param display_name: 1–128 characters
        :param alerts: monthly shared alerts: `{"threshold_usd": $0.01 to $10^9, "notify": [email, …],
            "block_usage": false}`; at most 4, each with its own threshold; an alert must notify someone or
            block
        :param tags: tag key → list of values: only usage carrying one of the values of **every** key
            counts; at most 20 keys of 50 values
        :param workspace_ids: only usage of these workspaces counts; empty = all (integers, or strings of
            ASCII digits)
        :param resource_type: `"ALL"` (all usage) or `"AI_GATEWAY"` (Databricks AI Gateway usage)
        :param per_user_alert: `AI_GATEWAY` only: `{"threshold_usd", "notify", "block_usage", "overrides":
            {principal id: threshold_usd}}`, each user's own monthly spend; overrides raise the limit for
            one user, group or service principal, named by its numeric account principal id
        :param include_external_spend: `AI_GATEWAY` only: also count third-party spend billed through
            Databricks; fixed at creation
        :param adopt_id: the id of an existing account budget that the first `pulumi up` takes over (updated
            to the declared inputs) instead of creating one; ignored once the resource is in the stack's
            state
        """
        props = SCHEMA.props(
            {
                "display_name": display_name,
                "alerts": alerts,
                "tags": tags,
                "workspace_ids": workspace_ids,
                "resource_type": resource_type,
                "per_user_alert": per_user_alert,
                "include_external_spend": include_external_spend,
                "adopt_id": adopt_id,
            }
        )
        super().__init__(AccountBudgetProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
