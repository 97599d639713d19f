"""The public API of the providers for code outside ``providers/`` (stack config, budget_status,
the harness): what every resource shares, and the connections to MLflow and Databricks.

Modules whose names start with ``_`` are private to ``providers/``; import from here instead.
"""

from __future__ import annotations

from providers._base import (
    DynamicResource,
    Failures,
    ProviderError,
    Validator,
    api_error,
    check_fields,
    control_character_failure,
    diff_result,
    gone,
    is_unknown,
    one_line,
    quoted,
)
from providers._credentials import basic_auth_forms, mask_secrets
from providers._databricks import DatabricksAccount, databricks_settings
from providers._mlflow import (
    TrackingServer,
    mask_credentials,
    tracking_server_from_config,
    tracking_store,
    tracking_uri_failure,
)
from providers._mlflow import _host_creds as host_creds

__all__ = [
    "DatabricksAccount",
    "DynamicResource",
    "Failures",
    "ProviderError",
    "TrackingServer",
    "Validator",
    "api_error",
    "basic_auth_forms",
    "check_fields",
    "control_character_failure",
    "databricks_settings",
    "diff_result",
    "gone",
    "host_creds",
    "is_unknown",
    "mask_credentials",
    "mask_secrets",
    "one_line",
    "quoted",
    "tracking_server_from_config",
    "tracking_store",
    "tracking_uri_failure",
]
