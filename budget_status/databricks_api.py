"""The Databricks account API for the status: the databricks-sdk's ``Config`` (every auth method,
profile and environment variable the SDK knows), its ``ApiClient`` and its billing service, without
``AccountClient``.

``import databricks.sdk`` runs the package's ``__init__``, which imports every service module of
the SDK (about sixty) to build ``AccountClient`` and ``WorkspaceClient``: the largest cost of the
status by far (1.4 s of CPU of the 1.7 s a 600 + 600 budget status took on the benchmark machine).
The status needs the client core and the billing service, so ``load_sdk_core`` imports those
modules by themselves and lets the package complete itself (run its ``__init__``) the first time
anything else in the process asks it for a name only ``__init__`` defines (a PEP 562 module
``__getattr__``): other code in the process sees the SDK as it always does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from databricks.sdk.core import ApiClient, Config

# A status is read now or reported unavailable: not retried for the SDK's default 300 s.
STATUS_RETRY_TIMEOUT_SECONDS = 30

_lock = threading.RLock()


@dataclass(frozen=True)
class Account:
    """A connection to one Databricks account: the SDK's resolved ``Config`` and its client."""

    config: Config
    api: ApiClient

    @property
    def label(self) -> str:
        return f"{self.config.host} account {self.config.account_id}"


class DatabricksSettingsError(ValueError):
    """A Databricks setting of the stack config cannot be used."""


def load_sdk_core() -> None:
    """Import ``databricks.sdk.core`` and ``databricks.sdk.service.billing`` without the package's
    ``__init__`` unless something in this process imported the package already."""
    with _lock:
        if "databricks.sdk" not in sys.modules:
            spec = importlib.util.find_spec("databricks.sdk")
            if spec is None or spec.loader is None:
                raise ModuleNotFoundError("No module named 'databricks.sdk'", name="databricks.sdk")
            package = importlib.util.module_from_spec(spec)
            sys.modules["databricks.sdk"] = package
            setattr(sys.modules["databricks"], "sdk", package)  # noqa: B010 (mypy: a namespace package)
            try:
                importlib.import_module("databricks.sdk.core")
                importlib.import_module("databricks.sdk.service.billing")
            except BaseException:
                del sys.modules["databricks.sdk"]
                raise
            setattr(package, "__getattr__", _completes(package, spec))  # noqa: B010 (PEP 562 on a module object)
        importlib.import_module("databricks.sdk.core")
        importlib.import_module("databricks.sdk.service.billing")


def _completes(package: ModuleType, spec: Any) -> Any:
    def complete(name: str) -> Any:
        with _lock:
            if "__getattr__" in package.__dict__:
                del package.__dict__["__getattr__"]
                spec.loader.exec_module(package)  # the package's own __init__, in its own module
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'databricks.sdk' has no attribute {name!r}") from None

    return complete


def connect(config: Any) -> Account:
    """The account the stack config names (else the SDK's env vars and profiles)."""
    load_sdk_core()
    from databricks.sdk.core import ApiClient, Config

    from providers.core import databricks_settings

    try:
        settings = {"retry_timeout_seconds": STATUS_RETRY_TIMEOUT_SECONDS, **databricks_settings(config)}
    except ValueError as error:
        raise DatabricksSettingsError(str(error)) from None
    resolved = Config(**settings)
    _require_listener(resolved.host)
    if not resolved.account_id:
        raise DatabricksSettingsError(
            "no Databricks account id: set databricks:accountId in the stack config or DATABRICKS_ACCOUNT_ID"
        )
    return Account(resolved, ApiClient(resolved))


def _require_listener(host: str | None) -> None:
    """Fail at once where nothing listens (the SDK would retry a refused connection for its
    whole retry timeout); anything else is left to the SDK."""
    parts = urlsplit(host or "")
    if not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except ConnectionRefusedError:
        raise DatabricksSettingsError(f"nothing answers at {host} (connection refused): is the host right?") from None
    except OSError:
        return


def env_secrets() -> list[str]:
    return [value for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD")
            if (value := os.environ.get(name))]  # fmt: skip
