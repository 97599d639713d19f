"""Budget-policy rule sets (``access_control``): who holds which role on a policy, with etags.

Every budget policy has exactly one rule set, ``accounts/{a}/budgetPolicies/{id}/ruleSets/default``,
made with the policy and deleted with it (by :class:`emulator.budget_policies.PolicyStore`, the only
writer of that pair), so a policy exists exactly when its rule set does: the rule set lookup is
also the policy lookup of the rule-set API and of the permission checks.

Codec: a rule set is stored and journaled as ``{"version", "etag", "grant_rules"}`` under its
policy id (journal record ``{"op": "rule_set", "policy_id", "rule_set"}``); ``version`` counts
every rule set write of the account, so each new etag is unique.
"""

from __future__ import annotations

import base64
import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from emulator import errors
from emulator.journal import Journal, Record
from emulator.permissions import Permissions
from emulator.validation import (
    BUDGET_POLICY_ROLES,
    OTHER_RESOURCE_RE,
    OTHER_RULE_SET_RE,
    RESOURCE_NAME_RE,
    ROLE_MANAGER,
    RULE_SET_FIELDS,
    RULE_SET_NAME_RE,
    check_policy_id,
    expect_object,
    validate_grant_rules,
)


def rule_set_name(account_id: str, policy_id: str) -> str:
    return f"accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def new_etag(version: int) -> str:
    """An opaque, base64 etag like Databricks' (``RENUAAAB...==``); new on every write."""
    return base64.b64encode(b"EMU\x01" + version.to_bytes(8, "big") + secrets.token_bytes(12)).decode("ascii")


def missing_policy(policy_id: str) -> errors.ApiError:
    return errors.not_found(f"Budget policy {policy_id} does not exist.")


@dataclass
class RuleSet:
    version: int
    etag: str
    grant_rules: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "etag": self.etag, "grant_rules": self.grant_rules}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RuleSet:
        return cls(version=int(d["version"]), etag=d["etag"], grant_rules=copy.deepcopy(d.get("grant_rules") or []))


class RuleSetStore:
    """The rule sets of one account's budget policies.

    :param lowercase_emails: store ``users/<email>`` principals in lower case (see AccountState).
    """

    def __init__(self, journal: Journal, account_id: str, permissions: Permissions, *, lowercase_emails: bool) -> None:
        self._journal = journal
        self._account_id = account_id
        self._permissions = permissions
        self._lowercase_emails = lowercase_emails
        self._rule_sets: dict[str, RuleSet] = {}  # policy_id -> rule set
        self.version = 0  # of the newest rule set

    # ------------------------------------------------------------------ API

    def get(self, name: str | None, *, caller: str | None) -> dict[str, Any]:
        """``GET /api/2.0/preview/accounts/{account_id}/access-control/rule-sets?name=&etag=``.

        The answer is always the latest version, which is "at least as fresh" as any etag given.
        """
        with self._journal.lock:
            policy_id = self._policy_of(name)
            self.authorize(policy_id, caller)
            return self._wire(policy_id)

    def update(self, name: str | None, rule_set: dict[str, Any] | None, *, caller: str | None) -> dict[str, Any]:
        """``PUT .../access-control/rule-sets`` with ``{name, rule_set: {name, etag, grant_rules}}``.

        Replaces every grant rule.  The etag must be the current one, otherwise 409
        RESOURCE_CONFLICT "Conflict with another RuleSet operation" (what Databricks answers and
        what the Terraform provider matches on); the SDK does not retry it.
        """
        if not name:
            raise errors.invalid("name is required.")
        if rule_set is None:
            raise errors.invalid("rule_set is required.")
        rule_set = expect_object(rule_set, "rule_set")
        unknown = sorted(set(rule_set) - RULE_SET_FIELDS)
        if unknown:
            raise errors.invalid(f"Unknown field(s) in rule_set: {', '.join(unknown)}.")
        if rule_set.get("name") not in (None, name):
            raise errors.invalid(f"rule_set.name {rule_set.get('name')!r} does not match the rule set name {name!r}.")
        etag = rule_set.get("etag")
        if not isinstance(etag, str) or not etag:
            raise errors.invalid(
                "rule_set.etag is required: read the rule set first and send the etag it returned "
                "(an empty etag is only allowed on GET)."
            )
        with self._journal.lock:
            policy_id = self._policy_of(name)
            self.authorize(policy_id, caller)
            grant_rules = self._as_stored(validate_grant_rules(rule_set.get("grant_rules"), name))
            if etag != self._rule_sets[policy_id].etag:
                raise errors.conflict("Conflict with another RuleSet operation")
            self._replace(policy_id, grant_rules)
            return self._wire(policy_id)

    def assignable_roles(self, resource: str | None) -> dict[str, Any]:
        """``GET .../access-control/assignable-roles?resource=accounts/{a}/budgetPolicies/{id}``."""
        if not resource:
            raise errors.invalid("resource is required.")
        match = RESOURCE_NAME_RE.match(resource)
        if not match:
            if OTHER_RESOURCE_RE.match(resource):
                raise errors.not_implemented(
                    f"The Databricks account emulator only models budget policy resources, not {resource!r}."
                )
            raise errors.invalid(f"Invalid resource name {resource!r}.")
        with self._journal.lock:
            self._check_account(match.group("account"), resource)
            self.require(match.group("policy"))
        return {"roles": [{"name": role} for role in BUDGET_POLICY_ROLES]}

    # ------------------------------------------------------------------ for policies and back doors

    def name(self, policy_id: str) -> str:
        return rule_set_name(self._account_id, policy_id)

    def require(self, policy_id: Any) -> RuleSet:
        """The rule set of an existing policy: 400 for a malformed id, 404 for no such policy."""
        found = self._rule_sets.get(check_policy_id(policy_id))
        if found is None:
            raise missing_policy(policy_id)
        return found

    def authorize(self, policy_id: str, caller: str | None, roles: tuple[str, ...] = (ROLE_MANAGER,)) -> None:
        """403 unless the caller is a billing admin or holds one of ``roles`` on the policy."""
        rules = self._rule_sets[policy_id].grant_rules
        self._permissions.require(
            caller, [p for rule in rules if rule["role"] in roles for p in rule.get("principals", [])]
        )

    def create(self, policy_id: str, grant_rules: list[dict[str, Any]]) -> None:
        """The rule set of a new policy (journaled by the caller, with the policy)."""
        self._rule_sets[policy_id] = self._new(grant_rules)

    def forget(self, policy_id: str) -> None:
        self._rule_sets.pop(policy_id, None)

    def replace(self, policy_id: str, grant_rules: list[dict[str, Any]]) -> str:
        """Another writer replaces a rule set (validated, new etag).  Returns the new etag."""
        with self._journal.lock:
            self.require(policy_id)
            rules = self._as_stored(validate_grant_rules(grant_rules, self.name(policy_id)))
            return self._replace(policy_id, rules)

    def grant_rules(self, policy_id: str) -> list[dict[str, Any]]:
        with self._journal.lock:
            return copy.deepcopy(self.require(policy_id).grant_rules)

    def etag(self, policy_id: str) -> str:
        with self._journal.lock:
            return self.require(policy_id).etag

    # ------------------------------------------------------------------ codec

    def record(self, policy_id: str) -> Record:
        return {"op": "rule_set", "policy_id": policy_id, "rule_set": self._rule_sets[policy_id].to_json()}

    def apply(self, record: Record) -> None:
        """Load a ``rule_set`` record (of a policy the caller knows exists)."""
        rule_set = RuleSet.from_json(record["rule_set"])
        self._rule_sets[record["policy_id"]] = rule_set
        self.version = max(self.version, rule_set.version)

    def to_json(self) -> dict[str, Any]:
        return {policy_id: rule_set.to_json() for policy_id, rule_set in self._rule_sets.items()}

    def ensure(self, policy_ids: list[str]) -> None:
        """Give an empty rule set to every policy loaded without one."""
        for policy_id in policy_ids:
            if policy_id not in self._rule_sets:
                self._rule_sets[policy_id] = self._new([])

    def clear(self) -> None:
        self._rule_sets.clear()

    # ------------------------------------------------------------------ internals

    def _policy_of(self, name: str | None) -> str:
        if not name:
            raise errors.invalid("name is required: accounts/<account_id>/budgetPolicies/<policy_id>/ruleSets/default.")
        match = RULE_SET_NAME_RE.match(name)
        if not match:
            if OTHER_RULE_SET_RE.match(name):
                raise errors.not_implemented(
                    f"The Databricks account emulator only models budget policy rule sets "
                    f"(accounts/<account_id>/budgetPolicies/<policy_id>/ruleSets/default), not {name!r}."
                )
            raise errors.invalid(f"Invalid rule set name {name!r}.")
        self._check_account(match.group("account"), name)
        policy_id = match.group("policy")
        self.require(policy_id)
        return policy_id

    def _check_account(self, account: str, name: str) -> None:
        if account != self._account_id:
            raise errors.invalid(
                f"{name!r} names account {account}, but the request is for account {self._account_id}."
            )

    def _as_stored(self, grant_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self._lowercase_emails:
            return grant_rules
        stored = []
        for rule in grant_rules:
            principals: list[str] = []
            for principal in rule["principals"]:
                principal = principal.lower() if principal.startswith("users/") else principal
                if principal not in principals:
                    principals.append(principal)
            stored.append({"role": rule["role"], "principals": principals})
        return stored

    def _replace(self, policy_id: str, grant_rules: list[dict[str, Any]]) -> str:
        self._rule_sets[policy_id] = self._new(grant_rules)
        self._journal.write(self.record(policy_id))
        return self._rule_sets[policy_id].etag

    def _new(self, grant_rules: list[dict[str, Any]]) -> RuleSet:
        self.version += 1
        return RuleSet(version=self.version, etag=new_etag(self.version), grant_rules=grant_rules)

    def _wire(self, policy_id: str) -> dict[str, Any]:
        rule_set = self._rule_sets[policy_id]
        body: dict[str, Any] = {"name": self.name(policy_id), "etag": rule_set.etag}
        if rule_set.grant_rules:
            body["grant_rules"] = copy.deepcopy(rule_set.grant_rules)
        return body
