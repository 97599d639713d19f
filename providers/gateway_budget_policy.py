"""GatewayBudgetPolicy: a dollar cap per recurring window on an MLflow AI Gateway.

``ALERT`` fires a ``budget_policy.exceeded`` webhook once per window and lets traffic flow;
``REJECT`` answers requests with HTTP 429 once the window's spend reached the amount.  The scope
is the whole gateway (``GLOBAL``), a workspace, one endpoint (``target`` = its name or id) or one
user (``target`` = username).  MLflow has no client method for budgets: the tracking store's
gateway methods are used (REST ``/api/3.0/mlflow/gateway/budgets/*`` or the SQL store).

A budget that cannot trip is refused before it is written: amounts outside $0.01–$10^9 and
windows longer than a year at check (one window MLflow cannot compute disables every budget of
the gateway); USER scope on a store without authentication at check (SQL store) or create
(server); an ENDPOINT budget whose endpoint has usage tracking off or an unpriced model at create,
update or the diff of a preview (``providers/_spend_tracking.py``), unless ``allow_untracked``.
The rules live in ``gateway_budget_rules.py``, the MLflow calls in ``gateway_budget_mlflow.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import gateway_enforcement
from providers._base import (
    DynamicResource,
    Failures,
    gone,
    is_unknown,
)
from providers._mlflow import (
    MlflowProvider,
    TrackingServer,
    comparable_tracking_uri,
    is_not_found,
    raise_mlflow_error,
    tracking_store,
)
from providers.adoption import ADOPT_KEY, adopt_existing, adopt_field
from providers.gateway_budget_mlflow import (
    budget_arguments,
    declared_at_suffix,
    describe,
    find_endpoint,
    find_endpoint_id,
    get_policy,
    resolve_target_value,
    target_as_declared,
)
from providers.gateway_budget_rules import (
    ACTIONS,
    MAX_WINDOW,
    SCOPES,
    TARGETED_SCOPES,
    WINDOW_PRESETS,
    WINDOW_UNITS,
    validate_action,
    validate_allow_untracked,
    validate_amount,
    validate_declared_at,
    validate_scope,
    validate_target,
    validate_window,
)
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from mlflow.entities.gateway_budget_policy import GatewayBudgetPolicy as MlflowBudgetPolicy

# Kept importable from here (stack config, tests).
__all__ = [
    "ACTIONS",
    "MAX_WINDOW",
    "SCOPES",
    "WINDOW_PRESETS",
    "WINDOW_UNITS",
    "GatewayBudgetPolicy",
    "GatewayBudgetPolicyProvider",
    "budget_arguments",
    "check_inputs",
    "describe",
    "find_endpoint",
    "find_endpoint_id",
    "validate_amount",
    "validate_scope",
    "validate_target",
    "validate_window",
]


# --- schema --------------------------------------------------------------------------------------


def _comparable_amount(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 6)
    return value


def _comparable_window(value: Any) -> Any:
    if isinstance(value, Mapping):
        length = value.get("value")
        return {"unit": value.get("unit"), "value": int(length) if isinstance(length, float) else length}
    return value


SCHEMA = Schema(
    "GatewayBudgetPolicy",
    "An MLflow AI Gateway budget policy: ``amount_usd`` per ``window``, ALERT or REJECT.",
    [
        Field(
            "amount_usd",
            "float",
            "the cap in US dollars, $0.01 to $10^9",
            validate_amount,
            required=True,
            compare=_comparable_amount,
        ),
        Field(
            "window",
            "dict[str, Any]",
            '`"daily"`, `"weekly"`, `"monthly"` or `{"unit": "MINUTES"|"HOURS"|"DAYS"|"WEEKS"|"MONTHS", "value": n}`, '
            "a whole number from 1 up to one year: 527040 minutes, 8784 hours, 366 days, 52 weeks, 12 months",
            validate_window,
            required=True,
            input_annotation="str | Mapping[str, Any]",
            compare=_comparable_window,
        ),
        Field(
            "action",
            "str",
            "`ALERT` (a `budget_policy.exceeded` webhook once per window) or `REJECT` "
            "(HTTP 429 until the window resets)",
            validate_action,
            required=True,
        ),
        Field("scope", "str", "`GLOBAL`, `WORKSPACE`, `ENDPOINT` or `USER`", validate_scope, default="GLOBAL"),
        Field("target", "str | None", "endpoint name or id for `ENDPOINT`, username for `USER`"),
        Field(
            "allow_untracked",
            "bool",
            "accept a budget MLflow cannot count spend for (an endpoint with usage tracking off or an unpriced model)",
            validate_allow_untracked,
            default=False,
            compare=bool,  # state written before this input existed holds None
        ),
        Field(
            "declared_at",
            "str",
            "where the budget was declared (a stack config path), named in error messages",
            validate_declared_at,
            compared=False,
            echoed=False,
        ),
        # How the MLflow server tracks budgets (providers/gateway_enforcement.py): said by the stack,
        # they compute enforced_everywhere_at; never compared (changing them updates nothing).
        Field(
            "gateway_workers",
            "int",
            "the MLflow server's workers (MLflow's default 4 is assumed when unsaid)",
            gateway_enforcement.validate_workers,
            compared=False,
        ),
        Field(
            "budget_tracker",
            "str",
            "how the server shares spend between workers: `in-memory` or `redis`",
            gateway_enforcement.validate_tracker,
            compared=False,
        ),
        Field(
            "refresh_interval_seconds",
            "int",
            "the server's budget refresh interval (MLflow's 600 s when unsaid)",
            gateway_enforcement.validate_refresh_interval,
            compared=False,
        ),
        adopt_field("budget policy (`bp-…`)"),
        Field("target_value", "str | None", "the endpoint id or username MLflow stores", output=True),
        Field("budget_policy_id", "str", "MLflow's id of the policy (`bp-<32 hex>`)", output=True),
        Field(
            "tracking_uri",
            "str",
            "the MLflow tracking server the policy lives in (credentials removed)",
            computed_input=True,
            replaces=True,
            compare=lambda uri: comparable_tracking_uri("tracking_uri", uri),
        ),
        Field(
            "enforced_everywhere_at",
            "str",
            "ISO 8601 UTC: by then every worker of the MLflow server enforces the last create or update "
            "(the write's time plus the server's refresh interval; at once on a one-worker server)",
            output=True,
        ),
    ],
)
SERVER_DECLARATION = tuple(f.name for f in SCHEMA.arguments if not f.compared and f.echoed)
ADDED_IN_0_3_0 = (*SERVER_DECLARATION, "enforced_everywhere_at")


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    inputs, failures = SCHEMA.check(news)
    inputs["target"] = validate_target(inputs.get("target"), failures, scope=inputs.get("scope"))
    return inputs, failures


def user_scope_failure(inputs: Mapping[str, Any]) -> str | None:
    """USER scope on a store without a server: no request it sees ever carries a username."""
    uri = inputs.get("tracking_uri")
    if inputs.get("scope") != "USER" or not isinstance(uri, str):
        return None
    if TrackingServer(uri).is_http or uri.split(":", 1)[0] == "databricks":
        return None  # a server: whether it has authentication is asked at create
    return (
        f"USER scope needs an MLflow server with authentication, and {uri} is a database store "
        "with no users: the budget would never match a request. Point mlflow:trackingUri at the "
        "server (mlflow server --app-name basic-auth) or use scope ENDPOINT, WORKSPACE or GLOBAL"
        + declared_at_suffix(inputs)
    )


def outputs_of(policy: MlflowBudgetPolicy, declared: Mapping[str, Any], server: TrackingServer) -> dict[str, Any]:
    """Outputs in the shape ``check`` gives inputs, so that diff compares like with like."""
    return {
        "amount_usd": _declared_amount(policy.budget_amount, declared.get("amount_usd")),
        "window": {"unit": policy.duration.unit.value, "value": int(policy.duration.value)},
        "action": policy.budget_action.value,
        "scope": policy.target_scope.value,
        "target": declared.get("target") if "target" in declared else policy.target_value,
        "target_value": policy.target_value,
        "allow_untracked": bool(declared.get("allow_untracked")),
        "budget_policy_id": policy.budget_policy_id,
        "tracking_uri": server.public_uri,
        **_server_declaration(declared),
        "enforced_everywhere_at": gateway_enforcement.enforced_everywhere_at(
            int(policy.last_updated_at or policy.created_at or 0),
            # Written straight into a server's database, no worker hears of it: all wait.
            declared.get("gateway_workers") if server.is_http else None,
            declared.get("refresh_interval_seconds"),
        ),
    }


def _server_declaration(declared: Mapping[str, Any]) -> dict[str, Any]:
    # How the server tracks budgets: said by the stack, never compared (no diff, no update).
    return {name: declared.get(name) for name in SERVER_DECLARATION}


def _declared_amount(actual: float, declared: Any) -> float:
    # A database with single-precision columns returns 10.100000381 for 10.1: not drift.
    if isinstance(declared, (int, float)) and math.isclose(actual, declared, rel_tol=1e-6):
        return float(declared)
    return float(actual)


def _guard_applies(inputs: Mapping[str, Any]) -> bool:
    names = ("scope", "target", "action", "allow_untracked")
    return inputs.get("scope") in TARGETED_SCOPES and not any(is_unknown(inputs.get(n)) for n in names)


# --- provider ------------------------------------------------------------------------------------


class GatewayBudgetPolicyProvider(MlflowProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        self.record_tracking_uri(inputs, failures)
        reason = user_scope_failure(inputs)
        if reason:
            failures.add("scope", reason)
        return failures.result(inputs)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        if result.changes and not result.replaces and _guard_applies(news):
            # Preview of an update: the earliest phase that can ask the server (check cannot).
            server = self.server_for(olds.get("tracking_uri"))
            resolve_target_value(tracking_store(server), server, news)
        return result

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get(ADOPT_KEY):
            return adopt_existing(self, "budget policy", props)
        server = self.configured_server()
        store = tracking_store(server)
        arguments = budget_arguments(props, resolve_target_value(store, server, props))
        try:
            policy = store.create_budget_policy(**arguments)
        except Exception as error:  # noqa: BLE001
            raise_mlflow_error("create", "budget policy", describe(props), server, error)
        return CreateResult(policy.budget_policy_id, outputs_of(policy, props, server))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        server = self.server_for(props.get("tracking_uri"))
        store = tracking_store(server)
        policy = get_policy(store, server, id_)
        if policy is None:
            return gone()
        declared = dict(props, target=target_as_declared(store, policy, props))
        outs = outputs_of(policy, declared, server)
        if "enforced_everywhere_at" not in props:
            # State written before 0.3.0: refresh keeps its shape (no diff); the next write adds them.
            outs = {name: value for name, value in outs.items() if name not in ADDED_IN_0_3_0}
        return ReadResult(policy.budget_policy_id, outs, inputs=SCHEMA.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        server = self.server_for(olds.get("tracking_uri"))
        store = tracking_store(server)
        arguments = budget_arguments(news, resolve_target_value(store, server, news))
        try:
            policy = store.update_budget_policy(id_, **arguments)
        except Exception as error:  # noqa: BLE001
            raise_mlflow_error("update", "budget policy", id_, server, error)
        return UpdateResult(outputs_of(policy, news, server))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        server = self.server_for(props.get("tracking_uri"))
        try:
            tracking_store(server).delete_budget_policy(id_)
        except Exception as error:  # noqa: BLE001
            if not is_not_found(error):  # not found: gone already
                raise_mlflow_error("delete", "budget policy", id_, server, error)


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class GatewayBudgetPolicy(DynamicResource, module="mlbudgets", name="GatewayBudgetPolicy"):
    """An MLflow AI Gateway budget policy: ``amount_usd`` per ``window``, ALERT or REJECT."""

    amount_usd: pulumi.Output[float]
    window: pulumi.Output[dict[str, Any]]
    action: pulumi.Output[str]
    scope: pulumi.Output[str]
    target: pulumi.Output[str | None]
    allow_untracked: pulumi.Output[bool]
    gateway_workers: pulumi.Output[int]
    budget_tracker: pulumi.Output[str]
    refresh_interval_seconds: pulumi.Output[int]
    target_value: pulumi.Output[str | None]
    budget_policy_id: pulumi.Output[str]
    tracking_uri: pulumi.Output[str]
    enforced_everywhere_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        amount_usd: pulumi.Input[float],
        window: pulumi.Input[str | Mapping[str, Any]],
        action: pulumi.Input[str],
        scope: pulumi.Input[str] | None = None,
        target: pulumi.Input[str | None] | None = None,
        allow_untracked: pulumi.Input[bool] | None = None,
        declared_at: pulumi.Input[str] | None = None,
        gateway_workers: pulumi.Input[int] | None = None,
        budget_tracker: pulumi.Input[str] | None = None,
        refresh_interval_seconds: pulumi.Input[int] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param amount_usd: the cap in US dollars, $0.01 to $10^9
        :param window: `"daily"`, `"weekly"`, `"monthly"` or `{"unit":
            "MINUTES"|"HOURS"|"DAYS"|"WEEKS"|"MONTHS", "value": n}`, a whole number from 1 up to one year:
            527040 minutes, 8784 hours, 366 days, 52 weeks, 12 months
        :param action: `ALERT` (a `budget_policy.exceeded` webhook once per window) or `REJECT` (HTTP 429
            until the window resets)
        :param scope: `GLOBAL`, `WORKSPACE`, `ENDPOINT` or `USER`
        :param target: endpoint name or id for `ENDPOINT`, username for `USER`
        :param allow_untracked: accept a budget MLflow cannot count spend for (an endpoint with usage
            tracking off or an unpriced model)
        :param declared_at: where the budget was declared (a stack config path), named in error messages
        :param gateway_workers: the MLflow server's workers (MLflow's default 4 is assumed when unsaid)
        :param budget_tracker: how the server shares spend between workers: `in-memory` or `redis`
        :param refresh_interval_seconds: the server's budget refresh interval (MLflow's 600 s when unsaid)
        :param adopt_id: the id of an existing budget policy (`bp-…`) that the first `pulumi up` takes over
            (updated to the declared inputs) instead of creating one; ignored once the resource is in the
            stack's state
        """
        props = SCHEMA.props(
            {
                "amount_usd": amount_usd,
                "window": window,
                "action": action,
                "scope": scope,
                "target": target,
                "allow_untracked": allow_untracked,
                "declared_at": declared_at,
                "gateway_workers": gateway_workers,
                "budget_tracker": budget_tracker,
                "refresh_interval_seconds": refresh_interval_seconds,
                "adopt_id": adopt_id,
            }
        )
        DynamicResource.__init__(self, GatewayBudgetPolicyProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
