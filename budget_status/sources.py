"""Live spend from the servers, in a constant number of list calls per server (never one per budget).

* MLflow AI Gateway: ``GET /api/3.0/mlflow/gateway/budgets/list`` (the policies: cap, action,
  window; pages of 50,000, MLflow's maximum) and ``GET /api/3.0/mlflow/gateway/budgets/windows``
  (the gateway's live spend per current window).  An ``http(s)://`` server is read with
  ``requests`` (``mlflow_rest``); a SQL store or ``databricks`` URI through MLflow's own client.
* Databricks account: ``budgets.list`` (the configurations: name, thresholds, actions; the
  server chooses its page size, the API takes none) and ``budgets.list_budget_spend_statuses``
  (live spend of AI Gateway budgets with a blocking threshold, as the *calling* principal sees
  it; 100 a page, the API's maximum), the two read side by side.
  Budgets over all usage have no live-spend API: their spend is reported as not available.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from databricks.sdk.core import ApiClient
    from databricks.sdk.service.billing import BudgetConfiguration

    from budget_status.databricks_api import Account
    from providers.core import TrackingServer

LIST_PATH = "/api/3.0/mlflow/gateway/budgets/list"
WINDOWS_PATH = "/api/3.0/mlflow/gateway/budgets/windows"
LIST_PAGE_SIZE = 50_000  # MLflow's maximum (SEARCH_MAX_RESULTS_THRESHOLD)
SPEND_STATUS_PAGE_SIZE = 100  # the API's maximum ("values above 100 are coerced to 100")
MAX_REASON_LENGTH = 100_000  # what is kept of an error body, before masking
MAX_PAGES = 1_000  # a server that keeps answering with a next page token is not followed forever


class SourceError(Exception):
    """A server could not be read; the budgets it holds are reported as unavailable."""


@dataclass(frozen=True)
class GatewayPolicy:
    """What the status needs of an MLflow gateway budget policy."""

    id: str
    amount: float
    action: str  # ALERT | REJECT
    duration_value: int
    duration_unit: str  # MINUTES | HOURS | DAYS | WEEKS | MONTHS


@dataclass
class GatewayState:
    """Budget policies and live windows of one MLflow server."""

    policies: dict[str, GatewayPolicy] = field(default_factory=dict)
    windows: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # id -> {window_start_ms, window_end_ms, current_spend}
    live: bool = True  # False for a SQL store: live spend is kept by a server's gateway


@dataclass
class AccountState:
    budgets: dict[str, Any] = field(default_factory=dict)  # id -> BudgetConfiguration
    spend: dict[str, Any] = field(default_factory=dict)  # id -> BudgetSpendStatus


class CallCounter(collections.Counter[str]):
    """API calls made, per server (what the benchmark compares with the servers' own logs)."""

    _lock = threading.Lock()

    def add(self, server: str) -> None:
        with self._lock:  # the servers are read from several threads
            self[server] += 1


# --- MLflow --------------------------------------------------------------------------------------


def read_gateway(server: TrackingServer, calls: CallCounter) -> GatewayState:
    from budget_status import mlflow_rest

    if not mlflow_rest.speaks_for(server.uri):
        return _read_gateway_with_mlflow(server, calls)
    client = mlflow_rest.MlflowRest(server.uri, mlflow_rest.credentials(server.uri, server.token))
    try:
        return _read_gateway_rest(client, server.public_uri, calls)
    except (mlflow_rest.MlflowRestError, SourceError) as error:
        raise SourceError(f"reading budget policies on {server.public_uri}: {_reason(error)}") from None
    finally:
        client.close()


def _read_gateway_rest(client: Any, where: str, calls: CallCounter) -> GatewayState:
    state = GatewayState()
    params: dict[str, Any] = {"max_results": LIST_PAGE_SIZE}
    for _ in range(MAX_PAGES):
        calls.add(where)
        page = client.get(LIST_PATH, params)
        for item in _list_of(page, "budget_policies"):
            policy = _policy_from_json(item)
            state.policies[policy.id] = policy
        token = page.get("next_page_token")
        if not token:
            break
        params["page_token"] = str(token)
    calls.add(where)
    state.windows = _windows_from_json(client.get(WINDOWS_PATH))
    return state


def _policy_from_json(item: Any) -> GatewayPolicy:
    try:
        duration = item.get("duration") or {}
        return GatewayPolicy(
            id=str(item["budget_policy_id"]),
            amount=float(item.get("budget_amount", 0.0)),
            action=str(item["budget_action"]),
            duration_value=int(duration["value"]),
            duration_unit=str(duration["unit"]),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SourceError("the server answered a budget policy without its id, amount, action or window") from None


def _windows_from_json(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    windows = {}
    for window in _list_of(body, "windows"):
        try:
            windows[str(window["budget_policy_id"])] = {
                "window_start_ms": int(window.get("window_start_ms", 0)),  # int64 comes as a string
                "window_end_ms": int(window.get("window_end_ms", 0)),
                "current_spend": float(window.get("current_spend", 0.0)),
            }
        except (AttributeError, KeyError, TypeError, ValueError):
            raise SourceError("the server answered a budget window without its policy id, times or spend") from None
    return windows


def _list_of(body: dict[str, Any], key: str) -> list[Any]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise SourceError(f"`{key}` in the answer is not a list")
    return items


def _read_gateway_with_mlflow(server: TrackingServer, calls: CallCounter) -> GatewayState:
    """A SQL store (no live spend: that is held by a server's gateway) or a ``databricks`` URI."""
    from providers.core import tracking_store

    state = GatewayState(live=False)
    try:
        store = tracking_store(server)
        page_token = None
        for _ in range(MAX_PAGES):
            calls.add(server.public_uri)
            page = store.list_budget_policies(max_results=LIST_PAGE_SIZE, page_token=page_token)
            for policy in page:
                state.policies[policy.budget_policy_id] = GatewayPolicy(
                    policy.budget_policy_id,
                    float(policy.budget_amount),
                    policy.budget_action.value,
                    policy.duration.value,
                    policy.duration.unit.value,
                )
            page_token = page.token
            if not page_token:
                break
    except Exception as error:  # noqa: BLE001 (any store failure: say so on every row)
        raise SourceError(f"listing budget policies on {server.public_uri}: {_reason(error)}") from None
    return state


# --- Databricks ----------------------------------------------------------------------------------


def read_account(account: Account, calls: CallCounter) -> AccountState:
    """Configurations and spend statuses of the account, the two lists side by side."""
    api, host = account.api, account.label
    state = AccountState()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="budget-status-databricks") as pool:
        budgets = pool.submit(lambda: list(_budget_pages(api, calls, host)))
        statuses = pool.submit(_spend_statuses, api, calls, host)
        try:
            for budget in budgets.result():
                if budget.budget_configuration_id:  # every listed budget has one; the SDK types it optional
                    state.budgets[budget.budget_configuration_id] = budget
            state.spend = statuses.result()
        except SourceError:
            raise
        except Exception as error:  # noqa: BLE001
            raise SourceError(f"reading budgets of Databricks {host}: {_reason(error)}") from None
    return state


def _budget_pages(api: ApiClient, calls: CallCounter, host: str) -> Iterator[BudgetConfiguration]:
    # What BudgetsAPI.list does, one counted call per page (the API takes no page size).
    from databricks.sdk.service.billing import ListBudgetConfigurationsResponse

    query: dict[str, Any] = {}
    for _ in range(MAX_PAGES):
        calls.add(host)
        body = api.do(
            "GET", f"/api/2.1/accounts/{api.account_id}/budgets", query=query, headers={"Accept": "application/json"}
        )
        page = ListBudgetConfigurationsResponse.from_dict(body)
        yield from page.budgets or []
        if not page.next_page_token:
            return
        query["page_token"] = page.next_page_token


def _spend_statuses(api: ApiClient, calls: CallCounter, host: str) -> dict[str, Any]:
    from databricks.sdk.service.billing import BudgetsAPI

    budgets = BudgetsAPI(api)  # type: ignore[no-untyped-call]
    spend: dict[str, Any] = {}
    page_token = None
    for _ in range(MAX_PAGES):
        calls.add(host)
        page = budgets.list_budget_spend_statuses(
            f"accounts/{api.account_id}", page_size=SPEND_STATUS_PAGE_SIZE, page_token=page_token
        )
        for status in page.budget_spend_statuses or []:
            if status.name:  # accounts/<id>/budget-spend-statuses/<budget id>
                spend[status.name.rsplit("/", 1)[-1]] = status
        page_token = page.next_page_token
        if not page_token:
            break
    return spend


# --- errors --------------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    with contextlib.suppress(ValueError, AttributeError, RecursionError):  # not JSON, or not an object
        text = json.loads(text).get("message", text)
    # Not cut to its display length here: credentials are masked first (a cut one would not match).
    return " ".join(str(text)[:MAX_REASON_LENGTH].split())
