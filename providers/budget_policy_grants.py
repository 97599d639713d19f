"""``BudgetPolicyGrants``: who may use (User) and manage (Manager) a serverless budget policy.

The grants live in the policy's account rule set
``accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default``.  Databricks replaces a rule
set as a whole and guards it with an etag, so every write here is read-modify-write, retried on
409 ``RESOURCE_CONFLICT`` with a fresh read: a grant written concurrently by someone else is
never overwritten, and ours always lands.

* additive (default): the resource manages only the (principal, role) pairs it declares, and
  revokes only those it added itself (``granted_users``/``granted_managers``): a declared pair that
  was already there (granted in the UI, by another stack) stays when the resource lets go of it;
* authoritative: the rule set is exactly what is declared (like pulumi-databricks
  ``AccessControlRuleSet``); refresh reports any other grant as drift, and delete empties it.

Databricks identifies users by email regardless of case (and service principals by a UUID), so
principals are compared that way: a server that answers ``users/Alice@Example.com`` as
``users/alice@example.com`` is not drift.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers._base import (
    DynamicResource,
    Failures,
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
    sdk_retries,
)
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.iam import GrantRule, RuleSetResponse

# --- constants -----------------------------------------------------------------------------------


USER_ROLE = "roles/budgetPolicy.user"
MANAGER_ROLE = "roles/budgetPolicy.manager"
ROLE_OF_FIELD = {"users": USER_ROLE, "managers": MANAGER_ROLE}

PRINCIPAL_EXAMPLES = (
    "users/alice@example.com, groups/data-science, servicePrincipals/9f0c6a52-3c2e-4f5b-8a43-0a6d9e2b1c7d"
)
_PRINCIPAL_PATTERNS = (
    re.compile(r"users/[^\s@]+@[^\s@/]+"),
    re.compile(r"groups/\S(.*\S)?", re.DOTALL),
    re.compile(r"servicePrincipals/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
)
POLICY_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{36}")
MAX_WRITE_ATTEMPTS = 8

Grants = dict[str, set[str]]  # role -> principals


def principal_key(principal: str) -> str:
    """How Databricks tells principals apart: emails and UUIDs ignore case, group names do not."""
    kind, _, rest = principal.partition("/")
    return principal if kind == "groups" else f"{kind}/{rest.lower()}"


def _keys(principals: Iterable[str]) -> set[str]:
    return {principal_key(p) for p in principals}


def _only(principals: Iterable[str], among: Iterable[str]) -> set[str]:
    """``principals`` (as spelled there) that are also in ``among``."""
    keys = _keys(among)
    return {p for p in principals if principal_key(p) in keys}


def _without(principals: Iterable[str], removed: Iterable[str]) -> set[str]:
    keys = _keys(removed)
    return {p for p in principals if principal_key(p) not in keys}


def _plus(principals: Iterable[str], added: Iterable[str]) -> set[str]:
    return set(principals) | _without(added, principals)


def rule_set_name(account_id: str, policy_id: str) -> str:
    return f"accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def is_valid_principal(principal: Any) -> bool:
    return (
        isinstance(principal, str)
        and not control_character_failure(principal)
        and any(p.fullmatch(principal) for p in _PRINCIPAL_PATTERNS)
    )


# --- field validators ----------------------------------------------------------------------------


def validate_policy_id(policy_id: Any, failures: Failures, prop: str = "policy_id") -> Any:
    if not (isinstance(policy_id, str) and POLICY_ID_PATTERN.fullmatch(policy_id)):
        failures.add(
            prop,
            f"{quoted(policy_id)} is not a budget policy id (36 characters, e.g. a ServerlessBudgetPolicy's policy_id)",
        )
    return policy_id


def validate_principals(principals: Any, failures: Failures, prop: str) -> list[str] | None:
    if principals is None:
        return []
    if isinstance(principals, str) or not isinstance(principals, Sequence):
        failures.add(prop, f"must be a list of principals, e.g. [{PRINCIPAL_EXAMPLES}]")
        return None
    invalid = [p for p in principals if not is_unknown(p) and not is_valid_principal(p)]
    for principal in invalid:
        reason = isinstance(principal, str) and control_character_failure(principal)
        failures.add(
            prop,
            f"{quoted(principal)} {reason}"
            if reason
            else f"{quoted(principal)} is not a principal; write principals as Databricks does: {PRINCIPAL_EXAMPLES}",
        )
    if invalid:
        return None
    if any(is_unknown(p) for p in principals):
        return list(principals)  # preview: some principals are outputs not known yet
    unique: dict[str, str] = {}
    for principal in sorted(principals):
        unique.setdefault(principal_key(principal), principal)
    return sorted(unique.values())


def validate_authoritative(authoritative: Any, failures: Failures, prop: str = "authoritative") -> Any:
    if authoritative is None:
        return False
    if not isinstance(authoritative, bool):
        failures.add(prop, f"must be true or false, not {quoted(authoritative)}")
    return authoritative


def _comparable_principals(value: Any) -> Any:
    """Principals as Databricks tells them apart, for diff."""
    return sorted(_keys(value)) if isinstance(value, list) else value


def _principals(name: str, doc: str) -> Field:
    return Field(
        name,
        "list[str]",
        doc,
        validate_principals,
        default=[],
        input_annotation="Sequence[pulumi.Input[str]]",
        compare=_comparable_principals,
    )


SCHEMA = Schema(
    "BudgetPolicyGrants",
    "User and Manager grants on a serverless budget policy, additive (default) or authoritative.",
    [
        Field(
            "policy_id",
            "str",
            "the budget policy (36 characters, e.g. a ServerlessBudgetPolicy's policy_id)",
            validate_policy_id,
            required=True,
            replaces=True,
        ),
        _principals(
            "users",
            "principals given the **User** role (`roles/budgetPolicy.user`): they can pick the policy for "
            "notebooks, jobs, pipelines and serving endpoints",
        ),
        _principals(
            "managers",
            "principals given the **Manager** role (`roles/budgetPolicy.manager`): they can also edit the "
            "policy and its permissions",
        ),
        Field(
            "authoritative",
            "bool",
            "`true`: the rule set becomes exactly `users` + `managers` (see below)",
            validate_authoritative,
            default=False,
        ),
        Field("declared_users", "list[str]", "the User grants this resource manages", output=True),
        Field("declared_managers", "list[str]", "the Manager grants this resource manages", output=True),
        Field("granted_users", "list[str]", "the User grants it added itself (the only ones it revokes)", output=True),
        Field("granted_managers", "list[str]", "the Manager grants it added itself", output=True),
        Field("account_id", "str", "the Databricks account the policy lives in", output=True),
        Field("rule_set_name", "str", "the policy's rule set", output=True),
    ],
    after_init="warn_if_authoritative",
)


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    """Validate and normalize inputs without any API call (``check()``)."""
    return SCHEMA.check(news)


# --- wire conversion: grants as sets -------------------------------------------------------------


def declared_grants(props: Mapping[str, Any]) -> Grants:
    return {role: set(props.get(field) or []) for field, role in ROLE_OF_FIELD.items()}


def grants_of(rule_set: RuleSetResponse) -> Grants:
    grants: Grants = {}
    for rule in rule_set.grant_rules or []:
        grants.setdefault(rule.role, set()).update(rule.principals or [])
    return grants


def with_grants(current: Grants, add: Grants, remove: Grants) -> Grants:
    result = {role: set(principals) for role, principals in current.items()}
    for role, principals in remove.items():
        result[role] = _without(result.get(role, set()), principals)
    for role, principals in add.items():
        result[role] = _plus(result.get(role, set()), principals)
    return _without_empty(result)


def missing_from(current: Grants, wanted: Grants) -> Grants:
    """The pairs of ``wanted`` that ``current`` does not hold (what a write adds)."""
    return {role: _without(principals, current.get(role, set())) for role, principals in wanted.items()}


def same_grants(a: Grants, b: Grants) -> bool:
    roles = set(a) | set(b)
    return all(_keys(a.get(role, set())) == _keys(b.get(role, set())) for role in roles)


def _without_empty(grants: Grants) -> Grants:
    return {role: principals for role, principals in grants.items() if principals}


def _fields_from(grants: Grants) -> dict[str, list[str]]:
    return {field: sorted(grants.get(role, set())) for field, role in ROLE_OF_FIELD.items()}


def _grant_rules(grants: Grants) -> list[GrantRule]:
    from databricks.sdk.service.iam import GrantRule

    return [GrantRule(role=role, principals=sorted(grants[role])) for role in sorted(grants) if grants[role]]


def owned_grants(outputs: Mapping[str, Any]) -> Grants:
    """The grants a resource manages, from its outputs (``declared_*``; older state: ``users``/``managers``)."""
    return {
        role: set(outputs.get(f"declared_{field}", outputs.get(field)) or []) for field, role in ROLE_OF_FIELD.items()
    }


def granted_grants(outputs: Mapping[str, Any]) -> Grants:
    """The pairs a resource added itself and may revoke (``granted_*``).  State written before
    they were recorded has only ``declared_*``: those are taken as granted, as they were then."""
    if all(outputs.get(f"granted_{field}") is None for field in ROLE_OF_FIELD):
        return owned_grants(outputs)
    return {role: set(outputs.get(f"granted_{field}") or []) for field, role in ROLE_OF_FIELD.items()}


def _outputs(
    props: Mapping[str, Any], account_id: str, seen: Grants, granted: Grants, owned: Grants | None = None
) -> dict[str, Any]:
    owned = owned if owned is not None else declared_grants(props)
    return {
        "policy_id": props["policy_id"],
        **_fields_from(seen),
        **{f"declared_{field}": sorted(owned.get(role, set())) for field, role in ROLE_OF_FIELD.items()},
        **{f"granted_{field}": sorted(granted.get(role, set())) for field, role in ROLE_OF_FIELD.items()},
        "authoritative": bool(props.get("authoritative")),
        "account_id": account_id,
        "rule_set_name": rule_set_name(account_id, props["policy_id"]),
    }


# --- provider ------------------------------------------------------------------------------------


class PolicyNotFound(Exception):
    pass


class BudgetPolicyGrantsProvider(DatabricksProvider):
    """Outputs ``users``/``managers`` are the grants seen on the rule set (all of them when
    authoritative, the declared ones still present when additive) so refresh shows drift;
    ``declared_users``/``declared_managers`` are what this resource manages, and
    ``granted_users``/``granted_managers`` the pairs it added itself, the only ones it revokes."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        return failures.result(inputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        return self.replace_if_account_moved(result, olds)

    def create(self, props: dict[str, Any]) -> CreateResult:
        account_id, granted = self._write_declared(props, previously_granted={}, account_id=None)
        return CreateResult(
            props["policy_id"], _outputs(props, account_id, seen=declared_grants(props), granted=granted)
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        account_id, granted = self._write_declared(news, granted_grants(olds), account_id=olds.get("account_id"))
        return UpdateResult(_outputs(news, account_id, seen=declared_grants(news), granted=granted))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        change: Callable[[Grants], Grants]
        if props.get("authoritative"):
            change = lambda current: {}  # noqa: E731 - authoritative owns the whole rule set
        else:
            granted = granted_grants(props)
            change = lambda current: with_grants(current, add={}, remove=granted)  # noqa: E731
        with contextlib.suppress(PolicyNotFound):  # gone already
            self._read_modify_write(props.get("account_id"), props["policy_id"], change)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        policy_id = props.get("policy_id") or id_
        client = self.account.client(props.get("account_id"))
        try:
            with databricks_errors("read", "grants of budget policy", policy_id, needs=POLICY_MANAGER):
                actual = grants_of(self._get_rule_set(client, policy_id))
        except PolicyNotFound:
            return gone()
        state = {**props, "policy_id": policy_id, "authoritative": bool(props.get("authoritative"))}
        owned = owned_grants(state)
        seen = (
            actual if state["authoritative"] else {role: _only(owned[role], actual.get(role, set())) for role in owned}
        )
        # A pair we added and someone removed is no longer ours to revoke.
        granted = {
            role: _only(principals, actual.get(role, set())) for role, principals in granted_grants(state).items()
        }
        outputs = _outputs(state, client.config.account_id, seen=seen, owned=owned, granted=granted)
        inputs = {k: outputs[k] for k in ("policy_id", "users", "managers", "authoritative")}
        return ReadResult(id_, outputs, inputs)

    # ---- rule set access ------------------------------------------------------------------

    def _write_declared(
        self, props: Mapping[str, Any], previously_granted: Grants, account_id: str | None
    ) -> tuple[str, Grants]:
        """Write the declared grants; returns the account and the pairs this resource now holds
        as its own grants (those it added, now or before)."""
        declared = declared_grants(props)
        change: Callable[[Grants], Grants]
        if props.get("authoritative"):
            change = lambda current: _without_empty(declared)  # noqa: E731
        else:
            released = {role: _without(previously_granted.get(role, set()), declared[role]) for role in declared}
            change = lambda current: with_grants(current, add=declared, remove=released)  # noqa: E731
        try:
            account_id, added = self._read_modify_write(account_id, props["policy_id"], change)
        except PolicyNotFound:
            raise api_error(
                "write",
                "grants of budget policy",
                props["policy_id"],
                f"no such budget policy in account {self.account.account_id}",
                "Check policy_id (or create the policy first).",
                error_class=DatabricksProviderError,
            ) from None
        if props.get("authoritative"):
            return account_id, declared  # it owns the whole rule set
        kept = {role: _only(previously_granted.get(role, set()), declared[role]) for role in declared}
        return account_id, {role: _plus(kept[role], _only(declared[role], added.get(role, set()))) for role in declared}

    def _read_modify_write(
        self, account_id: str | None, policy_id: str, change: Callable[[Grants], Grants]
    ) -> tuple[str, Grants]:
        """Apply ``change`` to the rule set; returns the account it lives in and the pairs added."""
        client = self.account.client(account_id)
        with databricks_errors("write", "grants of budget policy", policy_id, needs=POLICY_MANAGER):
            added = self._read_modify_write_attempts(client, policy_id, change)
        return client.config.account_id, added

    def _read_modify_write_attempts(
        self, client: AccountClient, policy_id: str, change: Callable[[Grants], Grants]
    ) -> Grants:
        from databricks.sdk.errors import ResourceConflict
        from databricks.sdk.service.iam import RuleSetUpdateRequest

        name = rule_set_name(client.config.account_id, policy_id)
        unsure: tuple[Grants, Grants] | None = None  # (written, added) of a write that may have landed
        for attempt in range(MAX_WRITE_ATTEMPTS):
            rule_set = self._get_rule_set(client, policy_id)
            current = _without_empty(grants_of(rule_set))
            if unsure is not None and same_grants(current, unsure[0]):
                # The SDK re-sent our write after losing its answer and met our own new etag:
                # the rule set is exactly what we wrote, so the pairs we added are ours.
                return unsure[1]
            wanted = change(current)
            if same_grants(wanted, current):
                return {}
            retries_before = sdk_retries(client)
            try:
                client.access_control.update_rule_set(
                    name=name,
                    rule_set=RuleSetUpdateRequest(name=name, etag=rule_set.etag, grant_rules=_grant_rules(wanted)),
                )
                return missing_from(current, wanted)
            except ResourceConflict:
                # Another writer came between our read and write -- or, if the SDK retried, our own
                # first attempt did (its answer lost).  Re-read and decide on what is there now.
                unsure = (wanted, missing_from(current, wanted)) if sdk_retries(client) > retries_before else None
                time.sleep(min(0.05 * 2**attempt, 1.0))
        raise api_error(
            "write",
            "grants of budget policy",
            policy_id,
            f"its rule set changed under us {MAX_WRITE_ATTEMPTS} times in a row; nothing was overwritten",
            "Run `pulumi up` again.",
            error_class=DatabricksProviderError,
        )

    @staticmethod
    def _get_rule_set(client: AccountClient, policy_id: str) -> RuleSetResponse:
        from databricks.sdk.errors import NotFound

        try:
            return client.access_control.get_rule_set(name=rule_set_name(client.config.account_id, policy_id), etag="")
        except NotFound:
            raise PolicyNotFound(policy_id) from None


# --- resource ------------------------------------------------------------------------------------


def authoritative_warning(resource_name: str) -> str:
    return (
        f"BudgetPolicyGrants {resource_name!r} is authoritative: its users and managers replace every grant on the "
        "policy, including the Manager grant Databricks gives the policy's creator. Unless the deploying identity "
        "is listed in managers or has the billing admin role, it loses access to the policy and to these grants."
    )


def warn_if_authoritative(resource: pulumi.Resource, resource_name: str, props: Mapping[str, Any]) -> None:
    if props["authoritative"] is not False:
        # Said at preview: the write that follows cannot tell who the deployer is.
        pulumi.log.warn(authoritative_warning(resource_name), resource=resource)


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class BudgetPolicyGrants(DynamicResource, module="mlbudgets", name="BudgetPolicyGrants"):
    """User and Manager grants on a serverless budget policy, additive (default) or authoritative."""

    policy_id: pulumi.Output[str]
    users: pulumi.Output[list[str]]
    managers: pulumi.Output[list[str]]
    authoritative: pulumi.Output[bool]
    declared_users: pulumi.Output[list[str]]
    declared_managers: pulumi.Output[list[str]]
    granted_users: pulumi.Output[list[str]]
    granted_managers: pulumi.Output[list[str]]
    account_id: pulumi.Output[str]
    rule_set_name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        policy_id: pulumi.Input[str],
        users: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        managers: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        authoritative: pulumi.Input[bool] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param policy_id: the budget policy (36 characters, e.g. a ServerlessBudgetPolicy's policy_id)
        :param users: principals given the **User** role (`roles/budgetPolicy.user`): they can pick the
            policy for notebooks, jobs, pipelines and serving endpoints
        :param managers: principals given the **Manager** role (`roles/budgetPolicy.manager`): they can also
            edit the policy and its permissions
        :param authoritative: `true`: the rule set becomes exactly `users` + `managers` (see below)
        """
        props = SCHEMA.props(
            {"policy_id": policy_id, "users": users, "managers": managers, "authoritative": authoritative}
        )
        DynamicResource.__init__(self, BudgetPolicyGrantsProvider(), resource_name, props, opts)
        warn_if_authoritative(self, resource_name, props)


# --- END generated from SCHEMA ---
