"""Test back doors of the emulated account: read it directly, and play another writer of a rule
set (a console user, another Pulumi stack) -- the races a provider must survive.  Not part of the
API Databricks serves; mixed into :class:`emulator.state.AccountState`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulator.budget_policies import PolicyStore
from emulator.journal import Journal
from emulator.rule_sets import RuleSetStore


class BackDoors:
    _journal: Journal
    _policies: PolicyStore
    _rule_sets: RuleSetStore

    def rule_set_name(self, policy_id: str) -> str:
        return self._rule_sets.name(policy_id)

    def policy_ids(self) -> list[str]:
        return self._policies.ids()

    def policies(self) -> list[dict[str, Any]]:
        """Every active policy (API form), sorted by name."""
        return self._policies.wire_all()

    def find_policy(self, policy_name: str) -> dict[str, Any] | None:
        return self._policies.find(policy_name)

    def __len__(self) -> int:
        with self._journal.lock:
            return len(self._policies)

    def grant_rules(self, policy_id: str) -> list[dict[str, Any]]:
        return self._rule_sets.grant_rules(policy_id)

    def etag(self, policy_id: str) -> str:
        return self._rule_sets.etag(policy_id)

    def set_grant_rules(self, policy_id: str, grant_rules: Iterable[dict[str, Any]]) -> str:
        """Another writer replaces the rule set (validated, new etag).  Returns the new etag."""
        return self._rule_sets.replace(policy_id, list(grant_rules))

    def add_grant(self, policy_id: str, role: str, principal: str) -> str:
        """Another writer grants ``role`` to ``principal`` (new etag).  Returns the new etag."""
        with self._journal.lock:
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
        with self._journal.lock:
            return self.set_grant_rules(policy_id, self.grant_rules(policy_id))
