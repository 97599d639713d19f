"""Emulated Databricks account budgets (``billing.BudgetsAPI``): create, get, update, delete,
list, and their spend statuses.

Pure Python, no HTTP, the JSON shapes of databricks-sdk >= 0.158 (``BudgetConfiguration``,
``CreateBudgetConfigurationBudget``, ``UpdateBudgetConfigurationBudget``, ``BudgetSpendStatus``).
What a budget must be: :mod:`emulator.budget_validation`; spend statuses:
:mod:`emulator.budget_spend`.

Like Databricks, the emulator keeps ``action_configurations`` and ``principal_overrides`` in an
order of its own, not the order they were sent in: clients must compare them as sets.
``reorder()`` shuffles them once more, as a later server-side rewrite would.

Codec: a budget is stored and journaled in its wire shape plus ``"_usage"`` (the spend recorded
against it), journal records ``{"op": "budget", "budget"}`` and ``{"op": "budget_delete", "budget_id"}``.
"""

from __future__ import annotations

import builtins
import copy
import json
import time
import uuid
from typing import Any

from emulator import errors
from emulator.budget_spend import alert_spend_statuses, applies_to, parse_workspace_filter, this_month
from emulator.budget_validation import (
    CREATE_FIELDS,
    UPDATE_FIELDS,
    UUID_RE,
    body_budget,
    decimal_amount,
    reject_unknown,
    validated,
)
from emulator.journal import Journal, Record
from emulator.paging import decode_id_token, encode_id_token

LIST_PAGE_SIZE = 20
SPEND_PAGE_SIZE_DEFAULT = 100
SPEND_PAGE_SIZE_MAX = 100


class BudgetStore:
    """The budgets of one account.  ``caller``: the user id of the token's principal."""

    def __init__(self, journal: Journal, account_id: str, caller: int) -> None:
        self._journal = journal
        self._account_id = account_id
        self._caller = caller
        self._budgets: dict[str, dict[str, Any]] = {}  # id -> stored budget (wire shape + "_usage")
        self.list_page_size = LIST_PAGE_SIZE
        self.caller_group_ids: set[int] = set()  # groups of the token's principal (for overrides)

    # ------------------------------------------------------------------ API

    def create(self, body: Any) -> dict[str, Any]:
        """``POST /api/2.1/accounts/{a}/budgets`` with ``{"budget": {...}}``."""
        budget = body_budget(body)
        reject_unknown(budget, CREATE_FIELDS, "budget")
        with self._journal.lock:
            self._check_body_account(budget)
            now = _now_ms()
            stored = {
                "budget_configuration_id": str(uuid.uuid4()),
                "account_id": self._account_id,
                "create_time": now,
                "update_time": now,
                **validated(budget, current=None),
                "_usage": [],
            }
            self._budgets[stored["budget_configuration_id"]] = stored
            self._journal.write(self._record(stored["budget_configuration_id"]))
            return {"budget": _wire(stored)}

    def get(self, budget_id: str) -> dict[str, Any]:
        with self._journal.lock:
            return {"budget": _wire(self._budget(budget_id))}

    def update(self, budget_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../budgets/{id}``: the body's budget replaces the stored one."""
        budget = body_budget(body)
        reject_unknown(budget, UPDATE_FIELDS, "budget")
        with self._journal.lock:
            current = self._budget(budget_id)
            self._check_body_account(budget)
            body_id = budget.get("budget_configuration_id")
            if body_id not in (None, "") and body_id != budget_id:
                raise errors.invalid(
                    f"budget.budget_configuration_id {body_id!r} does not match the budget id in the path "
                    f"{budget_id!r}."
                )
            fields = validated(budget, current=current)
            current.update(fields)
            if "filter" not in fields:
                current.pop("filter", None)
            current["update_time"] = max(_now_ms(), current["update_time"] + 1)
            self._journal.write(self._record(budget_id))
            return {"budget": _wire(current)}

    def delete(self, budget_id: str) -> None:
        with self._journal.lock:
            self._budget(budget_id)
            del self._budgets[budget_id]
            self._journal.write({"op": "budget_delete", "budget_id": budget_id})

    def list(self, page_token: str | None) -> dict[str, Any]:
        """``GET .../budgets?page_token=``: by id, ``list_page_size`` per page (keyset paging)."""
        after = decode_id_token(page_token, "budgets") if page_token else ""
        with self._journal.lock:
            items = sorted(
                (b for k, b in self._budgets.items() if k > after), key=lambda b: b["budget_configuration_id"]
            )
            page = items[: self.list_page_size]
            response: dict[str, Any] = {}
            if page:
                response["budgets"] = [_wire(b) for b in page]
            if len(items) > len(page):
                response["next_page_token"] = encode_id_token(page[-1]["budget_configuration_id"], "budgets")
            return response

    def spend_status(self, budget_id: str) -> dict[str, Any]:
        """``GET /api/2.1/accounts/{a}/budget-spend-statuses/{id}``: the caller's spend against the
        blocking thresholds; NOT_FOUND for a missing budget or one without a blocking threshold."""
        if not UUID_RE.match(budget_id or ""):
            raise errors.invalid(f"Invalid budget_id {budget_id!r}: expected a UUID.")
        with self._journal.lock:
            budget = self._budgets.get(budget_id)
            statuses = self._statuses(budget) if budget else []
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
        workspaces = parse_workspace_filter(filter_)
        query_key = json.dumps(sorted(workspaces) if workspaces is not None else None)
        after = decode_id_token(page_token, query_key) if page_token else ""
        with self._journal.lock:
            matching: list[dict[str, Any]] = []
            for budget_id in sorted(self._budgets):
                budget = self._budgets[budget_id]
                if budget_id <= after or not applies_to(budget, workspaces):
                    continue
                statuses = self._statuses(budget)
                if statuses:
                    matching.append({"name": self._status_name(budget_id), "alert_spend_statuses": statuses})
            page = matching[:page_size]
            response: dict[str, Any] = {}
            if page:
                response["budget_spend_statuses"] = page
            if len(matching) > len(page):
                response["next_page_token"] = encode_id_token(page[-1]["name"].rsplit("/", 1)[1], query_key)
            return response

    # ------------------------------------------------------------------ control (tests)

    def add_usage(self, budget_id: str, usd: Any, principal_id: int | None = None, external: bool = False) -> dict:
        """Record spend in this month against a budget, by a principal (default: the caller)."""
        amount = decimal_amount(str(usd), "usd")
        with self._journal.lock:
            budget = self._budget(budget_id)
            budget["_usage"].append(
                {
                    "usd": str(amount),
                    "principal_id": int(principal_id if principal_id is not None else self._caller),
                    "external": bool(external),
                    "month": this_month(),
                }
            )
            self._journal.write(self._record(budget_id))
            return {"usage": len(budget["_usage"])}

    def reorder(self, budget_id: str) -> dict[str, Any]:
        """Reverse the order of alerts, actions and overrides, as a server-side rewrite may."""
        with self._journal.lock:
            budget = self._budget(budget_id)
            budget["alert_configurations"].reverse()
            for alert in budget["alert_configurations"]:
                for key in ("action_configurations", "principal_overrides"):
                    if key in alert:
                        alert[key].reverse()
            self._journal.write(self._record(budget_id))
            return {"budget": _wire(budget)}

    # ------------------------------------------------------------------ reading (tests)

    def __len__(self) -> int:
        return len(self._budgets)

    def ids(self) -> builtins.list[str]:
        with self._journal.lock:
            return sorted(self._budgets)

    # ------------------------------------------------------------------ codec

    def to_json(self) -> builtins.list[dict[str, Any]]:
        return [copy.deepcopy(b) for b in self._budgets.values()]

    def apply(self, record: Record) -> None:
        """Load a ``budget`` or ``budget_delete`` record."""
        if record["op"] == "budget":
            budget = record["budget"]
            self._budgets[budget["budget_configuration_id"]] = copy.deepcopy(budget)
        elif record["op"] == "budget_delete":
            self._budgets.pop(record["budget_id"], None)
        else:
            raise AssertionError(record["op"])  # pragma: no cover - the account routes only these here

    def clear(self) -> None:
        self._budgets.clear()

    # ------------------------------------------------------------------ internals

    def _record(self, budget_id: str) -> Record:
        return {"op": "budget", "budget": self._budgets[budget_id]}

    def _budget(self, budget_id: Any) -> dict[str, Any]:  # as the request gave it: may be any JSON value
        if not isinstance(budget_id, str) or not UUID_RE.match(budget_id):
            raise errors.invalid(f"Invalid budget_id {budget_id!r}: expected a UUID.")
        found = self._budgets.get(budget_id)
        if found is None:
            raise errors.not_found(f"Budget configuration {budget_id} does not exist.")
        return found

    def _check_body_account(self, budget: dict[str, Any]) -> None:
        account = budget.get("account_id")
        if account not in (None, "") and account != self._account_id:
            raise errors.invalid(f"budget.account_id {account!r} is not the account in the path ({self._account_id}).")

    def _status_name(self, budget_id: str) -> str:
        return f"accounts/{self._account_id}/budget-spend-statuses/{budget_id}"

    def _statuses(self, budget: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        return alert_spend_statuses(budget, self._caller, self.caller_group_ids)


def _wire(stored: dict[str, Any]) -> dict[str, Any]:
    """The budget as the API answers it (empty lists left out, like the SDK's ``as_dict()``)."""
    body = {k: copy.deepcopy(v) for k, v in stored.items() if not k.startswith("_")}
    for alert in body["alert_configurations"]:
        for key in ("action_configurations", "principal_overrides"):
            if not alert.get(key):
                alert.pop(key, None)
    return body


def _now_ms() -> int:
    return int(time.time() * 1000)
