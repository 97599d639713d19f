"""``AccountBudget``: a Databricks account budget (``AccountClient.budgets``), in dollars.

A budget counts the account's monthly list-price spend that matches its filter (tag clauses
``key IN values`` and workspace ids; empty = the whole account) and, at each alert threshold,
emails the listed addresses.  An AI Gateway budget (``resource_type="AI_GATEWAY"``) counts
Databricks AI Gateway spend only and may also *block* usage at its highest shared threshold, and
carry a per-user limit with per-principal overrides.

The API returns ``action_configurations`` and ``principal_overrides`` in an order of its own,
so alerts, addresses and overrides are compared as sets keyed by what they mean (threshold,
address, principal), never by position: a server-side reordering never shows as a change.
The rules live in ``account_budget_rules.py``, the API shapes in ``account_budget_wire.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import fields
from providers._base import DynamicResource, Failures, api_error, gone, is_unknown
from providers._databricks import (
    DatabricksProvider,
    DatabricksProviderError,
    databricks_errors,
    returned_id,
    single_attempt,
)
from providers.account_budget_rules import (
    MAX_TAG_KEYS,
    MAX_TAG_VALUES,
    validate_alerts,
    validate_display_name,
    validate_per_user_alert,
    validate_resource_type,
    validate_tags,
    validate_workspace_ids,
)
from providers.account_budget_wire import budget_inputs, create_body, outputs_of, update_body
from providers.adoption import ADOPT_KEY, adopt_existing, adopt_field
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service import billing

# Kept importable from here (tests, benchmarks).
_create_body = create_body
__all__ = ["AccountBudget", "AccountBudgetProvider", "budget_inputs", "check_inputs", "validate_alerts"]


# --- schema --------------------------------------------------------------------------------------


def _no_empty(empty: Any) -> Any:
    """A comparison that reads an absent optional value and its empty form alike."""
    return lambda value: empty if value in (None, {}, []) else value


SCHEMA = Schema(
    "AccountBudget",
    "A Databricks account budget: monthly list-price dollars over usage matching a tag and workspace filter, "
    "with alerts that email addresses and (AI Gateway budgets) block usage.",
    [
        Field("display_name", "str", "1–128 characters", validate_display_name, required=True),
        Field(
            "alerts",
            "list[Any]",
            'monthly shared alerts: `{"threshold_usd": $0.01 to $10^9, "notify": [email, …], "block_usage": false}`; '
            "at most 4, each with its own threshold; an alert must notify someone or block",
            default=[],
            input_annotation="Sequence[pulumi.Input[Mapping[str, Any]]]",
            compare=_no_empty([]),
        ),
        Field(
            "tags",
            "dict[str, Any]",
            "tag key → list of values: only usage carrying one of the values of **every** key counts; "
            f"at most {MAX_TAG_KEYS} keys of {MAX_TAG_VALUES} values",
            validate_tags,
            default={},
            input_annotation="Mapping[str, pulumi.Input[Sequence[pulumi.Input[str]]]]",
            compare=_no_empty({}),
        ),
        Field(
            "workspace_ids",
            "list[Any]",
            "only usage of these workspaces counts; empty = all (integers, or strings of ASCII digits)",
            validate_workspace_ids,
            default=[],
            input_annotation="Sequence[pulumi.Input[int]]",
            compare=_no_empty([]),
        ),
        Field(
            "resource_type",
            "str",
            '`"ALL"` (all usage) or `"AI_GATEWAY"` (Databricks AI Gateway usage)',
            validate_resource_type,
            default="ALL",
            replaces=True,
        ),
        Field(
            "per_user_alert",
            "dict[str, Any] | None",
            '`AI_GATEWAY` only: `{"threshold_usd", "notify", "block_usage", "overrides": {principal id: '
            "threshold_usd}}`, each user's own monthly spend; overrides raise the limit for one user, group or "
            "service principal, named by its numeric account principal id",
            input_annotation="Mapping[str, Any]",
            compare=_no_empty(None),
        ),
        Field(
            "include_external_spend",
            "bool",
            "`AI_GATEWAY` only: also count third-party spend billed through Databricks; fixed at creation",
            fields.validate_flag,
            default=False,
            replaces=True,
        ),
        adopt_field("account budget"),
        Field("budget_id", "str", "the budget's id", output=True),
        Field("account_id", "str", "the Databricks account the budget lives in", output=True),
    ],
)


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    """Validate and normalize inputs without any API call (``check()``, and stack config)."""
    inputs, failures = SCHEMA.check(news)
    resource_type = inputs["resource_type"]
    gateway = resource_type == "AI_GATEWAY" or is_unknown(resource_type)
    inputs["alerts"] = validate_alerts(inputs.get("alerts"), failures, gateway=gateway)
    inputs["per_user_alert"] = validate_per_user_alert(inputs.get("per_user_alert"), failures, gateway=gateway)
    if inputs["alerts"] == [] and inputs["per_user_alert"] is None:
        failures.add("alerts", "is empty: a budget needs at least one alert (a threshold in dollars and who to notify)")
    if inputs["include_external_spend"] is True and not gateway:
        failures.add(
            "include_external_spend",
            'applies only to AI Gateway budgets: set resource_type "AI_GATEWAY" or remove it',
        )
    return inputs, failures


# --- create without twins ------------------------------------------------------------------------
#
# The budgets API takes no request id, and the SDK re-sends a POST whose answer was lost (dropped
# connection, timeout, 503): if the first attempt had been committed, that makes a twin budget
# no state tracks.  So each create is sent once (``single_attempt``), and before sending again
# after an answer that may have been lost, the account is searched for the budget that attempt made.


def _create_without_twins(client: AccountClient, props: Mapping[str, Any]) -> billing.BudgetConfiguration:
    import requests
    from databricks.sdk.errors import TemporarilyUnavailable, TooManyRequests

    wanted = {k: props.get(k) for k in (*SCHEMA.in_place, *SCHEMA.replacing)}
    started_ms = time.time() * 1000 - 60_000  # allow for clock skew with the server
    deadline = time.monotonic() + (client.config.retry_timeout_seconds or 300)
    last: Exception
    attempt = 0
    while True:
        attempt += 1
        try:
            with single_attempt(client):
                answer = client.budgets.create(create_body(props))
            return _answered(answer.budget, "create", props["display_name"])
        except TooManyRequests as error:  # refused at the door: nothing was created
            last, wait = error, error.retry_after_secs or min(attempt, 10)
        except (requests.ConnectionError, requests.Timeout, TemporarilyUnavailable) as error:
            made = _budget_made_since(client, wanted, started_ms)
            if made is not None:
                return made
            last, wait = error, getattr(error, "retry_after_secs", None) or min(attempt, 10)
        if time.monotonic() + wait > deadline:
            raise TimeoutError(f"Timed out after {client.config.retry_timeout_seconds or 300}s") from last
        time.sleep(wait)


def _budget_made_since(
    client: AccountClient, wanted: Mapping[str, Any], since_ms: float
) -> billing.BudgetConfiguration | None:
    for budget in client.budgets.list():
        if (budget.create_time or 0) >= since_ms and all(
            SCHEMA.comparable(k, v) == SCHEMA.comparable(k, wanted.get(k)) for k, v in budget_inputs(budget).items()
        ):
            return budget
    return None


def _answered(budget: billing.BudgetConfiguration | None, verb: str, name: str) -> billing.BudgetConfiguration:
    """The budget of an API answer (the SDK types every field optional)."""
    if budget is None:
        raise api_error(
            verb,
            "account budget",
            name,
            "Databricks answered without the budget",
            _NO_BUDGET_HINT,
            error_class=DatabricksProviderError,
        )
    return budget


_NO_BUDGET_HINT = "Run `pulumi up` again; if it keeps failing, check the Databricks account's status."


# --- provider ------------------------------------------------------------------------------------


class AccountBudgetProvider(DatabricksProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        return failures.result(inputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        return self.replace_if_account_moved(result, olds)

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get(ADOPT_KEY):
            return adopt_existing(self, "account budget", props)
        client = self.account.client()
        with databricks_errors("create", "account budget", props["display_name"]):
            budget = _create_without_twins(client, props)
        budget_id = returned_id(budget.budget_configuration_id, "create", "account budget", props["display_name"])
        return CreateResult(budget_id, outputs_of(budget, client.config.account_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from databricks.sdk.errors import NotFound

        client = self.account.client(props.get("account_id"))
        try:
            with databricks_errors("read", "account budget", id_, expected=(NotFound,)):
                budget = _answered(client.budgets.get(id_).budget, "read", id_)
        except NotFound:
            return gone()
        return ReadResult(
            budget.budget_configuration_id or id_, outputs_of(budget, client.config.account_id), budget_inputs(budget)
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.account.client(olds.get("account_id"))
        with databricks_errors("update", "account budget", id_):
            current = _answered(client.budgets.get(id_).budget, "read", id_)
            budget = _answered(client.budgets.update(id_, update_body(id_, news, current)).budget, "update", id_)
        return UpdateResult(outputs_of(budget, client.config.account_id))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from databricks.sdk.errors import NotFound

        try:
            with databricks_errors("delete", "account budget", id_, expected=(NotFound,)):
                self.account.client(props.get("account_id")).budgets.delete(id_)
        except NotFound:
            pass  # already gone


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class AccountBudget(DynamicResource, module="mlbudgets", name="AccountBudget"):
    """A Databricks account budget: monthly list-price dollars over usage matching a tag and workspace
    filter, with alerts that email addresses and (AI Gateway budgets) block usage."""

    display_name: pulumi.Output[str]
    alerts: pulumi.Output[list[Any]]
    tags: pulumi.Output[dict[str, Any]]
    workspace_ids: pulumi.Output[list[Any]]
    resource_type: pulumi.Output[str]
    per_user_alert: pulumi.Output[dict[str, Any] | None]
    include_external_spend: pulumi.Output[bool]
    budget_id: pulumi.Output[str]
    account_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        display_name: pulumi.Input[str],
        alerts: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] | None = None,
        tags: pulumi.Input[Mapping[str, pulumi.Input[Sequence[pulumi.Input[str]]]]] | None = None,
        workspace_ids: pulumi.Input[Sequence[pulumi.Input[int]]] | None = None,
        resource_type: pulumi.Input[str] | None = None,
        per_user_alert: pulumi.Input[Mapping[str, Any]] | None = None,
        include_external_spend: pulumi.Input[bool] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param display_name: 1–128 characters
        :param alerts: monthly shared alerts: `{"threshold_usd": $0.01 to $10^9, "notify": [email, …],
            "block_usage": false}`; at most 4, each with its own threshold; an alert must notify someone or
            block
        :param tags: tag key → list of values: only usage carrying one of the values of **every** key
            counts; at most 20 keys of 50 values
        :param workspace_ids: only usage of these workspaces counts; empty = all (integers, or strings of
            ASCII digits)
        :param resource_type: `"ALL"` (all usage) or `"AI_GATEWAY"` (Databricks AI Gateway usage)
        :param per_user_alert: `AI_GATEWAY` only: `{"threshold_usd", "notify", "block_usage", "overrides":
            {principal id: threshold_usd}}`, each user's own monthly spend; overrides raise the limit for
            one user, group or service principal, named by its numeric account principal id
        :param include_external_spend: `AI_GATEWAY` only: also count third-party spend billed through
            Databricks; fixed at creation
        :param adopt_id: the id of an existing account budget that the first `pulumi up` takes over (updated
            to the declared inputs) instead of creating one; ignored once the resource is in the stack's
            state
        """
        props = SCHEMA.props(
            {
                "display_name": display_name,
                "alerts": alerts,
                "tags": tags,
                "workspace_ids": workspace_ids,
                "resource_type": resource_type,
                "per_user_alert": per_user_alert,
                "include_external_spend": include_external_spend,
                "adopt_id": adopt_id,
            }
        )
        DynamicResource.__init__(self, AccountBudgetProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
