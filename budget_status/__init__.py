"""Live spend against every cap a stack manages, grouped by team (``python -m budget_status``).

Reads which budgets a stack manages from its outputs (``stack.py``), asks each server for all of
them at once, both servers side by side (``sources.py``), and reports rows as a table, JSON or a
PNG chart (``report.py``).  Credentials a server echoes back are masked in every row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from budget_status.report import BudgetRow, account_rows, gateway_row
from budget_status.sources import CallCounter, SourceError, read_account, read_gateway
from budget_status.stack import ACCOUNT, ACCOUNT_GATEWAY, GATEWAY, OutputsError, budgets_of

if TYPE_CHECKING:
    from databricks.sdk.core import Config

    from providers.core import TrackingServer

MAX_NOTE_LENGTH = 300
_DATABRICKS_SECRET_KEYS = ("databricks:token", "databricks:clientSecret")


class _Read:
    """What one server answered: its state, a label for it, an error, and the secrets to mask."""

    def __init__(self) -> None:
        self.state: Any = None
        self.server = ""
        self.error = ""
        self.tracking_server: TrackingServer | None = None
        self.secrets: list[str] = []


def collect(outputs: Mapping[str, Any], config: Any) -> tuple[list[BudgetRow], CallCounter]:
    """Rows for every budget in ``outputs``; servers resolved from ``config`` then env vars."""
    refs = budgets_of(outputs)
    calls = CallCounter()
    kinds = {ref.kind for ref in refs}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="budget-status") as pool:
        gateway = pool.submit(_read_gateway, config, calls) if GATEWAY in kinds else None
        account = pool.submit(_read_account, config, calls) if kinds & {ACCOUNT, ACCOUNT_GATEWAY} else None
        gateway_read = gateway.result() if gateway else _Read()
        account_read = account.result() if account else _Read()
    rows: list[BudgetRow] = []
    for ref in refs:
        if ref.kind == GATEWAY:
            rows.append(gateway_row(ref, gateway_read.state, gateway_read.server, gateway_read.error))
        else:
            rows.extend(account_rows(ref, account_read.state, account_read.server, account_read.error))
    mask = _masker(gateway_read, account_read)
    masked_calls = CallCounter({mask(server): count for server, count in calls.items()})
    return [_masked(row, mask) for row in rows], masked_calls


def _read_gateway(config: Any, calls: CallCounter) -> _Read:
    from providers.core import tracking_server_from_config, tracking_uri_failure

    read = _Read()
    server = tracking_server_from_config(config)
    if server is None:
        read.error = "no MLflow tracking server: set mlflow:trackingUri in the stack config or MLFLOW_TRACKING_URI"
        return read
    read.tracking_server, read.server = server, server.public_uri
    if reason := tracking_uri_failure(server.uri):
        read.error = f"the MLflow tracking URI (mlflow:trackingUri or MLFLOW_TRACKING_URI) {reason}"
        return read
    try:
        read.secrets = _mlflow_env_secrets(server)
        read.state = read_gateway(server, calls)
    except SourceError as error:
        read.error = str(error)
    except Exception as error:  # noqa: BLE001 (whatever it is, say so on every row of this server)
        read.error = f"cannot read MLflow at {server.public_uri}: {type(error).__name__}: {error}"
    return read


def _mlflow_env_secrets(server: TrackingServer) -> list[str]:
    from budget_status import mlflow_rest

    return mlflow_rest.credentials(server.uri, server.token).secrets()


def _read_account(config: Any, calls: CallCounter) -> _Read:
    from budget_status import databricks_api

    read = _Read()
    read.server = "Databricks account"
    read.secrets = [value for key in _DATABRICKS_SECRET_KEYS if (value := _config_get(config, key))]
    read.secrets += databricks_api.env_secrets()
    try:
        account = databricks_api.connect(config)
        read.server = f"Databricks account {account.config.account_id}"
        read.state = read_account(account, calls)
    except SourceError as error:
        read.error = str(error)
    except Exception as error:  # noqa: BLE001 (no credentials, bad host: say so on every row)
        read.error = f"cannot reach the Databricks account: {error}"
    else:
        read.secrets += _client_secrets(account.config)
    return read


def _config_get(config: Any, key: str) -> str | None:
    try:
        value = config.get(key)
    except Exception:  # noqa: BLE001 (a config object without this key)
        return None
    return value if isinstance(value, str) and value else None


def _client_secrets(settings: Config) -> list[str]:
    """The SDK's resolved credentials (a profile's token, say) and the header it sent."""
    from providers.core import basic_auth_forms

    found = [settings.token, settings.client_secret, settings.password]
    if settings.username and settings.password:
        found += basic_auth_forms(settings.username, settings.password)
    try:
        header = settings.authenticate().get("Authorization", "")
    except Exception:  # noqa: BLE001 (no usable credentials: nothing was sent either)
        header = ""
    found += [header, header.partition(" ")[2]]
    return [value for value in found if value and len(value) > 1]


def _masker(*reads: _Read) -> Callable[[str], str]:
    """The providers' masking (plain, percent-encoded and Basic-auth forms) of every credential."""
    from providers.core import TrackingServer, mask_credentials

    secrets = [secret for read in reads for secret in read.secrets if len(secret) > 1]
    servers = [read.tracking_server for read in reads if read.tracking_server] or [TrackingServer(uri="")]

    def mask(text: str) -> str:
        for server in servers:
            text = mask_credentials(text, server, secrets)
        return text

    return mask


def _masked(row: BudgetRow, mask: Callable[[str], str]) -> BudgetRow:
    for spec in fields(row):
        value = getattr(row, spec.name)
        if isinstance(value, str):
            value = mask(value)
            setattr(row, spec.name, value[:MAX_NOTE_LENGTH] if spec.name == "note" else value)
    return row


__all__ = ["BudgetRow", "OutputsError", "collect"]
