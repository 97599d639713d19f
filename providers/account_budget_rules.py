"""AccountBudget's rules, checked before any API call: what the budgets API accepts (the
``billing.BudgetsAPI`` and ``BudgetConfiguration`` docstrings state them) and what ml-budgets
bounds besides.  Each validator reports under ``prop`` and returns the value normalized: alerts
sorted by threshold, addresses and tag values sorted and unique, so equal meanings compare equal.
None raises on any JSON value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from providers import fields
from providers._base import Failures, control_character_failure, is_unknown, quoted

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


def _money(dollars: float) -> str:
    return f"${decimal_string(dollars)}"


def decimal_string(dollars: float) -> str:
    """``quantity_threshold`` is a decimal string: 80.0 -> "80", 12.5 -> "12.5" (never 1E+2)."""
    text = format(Decimal(repr(float(dollars))).normalize(), "f")
    return text
