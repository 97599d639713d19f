"""Live spend from the servers, in a constant number of list calls per server (never one per budget).

* MLflow AI Gateway: ``GET /api/3.0/mlflow/gateway/budgets/list`` (the policies: cap, action,
  window) and ``GET /api/3.0/mlflow/gateway/budgets/windows`` (the gateway's live spend per
  current window), one call each for up to 10,000 policies.
* Databricks account: ``budgets.list`` (the configurations: name, thresholds, actions) and
  ``budgets.list_budget_spend_statuses`` (live spend of AI Gateway budgets with a blocking
  threshold, as the *calling* principal sees it), each paged by the server (100 a page).
  Budgets over all usage have no live-spend API: their spend is reported as not available.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from providers.core import TrackingServer, host_creds, tracking_store

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.billing import BudgetConfiguration

WINDOWS_PATH = "/api/3.0/mlflow/gateway/budgets/windows"
LIST_PAGE_SIZE = 10_000  # MLflow accepts up to 50,000
SPEND_STATUS_PAGE_SIZE = 100  # the API's maximum


class SourceError(Exception):
    """A server could not be read; the budgets it holds are reported as unavailable."""


@dataclass
class GatewayState:
    """Budget policies and live windows of one MLflow server."""

    policies: dict[str, Any] = field(default_factory=dict)  # id -> mlflow GatewayBudgetPolicy
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


def read_gateway(server: TrackingServer, calls: CallCounter) -> GatewayState:
    state = GatewayState(live=server.is_http)
    store = tracking_store(server)
    page_token = None
    while True:
        calls[server.public_uri] += 1
        try:
            page = store.list_budget_policies(max_results=LIST_PAGE_SIZE, page_token=page_token)
        except Exception as error:  # noqa: BLE001
            raise SourceError(f"listing budget policies on {server.public_uri}: {_reason(error)}") from None
        state.policies.update((policy.budget_policy_id, policy) for policy in page)
        page_token = page.token
        if not page_token:
            break
    if state.live:
        state.windows = _gateway_windows(server, calls)
    return state


def _gateway_windows(server: TrackingServer, calls: CallCounter) -> dict[str, dict[str, Any]]:
    from mlflow.utils.rest_utils import http_request

    calls[server.public_uri] += 1
    try:
        response = http_request(host_creds(server), WINDOWS_PATH, "GET", max_retries=3, timeout=60)
        body = response.json()
    except Exception as error:  # noqa: BLE001
        raise SourceError(f"reading budget windows on {server.public_uri}: {_reason(error)}") from None
    if response.status_code != 200:
        raise SourceError(f"reading budget windows on {server.public_uri}: HTTP {response.status_code} {body}")
    windows = {}
    for window in body.get("windows", []):
        windows[window["budget_policy_id"]] = {
            "window_start_ms": int(window.get("window_start_ms", 0)),  # int64 comes as a string
            "window_end_ms": int(window.get("window_end_ms", 0)),
            "current_spend": float(window.get("current_spend", 0.0)),
        }
    return windows


def read_account(client: AccountClient, calls: CallCounter) -> AccountState:
    """Configurations and spend statuses of the client's account, page by page."""
    state = AccountState()
    host = f"{client.config.host} account {client.config.account_id}"
    try:
        for budget in _budget_pages(client, calls, host):
            if budget.budget_configuration_id:  # every listed budget has one; the SDK types it optional
                state.budgets[budget.budget_configuration_id] = budget
        page_token = None
        while True:
            calls[host] += 1
            page = client.budgets.list_budget_spend_statuses(
                f"accounts/{client.config.account_id}", page_size=SPEND_STATUS_PAGE_SIZE, page_token=page_token
            )
            for status in page.budget_spend_statuses or []:
                if status.name:  # accounts/<id>/budget-spend-statuses/<budget id>
                    state.spend[status.name.rsplit("/", 1)[-1]] = status
            page_token = page.next_page_token
            if not page_token:
                break
    except SourceError:
        raise
    except Exception as error:  # noqa: BLE001
        raise SourceError(f"reading budgets of Databricks {host}: {_reason(error)}") from None
    return state


def _budget_pages(client: AccountClient, calls: CallCounter, host: str) -> Iterator[BudgetConfiguration]:
    # budgets.list pages on its own; count each page it fetches.
    from databricks.sdk.service.billing import ListBudgetConfigurationsResponse

    query: dict[str, Any] = {}
    while True:
        calls[host] += 1
        body = client.api_client.do(
            "GET",
            f"/api/2.1/accounts/{client.config.account_id}/budgets",
            query=query,
            headers={"Accept": "application/json"},
        )
        page = ListBudgetConfigurationsResponse.from_dict(body)
        yield from page.budgets or []
        if not page.next_page_token:
            return
        query["page_token"] = page.next_page_token


def _reason(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not an object
        text = json.loads(text).get("message", text)
    return " ".join(str(text).split())[:300]
