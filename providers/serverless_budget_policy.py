"""``ServerlessBudgetPolicy``: a Databricks serverless budget policy (account level).

A budget policy attributes serverless usage (notebooks, jobs, pipelines, model serving) to the
custom tags it carries, and can be bound to chosen workspaces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import fields
from providers._base import (
    DynamicResource,
    Failures,
    ProviderError,
    api_error,
    control_character_failure,
    gone,
    is_unknown,
    quoted,
)
from providers._databricks import (
    POLICY_MANAGER,
    DatabricksProvider,
    DatabricksProviderError,
    databricks_errors,
    returned_id,
)
from providers.adoption import ADOPT_KEY, adopt_existing, adopt_field
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.billing import BudgetPolicy, Filter

# --- constants -----------------------------------------------------------------------------------


MAX_NAME_LENGTH = 127
MAX_TAGS = 20
MAX_TAG_KEY_LENGTH = 512
MAX_TAG_VALUE_LENGTH = 256
RESERVED_TAG_KEYS = ("budget-policy-name", "budget-policy-id", "budget-policy-resolution-result")
RESERVED_NAME_PREFIX = "databricks:default-policy"

# Databricks sometimes refuses a create with "Duplicate policy name found." under load although
# no policy has the name (terraform-provider-databricks #4600): retried this many times.
MAX_CREATE_ATTEMPTS = 5


# --- field validators ----------------------------------------------------------------------------


def validate_policy_name(name: Any, failures: Failures, prop: str = "policy_name") -> Any:
    if not isinstance(name, str) or not name:
        failures.add(prop, "is required: a name of 1 to 127 characters")
        return name
    if len(name) > MAX_NAME_LENGTH:
        failures.add(prop, f"is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed")
    if reason := control_character_failure(name):
        failures.add(prop, f"{quoted(name)} {reason}")
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        failures.add(prop, f"{quoted(name)} has characters outside Latin-1; use Latin-1 only")
    if name.startswith(RESERVED_NAME_PREFIX):
        failures.add(prop, f"must not start with {RESERVED_NAME_PREFIX!r} (reserved by Databricks)")
    return name


def validate_custom_tags(tags: Any, failures: Failures, prop: str = "custom_tags") -> dict[str, str] | None:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        failures.add(prop, 'must be a mapping of tag key to value, e.g. {"team": "search"}')
        return None
    if len(tags) > MAX_TAGS:
        failures.add(prop, f"has {len(tags)} tags; at most {MAX_TAGS} allowed")
    normalized: dict[str, str] = {}
    for key, value in tags.items():
        if is_unknown(value):
            normalized[key] = value
            continue
        if not key or len(key) > MAX_TAG_KEY_LENGTH:
            failures.add(prop, f"tag key {quoted(key)} must be 1 to {MAX_TAG_KEY_LENGTH} characters")
        if reason := control_character_failure(key):
            failures.add(prop, f"tag key {quoted(key)} {reason}")
        if key in RESERVED_TAG_KEYS:
            failures.add(prop, f"tag key {key!r} is reserved; reserved keys: {', '.join(RESERVED_TAG_KEYS)}")
        if not isinstance(value, str):
            failures.add(prop, f"tag {quoted(key)} has value {quoted(value)}; tag values must be strings")
            continue
        if len(value) > MAX_TAG_VALUE_LENGTH:
            failures.add(prop, f"tag {quoted(key)} value is {len(value)} characters; at most {MAX_TAG_VALUE_LENGTH}")
        if reason := control_character_failure(value):
            failures.add(prop, f"tag {quoted(key)} value {quoted(value)} {reason}")
        normalized[key] = value
    return dict(sorted(normalized.items()))


def validate_workspace_ids(ids: Any, failures: Failures, prop: str = "binding_workspace_ids") -> list[int] | None:
    return fields.validate_workspace_ids(ids, failures, prop)


# --- schema --------------------------------------------------------------------------------------


def _tags_to_wire(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (tags or {}).items()]


def _tags_from_wire(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    return dict(sorted((t["key"], t.get("value") or "") for t in tags or []))


def _ids_to_wire(ids: list[Any] | None) -> list[int]:
    return [int(w) for w in ids or []]


def _ids_from_wire(ids: list[Any] | None) -> list[int]:
    return sorted(int(w) for w in ids or [])


SCHEMA = Schema(
    "ServerlessBudgetPolicy",
    "A Databricks serverless budget policy: a name, custom tags for cost attribution, bound workspaces.",
    [
        Field(
            "policy_name",
            "str",
            "1–127 Latin-1 characters, unique among the account's policies, not starting with "
            "`databricks:default-policy`",
            validate_policy_name,
            required=True,
            wire="policy_name",
            config_key="policyName",
        ),
        Field(
            "custom_tags",
            "dict[str, str]",
            "tag key → value attached to serverless usage for cost attribution; ≤ 20 tags, key 1–512, "
            "value ≤ 256 characters; keys `budget-policy-name`, `budget-policy-id`, "
            "`budget-policy-resolution-result` are reserved",
            validate_custom_tags,
            default={},
            wire="custom_tags",
            to_wire=_tags_to_wire,
            from_wire=_tags_from_wire,
            config_key="customTags",
        ),
        Field(
            "binding_workspace_ids",
            "list[int]",
            "workspaces the policy is bound to (integers, or strings of ASCII digits)",
            validate_workspace_ids,
            default=[],
            wire="binding_workspace_ids",
            to_wire=_ids_to_wire,
            from_wire=_ids_from_wire,
            config_key="workspaceIds",
        ),
        adopt_field("budget policy"),
        Field("policy_id", "str", "the policy's id (36 characters)", output=True, wire="policy_id"),
        Field("account_id", "str", "the Databricks account the policy lives in", output=True),
    ],
)
# Lists the SDK leaves out of an update body when empty (see update()).
LIST_FIELDS = ("custom_tags", "binding_workspace_ids")


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    """Validate and normalize inputs without any API call (``check()``, and stack config)."""
    return SCHEMA.check(news)


# --- wire conversion -----------------------------------------------------------------------------


def _to_budget_policy(props: Mapping[str, Any], policy_id: str | None = None) -> BudgetPolicy:
    from databricks.sdk.service.billing import BudgetPolicy

    return BudgetPolicy.from_dict({**SCHEMA.to_wire(props), "policy_id": policy_id})


def _policy_inputs(policy: BudgetPolicy) -> dict[str, Any]:
    return SCHEMA.inputs_of(SCHEMA.from_wire(policy.as_dict()))


def _outputs(policy: BudgetPolicy, account_id: str | None) -> dict[str, Any]:
    return {**SCHEMA.from_wire(policy.as_dict()), "account_id": account_id}


def _name_filter(name: str) -> Filter:
    from databricks.sdk.service.billing import Filter

    return Filter(policy_name=name)


# --- provider ------------------------------------------------------------------------------------


class ServerlessBudgetPolicyProvider(DatabricksProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        return failures.result(inputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        return self.replace_if_account_moved(result, olds)

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get(ADOPT_KEY):
            return adopt_existing(self, "budget policy", props)
        client = self.account.client()
        # One request_id for this create: the SDK re-sends the same body on 429/503 and
        # connection errors, and Databricks returns the policy made by the first attempt.
        request_id = str(uuid.uuid4())
        with databricks_errors("create", "budget policy", props["policy_name"]):
            policy = self._create_despite_spurious_duplicates(client, props, request_id)
        policy_id = returned_id(policy.policy_id, "create", "budget policy", props["policy_name"])
        return CreateResult(policy_id, _outputs(policy, client.config.account_id))

    def _create_despite_spurious_duplicates(
        self, client: AccountClient, props: Mapping[str, Any], request_id: str
    ) -> BudgetPolicy:
        """Create; a "Duplicate policy name found." while no policy has the name is retried with
        the same request_id (an attempt that did land is returned, never made twice)."""
        from databricks.sdk.errors import ResourceAlreadyExists

        name = props["policy_name"]
        for attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                return client.budget_policy.create(policy=_to_budget_policy(props), request_id=request_id)
            except ResourceAlreadyExists as error:
                refusal = error
                if self._policy_named(client, name) is not None:
                    break
                time.sleep(min(0.2 * 2**attempt, 2.0))
        else:
            raise api_error(
                "create",
                "budget policy",
                name,
                f"Databricks answered {str(refusal)!r} {MAX_CREATE_ATTEMPTS} times although no policy has that name "
                "(a spurious answer it gives under load)",
                "Run `pulumi up` again later.",
                error_class=DatabricksProviderError,
            )
        raise self._name_taken(client, name, refusal)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from databricks.sdk.errors import NotFound

        client = self.account.client(props.get("account_id"))
        try:
            with databricks_errors("read", "budget policy", id_, expected=(NotFound,), needs=POLICY_MANAGER):
                policy = client.budget_policy.get(id_)
        except NotFound:
            return gone()
        return ReadResult(policy.policy_id, _outputs(policy, client.config.account_id), _policy_inputs(policy))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.account.client(olds.get("account_id"))
        cleared = [field for field in LIST_FIELDS if olds.get(field) and not news.get(field)]
        with databricks_errors("update", "budget policy", id_, needs=POLICY_MANAGER):
            policy = client.budget_policy.update(id_, _to_budget_policy(news, policy_id=id_))
            if cleared:
                # The SDK leaves empty lists out of the body, and whether Databricks reads an absent
                # list as "none" or as "unchanged" is not documented: read back.
                policy = client.budget_policy.get(id_)
        kept = [field for field in cleared if _policy_inputs(policy)[field]]
        if kept:
            raise api_error(
                "update",
                "budget policy",
                id_,
                f"Databricks kept its {' and '.join(kept)} although the update gave none (an empty list is left out "
                "of the request, and this server reads that as unchanged)",
                "Remove them in the account console, then run `pulumi refresh`.",
                error_class=DatabricksProviderError,
            )
        return UpdateResult(_outputs(policy, client.config.account_id))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from databricks.sdk.errors import NotFound

        try:
            with databricks_errors("delete", "budget policy", id_, expected=(NotFound,), needs=POLICY_MANAGER):
                self.account.client(props.get("account_id")).budget_policy.delete(id_)
        except NotFound:
            pass  # gone already

    @staticmethod
    def _policy_named(client: AccountClient, name: str) -> BudgetPolicy | None:
        """The active policy with exactly this name, if any (the list filter matches substrings)."""
        with databricks_errors("list", "budget policies named", name):
            return next(
                (p for p in client.budget_policy.list(filter_by=_name_filter(name)) if p.policy_name == name), None
            )

    def _name_taken(self, client: AccountClient, name: str, error: BaseException) -> ProviderError:
        existing = self._policy_named(client, name)
        adopt = (
            f'To manage it with Pulumi, adopt it: declare the resource with adopt_id="{existing.policy_id}". '
            if existing
            else ""
        )
        reason = f"the name is already taken by another budget policy in this account ({error})"
        return api_error(
            "create",
            "budget policy",
            name,
            reason,
            f"{adopt}Or choose another policy_name.",
            error_class=DatabricksProviderError,
        )


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class ServerlessBudgetPolicy(DynamicResource, module="mlbudgets", name="ServerlessBudgetPolicy"):
    """A Databricks serverless budget policy: a name, custom tags for cost attribution, bound workspaces."""

    policy_name: pulumi.Output[str]
    custom_tags: pulumi.Output[dict[str, str]]
    binding_workspace_ids: pulumi.Output[list[int]]
    policy_id: pulumi.Output[str]
    account_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        policy_name: pulumi.Input[str],
        custom_tags: pulumi.Input[dict[str, str]] | None = None,
        binding_workspace_ids: pulumi.Input[list[int]] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param policy_name: 1–127 Latin-1 characters, unique among the account's policies, not starting with
            `databricks:default-policy`
        :param custom_tags: tag key → value attached to serverless usage for cost attribution; ≤ 20 tags,
            key 1–512, value ≤ 256 characters; keys `budget-policy-name`, `budget-policy-id`, `budget-
            policy-resolution-result` are reserved
        :param binding_workspace_ids: workspaces the policy is bound to (integers, or strings of ASCII
            digits)
        :param adopt_id: the id of an existing budget policy that the first `pulumi up` takes over (updated
            to the declared inputs) instead of creating one; ignored once the resource is in the stack's
            state
        """
        props = SCHEMA.props(
            {
                "policy_name": policy_name,
                "custom_tags": custom_tags,
                "binding_workspace_ids": binding_workspace_ids,
                "adopt_id": adopt_id,
            }
        )
        DynamicResource.__init__(self, ServerlessBudgetPolicyProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
