"""Budget spend statuses (``BudgetSpendStatus``): the caller's spend this month against each
blocking threshold of an AI Gateway budget, and the ``workspace_id`` filter of their list.

* Only AI Gateway budgets with a BLOCK_USAGE alert have a status: one entry per blocking alert.
* Shared alert: ``percent_consumed`` of everyone's spend.  Per-user alert: the caller's ``spend``,
  its effective ``threshold`` (the caller's override, else the highest override of a group the
  caller is in, else the alert's) and ``percent_consumed``.
* Percentages are rounded down to one decimal; a $0 threshold is ``"100.0"``.  Only this month's
  usage counts; external usage only with ``include_external_spend``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from emulator import errors
from emulator.budget_validation import AI_GATEWAY, BLOCK, SHARED

_WORKSPACE_FILTER_RE = re.compile(r"^\s*workspace_id\s*(=\s*(?P<one>\d+)|IN\s*\((?P<many>[^)]*)\))\s*$")


def this_month() -> str:
    return time.strftime("%Y-%m", time.gmtime())


def alert_spend_statuses(budget: dict[str, Any], caller: int, caller_group_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The statuses of a stored budget's blocking alerts, for the principal ``caller``."""
    if budget.get("resource_type") != AI_GATEWAY:
        return []
    month = this_month()
    usage = [
        u
        for u in budget["_usage"]
        if u["month"] == month and (budget.get("include_external_spend") or not u["external"])
    ]
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
            threshold = _effective_threshold(alert, threshold, caller, caller_group_ids)
            status["spend"] = _plain(spend)
            status["threshold"] = _plain(threshold)
        status["percent_consumed"] = _percent(spend, threshold)
        statuses.append(status)
    return statuses


def parse_workspace_filter(raw: str | None) -> set[int] | None:
    """``workspace_id = N`` or ``workspace_id IN (N, ...)``: the workspaces asked for (None: any)."""
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


def applies_to(budget: dict[str, Any], workspaces: set[int] | None) -> bool:
    """A budget without a workspace filter applies to every workspace."""
    if workspaces is None:
        return True
    clause = (budget.get("filter") or {}).get("workspace_id")
    return clause is None or bool(workspaces & set(clause["values"]))


def _effective_threshold(
    alert: dict[str, Any], threshold: Decimal, caller: int, caller_group_ids: Iterable[int]
) -> Decimal:
    overrides = {o["principal_id"]: Decimal(o["override_threshold"]) for o in alert.get("principal_overrides", [])}
    if caller in overrides:
        return overrides[caller]
    groups = [overrides[g] for g in caller_group_ids if g in overrides]
    return max(groups) if groups else threshold


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _percent(spend: Decimal, threshold: Decimal) -> str:
    if threshold == 0:
        return "100.0"
    percent = (spend * 100 / threshold).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)
    return f"{percent:.1f}"
