"""``BudgetPolicyGrants``: who may use (User) and manage (Manager) a serverless budget policy.

The grants live in the policy's account rule set
``accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default``.  Databricks replaces a rule
set as a whole and guards it with an etag, so every write here is read-modify-write, retried on
409 ``RESOURCE_CONFLICT`` with a fresh read: a grant written concurrently by someone else is
never overwritten, and ours always lands.

* additive (default): the resource owns only the (principal, role) pairs it declares;
* authoritative: the rule set is exactly what is declared (like pulumi-databricks
  ``AccessControlRuleSet``); refresh reports any other grant as drift, and delete empties it.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, UpdateResult

from providers._base import DynamicResource, Failures, api_error, check_fields, diff_result, gone, is_unknown
from providers._databricks import DatabricksProvider, DatabricksProviderError, databricks_errors

# --- constants -----------------------------------------------------------------------------------


USER_ROLE = "roles/budgetPolicy.user"
MANAGER_ROLE = "roles/budgetPolicy.manager"
ROLE_OF_FIELD = {"users": USER_ROLE, "managers": MANAGER_ROLE}

PRINCIPAL_EXAMPLES = (
    "users/alice@example.com, groups/data-science, "
    "servicePrincipals/9f0c6a52-3c2e-4f5b-8a43-0a6d9e2b1c7d"
)
_PRINCIPAL_PATTERNS = (
    re.compile(r"users/[^\s@]+@[^\s@/]+"),
    re.compile(r"groups/\S(.*\S)?", re.DOTALL),
    re.compile(r"servicePrincipals/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
)
POLICY_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{36}")
MAX_WRITE_ATTEMPTS = 8

Grants = dict[str, set[str]]  # role -> principals


def rule_set_name(account_id: str, policy_id: str) -> str:
    return f"accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def is_valid_principal(principal: Any) -> bool:
    return isinstance(principal, str) and any(p.fullmatch(principal) for p in _PRINCIPAL_PATTERNS)


# --- field validators ----------------------------------------------------------------------------


def validate_policy_id(policy_id: Any, failures: Failures, prop: str = "policy_id") -> Any:
    if not (isinstance(policy_id, str) and POLICY_ID_PATTERN.fullmatch(policy_id)):
        failures.add(prop, f"{policy_id!r} is not a budget policy id (36 characters, e.g. a ServerlessBudgetPolicy's policy_id)")
    return policy_id


def validate_principals(principals: Any, failures: Failures, prop: str) -> Optional[list[str]]:
    if principals is None:
        return []
    if isinstance(principals, str) or not isinstance(principals, Sequence):
        failures.add(prop, f"must be a list of principals, e.g. [{PRINCIPAL_EXAMPLES}]")
        return None
    invalid = [p for p in principals if not is_unknown(p) and not is_valid_principal(p)]
    for principal in invalid:
        failures.add(prop, f"{principal!r} is not a principal; write principals as Databricks does: {PRINCIPAL_EXAMPLES}")
    if invalid:
        return None
    if any(is_unknown(p) for p in principals):
        return list(principals)  # preview: some principals are outputs not known yet
    return sorted(set(principals))


def validate_authoritative(authoritative: Any, failures: Failures, prop: str = "authoritative") -> Any:
    if authoritative is None:
        return False
    if not isinstance(authoritative, bool):
        failures.add(prop, f"must be true or false, not {authoritative!r}")
    return authoritative


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    """Validate and normalize inputs without any API call (``check()``)."""
    return check_fields(
        news,
        {"policy_id": validate_policy_id, **dict.fromkeys(ROLE_OF_FIELD, validate_principals),
         "authoritative": validate_authoritative},
    )


# --- wire conversion: grants as sets -------------------------------------------------------------


def declared_grants(props: Mapping[str, Any]) -> Grants:
    return {role: set(props.get(field) or []) for field, role in ROLE_OF_FIELD.items()}


def grants_of(rule_set) -> Grants:
    grants: Grants = {}
    for rule in rule_set.grant_rules or []:
        grants.setdefault(rule.role, set()).update(rule.principals or [])
    return grants


def with_grants(current: Grants, add: Grants, remove: Grants) -> Grants:
    result = {role: set(principals) for role, principals in current.items()}
    for role, principals in remove.items():
        result[role] = result.get(role, set()) - principals
    for role, principals in add.items():
        result[role] = result.get(role, set()) | principals
    return _without_empty(result)


def _without_empty(grants: Grants) -> Grants:
    return {role: principals for role, principals in grants.items() if principals}


def _fields_from(grants: Grants) -> dict[str, list[str]]:
    return {field: sorted(grants.get(role, set())) for field, role in ROLE_OF_FIELD.items()}


def _grant_rules(grants: Grants):
    from databricks.sdk.service.iam import GrantRule

    return [GrantRule(role=role, principals=sorted(grants[role])) for role in sorted(grants) if grants[role]]


def owned_grants(outputs: Mapping[str, Any]) -> Grants:
    """The grants a resource owns, from its outputs (``declared_*``; older state: ``users``/``managers``)."""
    return {
        role: set(outputs.get(f"declared_{field}", outputs.get(field)) or [])
        for field, role in ROLE_OF_FIELD.items()
    }


def _outputs(props: Mapping[str, Any], account_id: str, seen: Grants, owned: Optional[Grants] = None) -> dict[str, Any]:
    owned = owned if owned is not None else declared_grants(props)
    return {
        "policy_id": props["policy_id"],
        **_fields_from(seen),
        **{f"declared_{field}": sorted(owned.get(role, set())) for field, role in ROLE_OF_FIELD.items()},
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
    ``declared_users``/``declared_managers`` are what this resource owns and may release."""

    def check(self, _olds, news):
        inputs, failures = check_inputs(news)
        return failures.result(inputs)

    def diff(self, _id, olds, news) -> DiffResult:
        result = diff_result(olds, news, in_place=("users", "managers", "authoritative"), replace=("policy_id",))
        return self.replace_if_account_moved(result, olds)

    def create(self, props) -> CreateResult:
        account_id = self._write_declared(props, previously_owned=None, account_id=None)
        return CreateResult(props["policy_id"], _outputs(props, account_id, seen=declared_grants(props)))

    def update(self, _id, olds, news) -> UpdateResult:
        account_id = self._write_declared(news, previously_owned=owned_grants(olds), account_id=olds.get("account_id"))
        return UpdateResult(_outputs(news, account_id, seen=declared_grants(news)))

    def delete(self, _id, props) -> None:
        if props.get("authoritative"):
            change = lambda current: {}  # noqa: E731 - authoritative owns the whole rule set
        else:
            owned = owned_grants(props)
            change = lambda current: with_grants(current, add={}, remove=owned)  # noqa: E731
        try:
            self._read_modify_write(props.get("account_id"), props["policy_id"], change)
        except PolicyNotFound:
            pass  # gone already

    def read(self, id_, props) -> ReadResult:
        policy_id = props.get("policy_id") or id_
        client = self.account.client(props.get("account_id"))
        try:
            with databricks_errors("read", "grants of budget policy", policy_id):
                actual = grants_of(self._get_rule_set(client, policy_id))
        except PolicyNotFound:
            return gone()
        state = {**props, "policy_id": policy_id, "authoritative": bool(props.get("authoritative"))}
        owned = owned_grants(state)
        seen = actual if state["authoritative"] else {role: owned[role] & actual.get(role, set()) for role in owned}
        outputs = _outputs(state, client.config.account_id, seen=seen, owned=owned)
        inputs = {k: outputs[k] for k in ("policy_id", "users", "managers", "authoritative")}
        return ReadResult(id_, outputs, inputs)

    # ---- rule set access ------------------------------------------------------------------

    def _write_declared(self, props, previously_owned: Optional[Grants], account_id: Optional[str]) -> str:
        declared = declared_grants(props)
        if props.get("authoritative"):
            change = lambda current: _without_empty(declared)  # noqa: E731
        else:
            old = previously_owned or {}
            released = {role: old.get(role, set()) - declared[role] for role in declared}
            change = lambda current: with_grants(current, add=declared, remove=released)  # noqa: E731
        try:
            return self._read_modify_write(account_id, props["policy_id"], change)
        except PolicyNotFound:
            raise api_error(
                "write", "grants of budget policy", props["policy_id"],
                f"no such budget policy in account {self.account.account_id}",
                "Check policy_id (or create the policy first).", error_class=DatabricksProviderError,
            ) from None

    def _read_modify_write(self, account_id: Optional[str], policy_id: str, change: Callable[[Grants], Grants]) -> str:
        """Apply ``change`` to the rule set; returns the account it lives in."""
        client = self.account.client(account_id)
        with databricks_errors("write", "grants of budget policy", policy_id):
            self._read_modify_write_attempts(client, policy_id, change)
        return client.config.account_id

    def _read_modify_write_attempts(self, client, policy_id: str, change: Callable[[Grants], Grants]) -> None:
        from databricks.sdk.errors import ResourceConflict
        from databricks.sdk.service.iam import RuleSetUpdateRequest

        name = rule_set_name(client.config.account_id, policy_id)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            rule_set = self._get_rule_set(client, policy_id)
            current = _without_empty(grants_of(rule_set))
            wanted = change(current)
            if wanted == current:
                return
            try:
                client.access_control.update_rule_set(
                    name=name,
                    rule_set=RuleSetUpdateRequest(name=name, etag=rule_set.etag, grant_rules=_grant_rules(wanted)),
                )
                return
            except ResourceConflict:
                time.sleep(min(0.05 * 2**attempt, 1.0))
        raise api_error(
            "write", "grants of budget policy", policy_id,
            f"its rule set changed under us {MAX_WRITE_ATTEMPTS} times in a row; nothing was overwritten",
            "Run `pulumi up` again.", error_class=DatabricksProviderError,
        )

    @staticmethod
    def _get_rule_set(client, policy_id: str):
        from databricks.sdk.errors import NotFound

        try:
            return client.access_control.get_rule_set(name=rule_set_name(client.config.account_id, policy_id), etag="")
        except NotFound:
            raise PolicyNotFound(policy_id) from None


# --- resource ------------------------------------------------------------------------------------


class BudgetPolicyGrants(DynamicResource, module="mlbudgets", name="BudgetPolicyGrants"):
    """User and Manager grants on a serverless budget policy, additive (default) or authoritative."""

    policy_id: pulumi.Output[str]
    users: pulumi.Output[list]
    managers: pulumi.Output[list]
    declared_users: pulumi.Output[list]
    declared_managers: pulumi.Output[list]
    authoritative: pulumi.Output[bool]
    account_id: pulumi.Output[str]
    rule_set_name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        policy_id: pulumi.Input[str],
        users: Optional[pulumi.Input[Sequence[pulumi.Input[str]]]] = None,
        managers: Optional[pulumi.Input[Sequence[pulumi.Input[str]]]] = None,
        authoritative: Optional[pulumi.Input[bool]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        props = {
            "policy_id": policy_id,
            "users": users or [],
            "managers": managers or [],
            "authoritative": authoritative if authoritative is not None else False,
            "declared_users": None,
            "declared_managers": None,
            "account_id": None,
            "rule_set_name": None,
        }
        super().__init__(BudgetPolicyGrantsProvider(), resource_name, props, opts)
