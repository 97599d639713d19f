"""GatewayBudgetPolicy's MLflow calls: the store's budget arguments, the endpoint a target names,
and the refusals of a budget that could never trip (an untracked endpoint, USER scope without
authentication), made before anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from providers import _spend_tracking
from providers._base import api_error, quoted
from providers._mlflow import MlflowProviderError, TrackingServer, is_not_found, raise_mlflow_error
from providers.gateway_budget_rules import ENDPOINT_ID

if TYPE_CHECKING:
    from mlflow.entities import GatewayEndpoint
    from mlflow.entities.gateway_budget_policy import GatewayBudgetPolicy as MlflowBudgetPolicy
    from mlflow.store.tracking.abstract_store import AbstractStore as TrackingStore


def budget_arguments(inputs: Mapping[str, Any], target_value: str | None) -> dict[str, Any]:
    from mlflow.entities.gateway_budget_policy import (
        BudgetAction,
        BudgetDuration,
        BudgetDurationUnit,
        BudgetTargetScope,
        BudgetUnit,
    )

    window = inputs["window"]
    return {
        "budget_unit": BudgetUnit.USD,
        "budget_amount": float(inputs["amount_usd"]),
        "duration": BudgetDuration(BudgetDurationUnit(window["unit"]), int(window["value"])),
        "target_scope": BudgetTargetScope(inputs["scope"]),
        "budget_action": BudgetAction(inputs["action"]),
        "target_value": target_value,
    }


def find_endpoint(store: TrackingStore, target: str) -> GatewayEndpoint | None:
    """The gateway endpoint ``target`` names (an id or a name), None if none."""
    lookups = [{"endpoint_id": target}] if ENDPOINT_ID.fullmatch(target) else []
    lookups.append({"name": target})
    for lookup in lookups:
        try:
            return store.get_gateway_endpoint(**lookup)
        except Exception as error:  # noqa: BLE001
            if not is_not_found(error):
                raise
    return None


def find_endpoint_id(store: TrackingStore, target: str) -> str | None:
    endpoint = find_endpoint(store, target)
    return endpoint.endpoint_id if endpoint is not None else None


def resolve_target_value(store: TrackingStore, server: TrackingServer, inputs: Mapping[str, Any]) -> str | None:
    """What MLflow stores as ``target_value``: endpoint id for ENDPOINT, username for USER.

    Before anything is written it refuses a budget that could never trip (unless the input
    ``allow_untracked`` accepts that): an endpoint whose spend MLflow does not count, a user
    on a server without authentication.
    """
    scope = inputs["scope"]
    if scope == "USER":
        refuse_user_scope_without_authentication(server, inputs)
        user: str | None = inputs.get("target")
        return user
    if scope != "ENDPOINT":
        return None
    target = inputs["target"]  # check() requires it for ENDPOINT
    try:
        endpoint = find_endpoint(store, target)
    except Exception as error:  # noqa: BLE001
        raise_mlflow_error("look up", "gateway endpoint", target, server, error)
    if endpoint is None:
        raise api_error(
            "find",
            "gateway endpoint",
            target,
            f"no AI Gateway endpoint named or with id {quoted(target)}",
            "Create the endpoint first or fix target.",
            f"on {server.public_uri}",
            MlflowProviderError,
        )
    if not inputs.get("allow_untracked"):
        refuse_untracked_endpoint(store, server, inputs, endpoint)
    return endpoint.endpoint_id


def refuse_untracked_endpoint(
    store: TrackingStore, server: TrackingServer, inputs: Mapping[str, Any], endpoint: GatewayEndpoint
) -> None:
    try:
        reasons = _spend_tracking.untracked_spend(store, endpoint)
    except Exception as error:  # noqa: BLE001
        raise_mlflow_error("read", "gateway endpoint's models", endpoint.endpoint_id, server, error)
    if reasons:
        article = "an" if inputs["action"] == "ALERT" else "a"
        raise api_error(
            "set",
            f"{article} {inputs['action']} budget on gateway endpoint",
            endpoint.name or endpoint.endpoint_id,
            "it could never trip: " + "; ".join(why for why, _ in reasons),
            "; ".join(fix for _, fix in reasons) + f"; {_spend_tracking.opt_out_hint(inputs.get('declared_at'))}.",
            f"({endpoint.endpoint_id}) on {server.public_uri}{declared_at_suffix(inputs)}",
            MlflowProviderError,
        )


def refuse_user_scope_without_authentication(server: TrackingServer, inputs: Mapping[str, Any]) -> None:
    if not server.is_http:
        return  # check() already refused SQL stores; Databricks always authenticates
    from providers._mlflow import _host_creds

    if _spend_tracking.server_has_authentication(_host_creds(server)) is False:
        raise api_error(
            "set",
            "a USER budget for",
            inputs.get("target"),
            "the server runs without authentication, so no request carries a username and the budget would never match",
            "Start it with `mlflow server --app-name basic-auth`, or use scope ENDPOINT, WORKSPACE or GLOBAL.",
            f"on {server.public_uri}{declared_at_suffix(inputs)}",
            MlflowProviderError,
        )


def get_policy(store: TrackingStore, server: TrackingServer, policy_id: str) -> MlflowBudgetPolicy | None:
    """The budget policy, or None if it no longer exists."""
    try:
        return store.get_budget_policy(policy_id)
    except Exception as error:  # noqa: BLE001
        if is_not_found(error):
            return None
        raise_mlflow_error("read", "budget policy", policy_id, server, error)


def target_as_declared(store: TrackingStore, policy: MlflowBudgetPolicy, olds: Mapping[str, Any]) -> str | None:
    """``target`` as the program wrote it while it still means the policy's endpoint.

    Otherwise MLflow's side is drift: the policy's endpoint id when the declared name now means
    another endpoint (renamed, re-created) or none, and None when the policy's endpoint itself is
    gone (MLflow keeps such a policy; it never matches a request again).
    """
    if policy.target_scope.value != "ENDPOINT" or olds.get("scope") != "ENDPOINT":
        return policy.target_value
    declared: str | None = olds.get("target")
    if not declared or policy.target_value != olds.get("target_value"):
        return policy.target_value
    try:
        resolved = find_endpoint_id(store, declared)
    except Exception:  # noqa: BLE001 (cannot tell: keep what was declared)
        return declared
    if resolved == policy.target_value:
        return declared
    return policy.target_value if declared != policy.target_value else None


def describe(inputs: Mapping[str, Any]) -> str:
    """A budget policy has no name: say what it is (``REJECT 50 USD per 1 MONTHS, GLOBAL``)."""
    window = inputs.get("window") or {}
    target = f" {inputs['target']}" if inputs.get("target") else ""
    return (
        f"{inputs.get('action')} {inputs.get('amount_usd'):g} USD per {window.get('value'):g} "
        f"{window.get('unit')}, {inputs.get('scope')}{target}"
    )


def declared_at_suffix(inputs: Mapping[str, Any]) -> str:
    declared_at = inputs.get("declared_at")
    return f" (declared at {declared_at})" if isinstance(declared_at, str) and declared_at else ""
