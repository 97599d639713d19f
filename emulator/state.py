"""The emulated Databricks account: its stores, their one lock and journal, and its state file.

Pure Python, no HTTP.  Every public method takes and returns the JSON shapes the REST API
carries (the databricks-sdk's ``as_dict()`` / ``from_dict()`` forms) and raises
:class:`emulator.errors.ApiError` with the status and ``error_code`` Databricks answers with.
All methods are thread-safe (one re-entrant lock, :class:`emulator.journal.Journal`).

The stores, one per kind of object, each with its codec: :mod:`emulator.budget_policies`,
:mod:`emulator.rule_sets`, :mod:`emulator.budgets`; test back doors: :mod:`emulator.back_doors`.
This module owns what they share: the lock and journal, and the state file's layout (only with a
``path``: :mod:`emulator.persistence`, a snapshot and a journal, folded into a new snapshot on
load and as the journal grows).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from emulator import errors
from emulator.back_doors import BackDoors
from emulator.budget_policies import Creator, PolicyStore
from emulator.budgets import BudgetStore
from emulator.journal import Journal, Record
from emulator.permissions import CALLER, Permissions
from emulator.persistence import StateFile
from emulator.rule_sets import RuleSetStore, new_etag, rule_set_name
from emulator.validation import BUDGET_POLICY_ROLES, ROLE_MANAGER, ROLE_USER, check_principal

__all__ = ["AccountState", "BUDGET_POLICY_ROLES", "ROLE_MANAGER", "ROLE_USER", "rule_set_name", "new_etag"]

STATE_FORMAT = "databricks-account-emulator/1"


class AccountState(BackDoors):
    """One Databricks account's budget policies, budget-policy rule sets and budgets.

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
        if creator_manager not in (None, CALLER):
            check_principal(creator_manager)
        self.path = os.fspath(path) if path else None
        file = StateFile(self.path, fsync=fsync) if self.path else None
        saved, records = self._read(file) if file and file.exists() else (None, [])
        loaded_account = saved["account_id"] if saved else None
        if account_id and loaded_account and account_id != loaded_account:
            raise ValueError(
                f"state file {self.path} belongs to account {loaded_account}, not {account_id}; "
                "use another --state file or drop --account-id"
            )
        self._account_id: str = account_id or loaded_account or str(uuid.uuid4())
        self._creator_user_id = creator_user_id
        self._permissions = permissions or Permissions()
        self._journal = Journal(file, snapshot=self.snapshot, size=self._size)
        self._rule_sets = RuleSetStore(
            self._journal, self._account_id, self._permissions, lowercase_emails=lowercase_emails
        )
        self._policies = PolicyStore(
            self._journal,
            self._rule_sets,
            Creator(creator_user_id, creator_user_name, creator_manager),
            omitted_lists=omitted_lists,
        )
        self.budgets = BudgetStore(self._journal, self._account_id, creator_user_id)
        if saved is not None:
            self._load(saved, records)
        self._journal.write_snapshot()  # a new file, or the loaded snapshot with its journal folded in

    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def creator_user_id(self) -> int:
        """The user id of the token's principal: the caller of budget spend statuses."""
        return self._creator_user_id

    @property
    def permissions(self) -> Permissions:
        return self._permissions

    def check_account(self, account_id: str) -> None:
        """Databricks answers a token that is not valid for the account in the path with 403."""
        if account_id != self._account_id:
            raise errors.permission_denied(
                f"You are not allowed to call this API: the caller is not a member of account {account_id}."
            )

    # ------------------------------------------------------------------ budget policies

    def create_policy(
        self, policy: dict[str, Any] | None, request_id: str | None = None, *, caller: str | None = None
    ) -> dict[str, Any]:
        """``POST /api/2.1/accounts/{account_id}/budget-policies`` with ``{policy, request_id}``."""
        return self._policies.create(policy, request_id, caller=caller)

    def get_policy(self, policy_id: str, *, caller: str | None = None) -> dict[str, Any]:
        """``GET .../budget-policies/{policy_id}``."""
        return self._policies.get(policy_id, caller=caller)

    def update_policy(
        self, policy_id: str, policy: dict[str, Any] | None, *, caller: str | None = None
    ) -> dict[str, Any]:
        """``PATCH .../budget-policies/{policy_id}``: the body is the whole policy (full replacement)."""
        return self._policies.update(policy_id, policy, caller=caller)

    def delete_policy(self, policy_id: str, *, caller: str | None = None) -> None:
        """``DELETE .../budget-policies/{policy_id}``: the policy, its name and its rule set go."""
        self._policies.delete(policy_id, caller=caller)

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
        """``GET .../budget-policies``: sorted by name, paged by an opaque ``page_token``."""
        return self._policies.list(
            page_size=page_size,
            page_token=page_token,
            filter_policy_name=filter_policy_name,
            filter_creator_user_id=filter_creator_user_id,
            filter_creator_user_name=filter_creator_user_name,
            sort_field=sort_field,
            sort_descending=sort_descending,
            caller=caller,
        )

    # ------------------------------------------------------------------ rule sets

    def get_rule_set(self, name: str | None, etag: str | None = None, *, caller: str | None = None) -> dict[str, Any]:
        """``GET .../access-control/rule-sets?name=&etag=``: always the latest version."""
        return self._rule_sets.get(name, caller=caller)

    def update_rule_set(
        self, name: str | None, rule_set: dict[str, Any] | None, *, caller: str | None = None
    ) -> dict[str, Any]:
        """``PUT .../access-control/rule-sets``: replaces every grant rule; a stale etag is 409."""
        return self._rule_sets.update(name, rule_set, caller=caller)

    def assignable_roles(self, resource: str | None) -> dict[str, Any]:
        """``GET .../access-control/assignable-roles?resource=accounts/{a}/budgetPolicies/{id}``."""
        return self._rule_sets.assignable_roles(resource)

    # ------------------------------------------------------------------ the state file

    def snapshot(self) -> dict[str, Any]:
        """The whole account as JSON-able data (what the state file holds)."""
        with self._journal.lock:
            return {
                "format": STATE_FORMAT,
                "account_id": self._account_id,
                "version": self._rule_sets.version,
                "policies": self._policies.to_json(),
                "rule_sets": self._rule_sets.to_json(),
                "request_ids": self._policies.request_ids_to_json(),
                "budgets": self.budgets.to_json(),
            }

    def reset(self) -> None:
        """Forget every policy, rule set, request id and budget (the account id stays)."""
        with self._journal.lock:
            self._journal.write({"op": "reset"})  # so a crash before the new snapshot cannot resurrect
            self._clear()
            self._journal.write_snapshot()

    def close(self) -> None:
        """Close the journal file (the state stays on disk)."""
        with self._journal.lock:
            self._journal.close()

    @property
    def writes(self) -> int:
        """Persistence writes so far (journal appends and snapshots)."""
        return self._journal.writes

    @property
    def journal_path(self) -> str | None:
        return self._journal.path

    def _size(self) -> int:
        return len(self._policies) + len(self.budgets)

    def _clear(self) -> None:
        self._policies.clear()
        self._rule_sets.clear()
        self.budgets.clear()

    def _read(self, file: StateFile) -> tuple[dict[str, Any], list[Record]]:
        saved, records = file.read()
        if saved.get("format") != STATE_FORMAT:
            raise ValueError(f"{self.path} is not a Databricks account emulator state file ({STATE_FORMAT})")
        return saved, records

    def _load(self, saved: dict[str, Any], records: list[Record]) -> None:
        """The snapshot's objects, then the journal's records after it."""
        self._rule_sets.version = int(saved.get("version") or 0)
        for raw in saved.get("policies") or []:
            self._apply({"op": "policy", "policy": raw})
        for policy_id, raw in (saved.get("rule_sets") or {}).items():
            self._apply({"op": "rule_set", "policy_id": policy_id, "rule_set": raw})
        self._policies.load_request_ids(saved.get("request_ids") or {})
        for raw in saved.get("budgets") or []:
            self._apply({"op": "budget", "budget": raw})
        for record in records:
            self._apply(record)
        self._rule_sets.ensure(self._policies.ids())

    def _apply(self, record: Record) -> None:
        op = record["op"]
        if op in ("policy", "request", "delete"):
            self._policies.apply(record)
        elif op == "rule_set":
            if record["policy_id"] in self._policies:  # a rule set lives only with its policy
                self._rule_sets.apply(record)
        elif op in ("budget", "budget_delete"):
            self.budgets.apply(record)
        elif op == "reset":
            self._clear()
        else:
            raise ValueError(f"unknown journal record {op!r}")
