"""Can MLflow count the spend a gateway budget is meant to cap?  (mlflow 3.17, read in its code)

A gateway budget only ever sees cost that the gateway recorded:

* an endpoint with ``usage_tracking`` off is not traced, so its calls record no cost at all;
* a call is priced from its span's cost attribute, which MLflow computes with
  ``mlflow.tracing.utils.calculate_cost_by_model_and_token_usage`` (LiteLLM's price table when
  litellm is installed, else MLflow's model catalog); a model neither knows costs $0 and
  ``make_budget_on_complete`` records nothing for it;
* USER-scoped policies match the request's authenticated username, which only exists when the
  server runs with authentication (``mlflow server --app-name basic-auth``).

Budgets on such endpoints or users look on and are off.  The functions here find out before a
budget is written; the message names the endpoint, the model and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import GatewayEndpoint
    from mlflow.store.tracking.abstract_store import AbstractStore as TrackingStore
    from mlflow.utils.rest_utils import MlflowHostCreds

# A nominal call, priced with MLflow's own lookup: a model whose price is unknown or zero
# would add $0 to every window.
_PROBE_USAGE = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}

# Served only by the authentication app: 404 without it, 401/200 with it.
CURRENT_USER_PATH = "/api/2.0/mlflow/users/current"


def model_price_is_known(provider: str | None, model_name: str | None) -> bool:
    """Whether MLflow would put a cost > 0 on a call to this model (same lookup as the gateway)."""
    from mlflow.tracing.utils import calculate_cost_by_model_and_token_usage

    cost = calculate_cost_by_model_and_token_usage(model_name, _PROBE_USAGE, provider)
    return cost is not None and cost.get("total_cost", 0.0) > 0


def price_sources() -> str:
    try:
        import litellm  # noqa: F401

        return "LiteLLM's price table"
    except ImportError:
        return "MLflow's model catalog (litellm is not installed)"


def endpoint_models(store: TrackingStore, endpoint: GatewayEndpoint) -> list[tuple[str, str, str]]:
    """``(provider, model_name, model definition name)`` of every model the endpoint routes to."""
    models: list[tuple[str, str, str]] = []
    for mapping in endpoint.model_mappings or []:
        definition = mapping.model_definition
        if definition is None:
            definition = store.get_gateway_model_definition(mapping.model_definition_id)
        models.append((definition.provider, definition.model_name, definition.name))
    return models


def untracked_spend(store: TrackingStore, endpoint: GatewayEndpoint) -> list[tuple[str, str]]:
    """``(why, fix)`` for each reason calls through ``endpoint`` would not count (empty: all count)."""
    if not endpoint.usage_tracking:
        return [
            (
                "its usage tracking is off, so MLflow records no cost for its calls",
                f"Turn it on (MLflow UI, or update_gateway_endpoint('{endpoint.endpoint_id}', usage_tracking=True))",
            )
        ]
    reasons: list[tuple[str, str]] = []
    for provider, model_name, definition in endpoint_models(store, endpoint):
        if not model_price_is_known(provider, model_name):
            reasons.append(
                (
                    f"its model '{provider}/{model_name}' has no price in {price_sources()}, so its calls cost $0",
                    f"Route model definition '{definition}' to a priced model, or give MLflow a catalog that "
                    "prices it (MLFLOW_MODEL_CATALOG_URI, on the server and here)",
                )
            )
    return reasons


def endpoint_label(endpoint: GatewayEndpoint) -> str:
    return f"'{endpoint.name}' ({endpoint.endpoint_id})" if endpoint.name else f"'{endpoint.endpoint_id}'"


def server_has_authentication(host_creds: MlflowHostCreds) -> bool | None:
    """True/False when the server says whether it runs MLflow's auth app; None when unclear."""
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(host_creds, CURRENT_USER_PATH, "GET", max_retries=2, timeout=30, raise_on_status=False)
    except Exception:  # noqa: BLE001 (unreachable: the write that follows reports it)
        return None
    if response.status_code == 404:
        return False
    if response.status_code in (200, 401, 403):
        return True
    return None


def opt_out_hint(declared_at: Any | None) -> str:
    if declared_at:
        return f"or set allowUntracked: true at {declared_at} to accept a budget that cannot trip"
    return "or set allow_untracked=True to accept a budget that cannot trip"
