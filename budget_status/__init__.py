"""Live spend against every cap a stack manages, grouped by team (``python -m budget_status``).

Reads which budgets a stack manages from its outputs (``stack.py``), asks each server for all of
them at once (``sources.py``) and reports rows as a table, JSON or a PNG chart (``report.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from budget_status.report import BudgetRow, account_rows, gateway_row
from budget_status.sources import CallCounter, SourceError, read_account, read_gateway
from budget_status.stack import ACCOUNT, ACCOUNT_GATEWAY, GATEWAY, OutputsError, budgets_of

if TYPE_CHECKING:
    from budget_status.sources import AccountState, GatewayState


def collect(outputs: Mapping[str, Any], config: Any) -> tuple[list[BudgetRow], CallCounter]:
    """Rows for every budget in ``outputs``; servers resolved from ``config`` then env vars."""
    refs = budgets_of(outputs)
    calls = CallCounter()
    kinds = {ref.kind for ref in refs}
    gateway, gateway_server, gateway_error = None, "", ""
    if GATEWAY in kinds:
        gateway, gateway_server, gateway_error = _read_gateway(config, calls)
    account, account_server, account_error = None, "", ""
    if kinds & {ACCOUNT, ACCOUNT_GATEWAY}:
        account, account_server, account_error = _read_account(config, calls)
    rows: list[BudgetRow] = []
    for ref in refs:
        if ref.kind == GATEWAY:
            rows.append(gateway_row(ref, gateway, gateway_server, gateway_error))
        else:
            rows.extend(account_rows(ref, account, account_server, account_error))
    return rows, calls


def _read_gateway(config: Any, calls: CallCounter) -> tuple[GatewayState | None, str, str]:
    from providers.core import tracking_server_from_config

    server = tracking_server_from_config(config)
    if server is None:
        return None, "", "no MLflow tracking server: set mlflow:trackingUri in the stack config or MLFLOW_TRACKING_URI"
    try:
        return read_gateway(server, calls), server.public_uri, ""
    except SourceError as error:
        return None, server.public_uri, str(error)


def _read_account(config: Any, calls: CallCounter) -> tuple[AccountState | None, str, str]:
    from providers.core import DatabricksAccount

    account = DatabricksAccount()
    try:
        account.configure(config)
        client = account.client()
        label = f"Databricks account {client.config.account_id}"
        return read_account(client, calls), label, ""
    except SourceError as error:
        return None, "Databricks account", str(error)
    except Exception as error:  # noqa: BLE001 (no credentials, bad host: say so on every row)
        return None, "Databricks account", f"cannot reach the Databricks account: {error}"


__all__ = ["BudgetRow", "OutputsError", "collect"]
