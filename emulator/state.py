"""The emulated Databricks account: budget policies and their rule sets (state and operations).

Pure Python, no HTTP.  Every public method takes and returns the JSON shapes the REST API
carries (the databricks-sdk's ``as_dict()`` / ``from_dict()`` forms) and raises
:class:`emulator.errors.ApiError` with the status and ``error_code`` Databricks answers with.
All methods are thread-safe (one re-entrant lock).

What it accepts: :mod:`emulator.validation`; list paging: :mod:`emulator.paging`; persistence
(only with a ``path``): :mod:`emulator.persistence`, a snapshot and a journal, the journal folded
into a new snapshot when it grows past twice the number of policies (+1000 lines) and on load.
"""

from __future__ import annotations

import base64
import copy
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emulator import errors, paging
from emulator.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_page_token, encode_page_token
from emulator.persistence import StateFile
from emulator.validation import (
    BUDGET_POLICY_ROLES,
    OTHER_RESOURCE_RE,
    OTHER_RULE_SET_RE,
    POLICY_ID_PATH_RE,
    POLICY_NAME_MAX,
    RESOURCE_NAME_RE,
    ROLE_MANAGER,
    ROLE_USER,
    RULE_SET_FIELDS,
    RULE_SET_NAME_RE,
    check_principal,
    check_request_id,
    expect_object,
    validate_grant_rules,
    validate_policy_fields,
)

__all__ = ["AccountState", "BUDGET_POLICY_ROLES", "ROLE_MANAGER", "ROLE_USER", "rule_set_name", "new_etag"]
from emulator.budgets import BudgetStore
from emulator.permissions import CALLER, Permissions

STATE_FORMAT = "databricks-account-emulator/1"


def rule_set_name(account_id: str, policy_id: str) -> str:
    return f"accounts/{account_id}/budgetPolicies/{policy_id}/ruleSets/default"


def new_etag(version: int) -> str:
    """An opaque, base64 etag like Databricks' (``RENUAAAB...==``); new on every write."""
    return base64.b64encode(b"EMU\x01" + version.to_bytes(8, "big") + secrets.token_bytes(12)).decode("ascii")


@dataclass
class _Policy:
    policy_id: str
    policy_name: str
    custom_tags: list[dict[str, str]] = field(default_factory=list)
    binding_workspace_ids: list[int] = field(default_factory=list)
    creator_user_id: int = 0
    creator_user_name: str = ""
    create_time: float = 0.0

    def wire(self) -> dict[str, Any]:
        """The policy as the API returns it: empty lists dropped, like the SDK's ``as_dict()``."""
        body: dict[str, Any] = {"policy_id": self.policy_id, "policy_name": self.policy_name}
        if self.custom_tags:
            body["custom_tags"] = [dict(tag) for tag in self.custom_tags]
        if self.binding_workspace_ids:
            body["binding_workspace_ids"] = list(self.binding_workspace_ids)
        return body

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "policy_name": self.policy_name,
            "custom_tags": self.custom_tags,
            "binding_workspace_ids": self.binding_workspace_ids,
            "creator_user_id": self.creator_user_id,
            "creator_user_name": self.creator_user_name,
            "create_time": self.create_time,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Policy:
        return cls(
            policy_id=d["policy_id"],
            policy_name=d["policy_name"],
            custom_tags=[dict(t) for t in d.get("custom_tags") or []],
            binding_workspace_ids=[int(w) for w in d.get("binding_workspace_ids") or []],
            creator_user_id=int(d.get("creator_user_id") or 0),
            creator_user_name=d.get("creator_user_name") or "",
            create_time=float(d.get("create_time") or 0.0),
        )


@dataclass
class _RuleSet:
    version: int
    etag: str
    grant_rules: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "etag": self.etag, "grant_rules": self.grant_rules}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _RuleSet:
        return cls(version=int(d["version"]), etag=d["etag"], grant_rules=copy.deepcopy(d.get("grant_rules") or []))


class AccountState:
    """One Databricks account's budget policies and budget-policy rule sets.

    :param account_id: the account served; requests for any other account are refused (403).
    :param path: JSON file to persist to after every mutation, and to load from if it exists.
    :param creator_manager: who a new policy's rule set names as ``roles/budgetPolicy.manager``:
        ``"caller"`` (default) the principal whose token created it, as real Databricks does for a
        policy's creator; a principal such as ``users/admin@example.com``; or ``None`` (empty).
    :param permissions: the token -> principal map and the billing admins
        (:class:`emulator.permissions.Permissions`; default: every token is a billing admin).
    :param creator_user_name, creator_user_id: who the (single) token belongs to; recorded on
        created policies and matched by the list filter ``filter_by.creator_user_*``.
    :param omitted_lists: what PATCH does with a ``custom_tags`` / ``binding_workspace_ids`` list
        absent from the body (the SDK leaves empty lists out): ``"clear"`` (default) empties it,
        ``"keep"`` leaves it unchanged.  The API says every field must be given on update but not
        which of the two an absent list means, so both are modelled.
    :param lowercase_emails: store ``users/<email>`` principals in lower case, as other Databricks
        APIs answer emails (whether rule sets do is not documented): a client comparing principals
        as exact strings then sees drift that is not there.
    :param fsync: fsync the state file on every write (off by default: ``os.replace`` is atomic
        for a process restart; fsync only matters for a machine crash).
    """

    def __init__(
        self,
        account_id: str | None = None,
        *,
        path: str | None = None,
        creator_manager: str | None = CALLER,
        permissions: Permissions | None = None,
        creator_user_name: str = "emulator-user@example.com",
        creator_user_id: int = 4242424242424242,
        lowercase_emails: bool = False,
        omitted_lists: str = "clear",
        fsync: bool = False,
    ) -> None:
        if omitted_lists not in ("clear", "keep"):
            raise ValueError(f"omitted_lists must be 'clear' or 'keep', not {omitted_lists!r}")
        self.omitted_lists = omitted_lists
        self._lock = threading.RLock()
        self.lowercase_emails = lowercase_emails
        self.path = os.fspath(path) if path else None
        self._file = StateFile(self.path, fsync=fsync) if self.path else None
        self.creator_user_name = creator_user_name
        self.creator_user_id = creator_user_id
        if creator_manager not in (None, CALLER):
            check_principal(creator_manager)
        self.permissions = permissions or Permissions()
        self.creator_manager = creator_manager
        self._policies: dict[str, _Policy] = {}
        self._names: dict[str, str] = {}  # active policy name -> policy_id
        self._rule_sets: dict[str, _RuleSet] = {}  # policy_id -> rule set
        self._request_ids: dict[str, dict[str, Any]] = {}  # request_id -> {policy_id, fingerprint, response}
        self.budgets = BudgetStore(self)
        self._version = 0
        loaded_account = self._load() if self._file and self._file.exists() else None
        if account_id and loaded_account and account_id != loaded_account:
            raise ValueError(
                f"state file {self.path} belongs to account {loaded_account}, not {account_id}; "
                "use another --state file or drop --account-id"
            )
        self.account_id = account_id or loaded_account or str(uuid.uuid4())
        if self.path:
            self._write_snapshot()  # a new file, or the loaded snapshot with its journal folded in

    # ------------------------------------------------------------------ account

    def check_account(self, account_id: str) -> None:
        """Databricks answers a token that is not valid for the account in the path with 403."""
        if account_id != self.account_id:
            raise errors.permission_denied(
                f"You are not allowed to call this API: the caller is not a member of account {account_id}."
            )

    # ------------------------------------------------------------------ budget policies

    def create_policy(
        self, policy: dict[str, Any] | None, request_id: str | None = None, *, caller: str | None = None
    ) -> dict[str, Any]:
        """``POST /api/2.1/accounts/{account_id}/budget-policies`` with ``{policy, request_id}``."""
        if request_id is not None and request_id != "":
            check_request_id(request_id)
        else:
            request_id = None
        policy = expect_object(policy if policy is not None else {}, "policy")
        if policy.get("policy_id") not in (None, ""):
            raise errors.invalid(
                "policy.policy_id must be empty when creating a budget policy: it is generated by Databricks."
            )
        name, tags, workspaces = validate_policy_fields(policy, "policy.")
        fingerprint = paging.fingerprint(
            {"policy_name": name, "custom_tags": tags, "binding_workspace_ids": workspaces}
        )
        with self._lock:
            if request_id is not None and request_id in self._request_ids:
                seen = self._request_ids[request_id]
                if seen["fingerprint"] != fingerprint:
                    raise errors.invalid(
                        f"request_id {request_id} was already used to create a different budget policy "
                        f"({seen['policy_id']}); use a new request_id for a new policy."
                    )
                current = self._policies.get(seen["policy_id"])
                return current.wire() if current is not None else copy.deepcopy(seen["response"])
            self._check_name_free(name, None)
            policy_id = str(uuid.uuid4())
            while policy_id in self._policies:  # pragma: no cover - uuid4 collision
                policy_id = str(uuid.uuid4())
            created = _Policy(
                policy_id=policy_id,
                policy_name=name,
                custom_tags=tags,
                binding_workspace_ids=workspaces,
                creator_user_id=self.creator_user_id,
                creator_user_name=self.creator_user_name,
                create_time=time.time(),
            )
            self._policies[policy_id] = created
            self._names[name] = policy_id
            initial_rules = []
            creator = caller if self.creator_manager == CALLER else self.creator_manager
            if creator:
                initial_rules = [{"role": ROLE_MANAGER, "principals": [creator]}]
            self._rule_sets[policy_id] = self._new_rule_set(initial_rules)
            response = created.wire()
            if request_id is not None:
                self._request_ids[request_id] = {
                    "policy_id": policy_id,
                    "fingerprint": fingerprint,
                    "response": copy.deepcopy(response),
                }
            changes = [("policy", policy_id), ("rule_set", policy_id)]
            if request_id is not None:
                changes.append(("request", request_id))
            self._journal(*changes)
            return response

    def get_policy(self, policy_id: str, *, caller: str | None = None) -> dict[str, Any]:
        """``GET .../budget-policies/{policy_id}``."""
        with self._lock:
            found = self._policy(policy_id)
            self._authorize(policy_id, caller, (ROLE_MANAGER, ROLE_USER))
            return found.wire()

    def update_policy(
        self, policy_id: str, policy: dict[str, Any] | None, *, caller: str | None = None
    ) -> dict[str, Any]:
        """``PATCH .../budget-policies/{policy_id}``: the body is the whole policy (full replacement).

        The SDK sends ``policy.as_dict()``, which leaves out empty lists, so an absent
        ``custom_tags`` / ``binding_workspace_ids`` means "none" and clears them -- or, with
        ``omitted_lists="keep"``, leaves them as they were.
        """
        policy = expect_object(policy if policy is not None else {}, "policy")
        body_id = policy.get("policy_id")
        if body_id not in (None, "") and body_id != policy_id:
            raise errors.invalid(
                f"policy.policy_id {body_id!r} does not match the policy id in the path {policy_id!r}."
            )
        with self._lock:
            current = self._policy(policy_id)
            self._authorize(policy_id, caller)
            name, tags, workspaces = validate_policy_fields(policy, "policy.")
            self._check_name_free(name, policy_id)
            if current.policy_name != name:
                del self._names[current.policy_name]
                self._names[name] = policy_id
            current.policy_name = name
            if "custom_tags" in policy or self.omitted_lists == "clear":
                current.custom_tags = tags
            if "binding_workspace_ids" in policy or self.omitted_lists == "clear":
                current.binding_workspace_ids = workspaces
            self._journal(("policy", policy_id))
            return current.wire()

    def delete_policy(self, policy_id: str, *, caller: str | None = None) -> None:
        """``DELETE .../budget-policies/{policy_id}``: the policy, its name and its rule set go."""
        with self._lock:
            current = self._policy(policy_id)
            self._authorize(policy_id, caller)
            del self._policies[policy_id]
            self._names.pop(current.policy_name, None)
            self._rule_sets.pop(policy_id, None)
            self._journal(("delete", policy_id))

    def list_policies(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filter_policy_name: str | None = None,
        filter_creator_user_id: int | None = None,
        filter_creator_user_name: str | None = None,
        sort_field: str | None = None,
        sort_descending: bool = False,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """``GET .../budget-policies``: sorted by name, paged by an opaque ``page_token``.

        ``page_size`` unset or 0 means 100; above 1000 it is coerced to 1000 (as documented);
        negative is rejected.  Paging is by key (name, id) so pages stay consistent while
        policies are created or deleted between calls.  A page token only works with the same
        filter and sort as the call that produced it (documented), otherwise 400.
        """
        if page_size is None or page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 0:
            raise errors.invalid(f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {page_size}.")
        page_size = min(page_size, MAX_PAGE_SIZE)
        if sort_field not in (None, "", "POLICY_NAME"):
            raise errors.invalid(f"sort_spec.field {sort_field!r} is not supported; the only field is POLICY_NAME.")
        if filter_policy_name is not None and len(filter_policy_name) > POLICY_NAME_MAX:
            raise errors.invalid(f"filter_by.policy_name must be at most {POLICY_NAME_MAX} characters.")
        query_key = paging.fingerprint(
            {
                "n": filter_policy_name,
                "u": filter_creator_user_id,
                "un": filter_creator_user_name,
                "d": bool(sort_descending),
            }
        )
        after: tuple[str, str] | None = None
        if page_token:
            after = decode_page_token(page_token, query_key)
        with self._lock:
            items = [p for p in self._policies.values() if self._may_see(p.policy_id, caller)]
        if filter_policy_name:
            needle = filter_policy_name.lower()
            items = [p for p in items if needle in p.policy_name.lower()]
        if filter_creator_user_id is not None:
            items = [p for p in items if p.creator_user_id == filter_creator_user_id]
        if filter_creator_user_name:
            items = [p for p in items if p.creator_user_name == filter_creator_user_name]
        items.sort(key=lambda p: (p.policy_name, p.policy_id), reverse=bool(sort_descending))
        if after is not None:
            if sort_descending:
                items = [p for p in items if (p.policy_name, p.policy_id) < after]
            else:
                items = [p for p in items if (p.policy_name, p.policy_id) > after]
        page = items[:page_size]
        response: dict[str, Any] = {}
        if page:
            response["policies"] = [p.wire() for p in page]
        if len(items) > page_size:
            last = page[-1]
            response["next_page_token"] = encode_page_token((last.policy_name, last.policy_id), query_key)
        return response

    # ------------------------------------------------------------------ rule sets

    def get_rule_set(self, name: str | None, etag: str | None = None, *, caller: str | None = None) -> dict[str, Any]:
        """``GET /api/2.0/preview/accounts/{account_id}/access-control/rule-sets?name=&etag=``.

        The answer is always the latest version, which is "at least as fresh" as any etag given.
        """
        with self._lock:
            policy_id = self._rule_set_policy(name)
            self._authorize(policy_id, caller)
            return self._rule_set_wire(policy_id)

    def update_rule_set(
        self, name: str | None, rule_set: dict[str, Any] | None, *, caller: str | None = None
    ) -> dict[str, Any]:
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
        with self._lock:
            policy_id = self._rule_set_policy(name)
            self._authorize(policy_id, caller)
            grant_rules = self._as_stored(validate_grant_rules(rule_set.get("grant_rules"), name))
            current = self._rule_sets[policy_id]
            if etag != current.etag:
                raise errors.conflict("Conflict with another RuleSet operation")
            self._rule_sets[policy_id] = self._new_rule_set(grant_rules)
            self._journal(("rule_set", policy_id))
            return self._rule_set_wire(policy_id)

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
        with self._lock:
            self._check_resource_account(match.group("account"), resource)
            self._policy(match.group("policy"))
        return {"roles": [{"name": role} for role in BUDGET_POLICY_ROLES]}

    # ------------------------------------------------------------------ direct access for tests

    def rule_set_name(self, policy_id: str) -> str:
        return rule_set_name(self.account_id, policy_id)

    def policy_ids(self) -> list[str]:
        with self._lock:
            return list(self._policies)

    def policies(self) -> list[dict[str, Any]]:
        """Every active policy (API form), sorted by name."""
        with self._lock:
            return [p.wire() for p in sorted(self._policies.values(), key=lambda p: (p.policy_name, p.policy_id))]

    def find_policy(self, policy_name: str) -> dict[str, Any] | None:
        with self._lock:
            policy_id = self._names.get(policy_name)
            return self._policies[policy_id].wire() if policy_id else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._policies)

    def grant_rules(self, policy_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._rule_sets_of(policy_id).grant_rules)

    def etag(self, policy_id: str) -> str:
        with self._lock:
            return self._rule_sets_of(policy_id).etag

    def set_grant_rules(self, policy_id: str, grant_rules: Iterable[dict[str, Any]]) -> str:
        """Another writer replaces the rule set (validated, new etag).  Returns the new etag."""
        with self._lock:
            self._rule_sets_of(policy_id)
            rules = self._as_stored(validate_grant_rules(list(grant_rules), self.rule_set_name(policy_id)))
            self._rule_sets[policy_id] = self._new_rule_set(rules)
            self._journal(("rule_set", policy_id))
            return self._rule_sets[policy_id].etag

    def add_grant(self, policy_id: str, role: str, principal: str) -> str:
        """Another writer grants ``role`` to ``principal`` (new etag).  Returns the new etag."""
        with self._lock:
            rules = self.grant_rules(policy_id)
            for rule in rules:
                if rule["role"] == role:
                    rule.setdefault("principals", []).append(principal)
                    break
            else:
                rules.append({"role": role, "principals": [principal]})
            return self.set_grant_rules(policy_id, rules)

    def bump_etag(self, policy_id: str) -> str:
        """Another writer rewrote the rule set with the same rules: only the etag changes."""
        with self._lock:
            return self.set_grant_rules(policy_id, self.grant_rules(policy_id))

    def reset(self) -> None:
        """Forget every policy, rule set and request id (the account id stays)."""
        with self._lock:
            self._journal(("reset", None))  # so a crash before the new snapshot cannot resurrect
            self._clear()
            self._write_snapshot()

    def close(self) -> None:
        """Close the journal file (the state stays on disk)."""
        with self._lock:
            if self._file:
                self._file.close()

    def _clear(self) -> None:
        self._policies.clear()
        self._names.clear()
        self._rule_sets.clear()
        self._request_ids.clear()
        self.budgets.clear()

    def snapshot(self) -> dict[str, Any]:
        """The whole account as JSON-able data (what the state file holds)."""
        with self._lock:
            return {
                "format": STATE_FORMAT,
                "account_id": self.account_id,
                "version": self._version,
                "policies": [p.to_json() for p in self._policies.values()],
                "rule_sets": {pid: rs.to_json() for pid, rs in self._rule_sets.items()},
                "request_ids": self._request_ids,
                "budgets": self.budgets.to_json(),
            }

    # ------------------------------------------------------------------ internals

    def _policy(self, policy_id: Any) -> _Policy:  # as the request gave it: may be any JSON value
        if not isinstance(policy_id, str) or not POLICY_ID_PATH_RE.match(policy_id):
            raise errors.invalid(f"Invalid policy_id {policy_id!r}: expected 1 to 40 characters from [A-Za-z0-9_.-].")
        found = self._policies.get(policy_id)
        if found is None:
            raise errors.not_found(f"Budget policy {policy_id} does not exist.")
        return found

    def _holders(self, policy_id: str, roles: tuple[str, ...]) -> list[str]:
        rules = self._rule_sets[policy_id].grant_rules
        return [p for rule in rules if rule["role"] in roles for p in rule.get("principals", [])]

    def _authorize(self, policy_id: str, caller: str | None, roles: tuple[str, ...] = (ROLE_MANAGER,)) -> None:
        """403 unless the caller is a billing admin or holds one of ``roles`` on the policy."""
        self.permissions.require(caller, self._holders(policy_id, roles))

    def _may_see(self, policy_id: str, caller: str | None) -> bool:
        try:
            self._authorize(policy_id, caller, (ROLE_MANAGER, ROLE_USER))
        except errors.ApiError:
            return False
        return True

    def _rule_sets_of(self, policy_id: str) -> _RuleSet:
        self._policy(policy_id)
        return self._rule_sets[policy_id]

    def _check_name_free(self, name: str, own_id: str | None) -> None:
        holder = self._names.get(name)
        if holder is not None and holder != own_id:
            raise errors.already_exists(
                f"Duplicate policy name found. A budget policy named {name!r} already exists ({holder})."
            )

    def _check_resource_account(self, account: str, name: str) -> None:
        if account != self.account_id:
            raise errors.invalid(f"{name!r} names account {account}, but the request is for account {self.account_id}.")

    def _rule_set_policy(self, name: str | None) -> str:
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
        self._check_resource_account(match.group("account"), name)
        policy_id = match.group("policy")
        self._policy(policy_id)
        return policy_id

    def _as_stored(self, grant_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.lowercase_emails:
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

    def _rule_set_wire(self, policy_id: str) -> dict[str, Any]:
        rule_set = self._rule_sets[policy_id]
        body: dict[str, Any] = {"name": self.rule_set_name(policy_id), "etag": rule_set.etag}
        if rule_set.grant_rules:
            body["grant_rules"] = copy.deepcopy(rule_set.grant_rules)
        return body

    def _new_rule_set(self, grant_rules: list[dict[str, Any]]) -> _RuleSet:
        self._version += 1
        return _RuleSet(version=self._version, etag=new_etag(self._version), grant_rules=grant_rules)

    @property
    def writes(self) -> int:
        """Persistence writes so far (journal appends and snapshots)."""
        return self._file.writes if self._file else 0

    @property
    def journal_path(self) -> str | None:
        return self._file.journal_path if self._file else None

    def _journal(self, *changes: tuple[str, str | None]) -> None:
        """Append the changed objects to the journal (called with the lock held)."""
        if not self._file:
            return
        self._file.append([self._journal_record(kind, key) for kind, key in changes])
        if self._file.journal_lines > 2 * (len(self._policies) + len(self.budgets)) + 1000:
            self._write_snapshot()

    def _journal_record(self, kind: str, key: str | None) -> dict[str, Any]:
        if kind == "reset":
            return {"op": "reset"}
        assert key is not None, kind  # every other record names its object
        if kind == "policy":
            return {"op": "policy", "policy": self._policies[key].to_json()}
        if kind == "rule_set":
            return {"op": "rule_set", "policy_id": key, "rule_set": self._rule_sets[key].to_json()}
        if kind == "request":
            return {"op": "request", "request_id": key, "record": self._request_ids[key]}
        if kind == "delete":
            return {"op": "delete", "policy_id": key}
        if kind == "budget":
            return {"op": "budget", "budget": self.budgets.to_json_one(key)}
        if kind == "budget_delete":
            return {"op": "budget_delete", "budget_id": key}
        raise AssertionError(kind)  # pragma: no cover

    def _write_snapshot(self) -> None:
        if self._file:
            self._file.write_snapshot(self.snapshot())

    def _load(self) -> str:
        assert self._file is not None  # loading is reading the state file
        data, records = self._file.read()
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"{self.path} is not a Databricks account emulator state file ({STATE_FORMAT})")
        self._version = int(data.get("version") or 0)
        for raw in data.get("policies") or []:
            self._apply({"op": "policy", "policy": raw})
        for policy_id, raw in (data.get("rule_sets") or {}).items():
            self._apply({"op": "rule_set", "policy_id": policy_id, "rule_set": raw})
        self._request_ids = dict(data.get("request_ids") or {})
        for raw in data.get("budgets") or []:
            self._apply({"op": "budget", "budget": raw})
        for record in records:
            self._apply(record)
        for policy_id in self._policies:
            if policy_id not in self._rule_sets:
                self._rule_sets[policy_id] = self._new_rule_set([])
        return data["account_id"]

    def _apply(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "policy":
            policy = _Policy.from_json(record["policy"])
            previous = self._policies.get(policy.policy_id)
            if previous is not None:
                self._names.pop(previous.policy_name, None)
            self._policies[policy.policy_id] = policy
            self._names[policy.policy_name] = policy.policy_id
        elif op == "rule_set":
            if record["policy_id"] in self._policies:
                rule_set = _RuleSet.from_json(record["rule_set"])
                self._rule_sets[record["policy_id"]] = rule_set
                self._version = max(self._version, rule_set.version)
        elif op == "request":
            self._request_ids[record["request_id"]] = record["record"]
        elif op == "delete":
            deleted = self._policies.pop(record["policy_id"], None)
            if deleted is not None:
                self._names.pop(deleted.policy_name, None)
            self._rule_sets.pop(record["policy_id"], None)
        elif op == "budget":
            self.budgets.load(record["budget"])
        elif op == "budget_delete":
            self.budgets.forget(record["budget_id"])
        elif op == "reset":
            self._clear()
        else:
            raise ValueError(f"unknown journal record {op!r}")
