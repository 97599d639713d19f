"""Writes the state files in this folder: run once with the emulator of ml-budgets 0.2.0 (commit
b372c52, before the stores were split), so test_emulator_legacy_state.py can check that later code
still loads what that code wrote.  ``python -m tests.emulator.legacy_state.make``.

* ``full.json`` + ``full.json.journal``: a snapshot holding policies, rule sets, a request id and
  budgets, and a journal with every other kind of record (policy, rule_set, request, delete,
  budget, budget_delete).
* ``reset.json`` + ``reset.json.journal``: a journal with a ``reset`` record in the middle, as a
  crash between the reset's journal line and its new snapshot leaves it.
* ``*.expected.json``: ``AccountState(path=...).snapshot()`` of each, as that code loaded it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from emulator.persistence import StateFile
from emulator.state import AccountState

HERE = os.path.dirname(os.path.abspath(__file__))
REQUEST_1 = "5f0c6f1e-0b6a-4f57-9a43-2b1f3c2d9e01"
REQUEST_2 = "5f0c6f1e-0b6a-4f57-9a43-2b1f3c2d9e02"
ADMIN = "users/admin@example.com"


def _budget(name: str, threshold: str) -> dict:
    return {
        "budget": {
            "display_name": name,
            "resource_type": "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY",
            "include_external_spend": True,
            "filter": {"workspace_id": {"operator": "IN", "values": [1234567890]}},
            "alert_configurations": [
                {
                    "time_period": "MONTH",
                    "trigger_type": "CUMULATIVE_SPENDING_EXCEEDED",
                    "quantity_type": "LIST_PRICE_DOLLARS_USD",
                    "quantity_threshold": threshold,
                    "action_configurations": [
                        {"action_type": "EMAIL_NOTIFICATION", "target": "fin@example.com"},
                        {"action_type": "BLOCK_USAGE"},
                    ],
                },
                {
                    "time_period": "MONTH",
                    "trigger_type": "CUMULATIVE_SPENDING_EXCEEDED",
                    "quantity_type": "LIST_PRICE_DOLLARS_USD",
                    "quantity_threshold": "5",
                    "scope_type": "ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER",
                    "action_configurations": [{"action_type": "BLOCK_USAGE"}],
                    "principal_overrides": [{"principal_id": 77, "override_threshold": "9"}],
                },
            ],
        }
    }


def _full(path: str) -> None:
    first = AccountState("acct-legacy", path=path, creator_manager=ADMIN)
    kept = first.create_policy({"policy_name": "kept", "custom_tags": [{"key": "team", "value": "ml"}]}, REQUEST_1)
    first.add_grant(kept["policy_id"], "roles/budgetPolicy.user", "users/reader@example.com")
    old_budget = first.budgets.create(_budget("in-snapshot", "100"))["budget"]
    first.budgets.add_usage(old_budget["budget_configuration_id"], "12.5", principal_id=77)
    first.close()
    second = AccountState(None, path=path, creator_manager=ADMIN)  # folds the journal into the snapshot
    renamed = second.create_policy({"policy_name": "old-name", "binding_workspace_ids": [42]}, REQUEST_2)
    second.update_policy(renamed["policy_id"], {"policy_name": "new-name", "binding_workspace_ids": [42, 43]})
    gone = second.create_policy({"policy_name": "gone"}, None)
    second.delete_policy(gone["policy_id"])
    second.add_grant(kept["policy_id"], "roles/budgetPolicy.manager", "groups/finance")
    rule_set = second.get_rule_set(second.rule_set_name(renamed["policy_id"]))
    second.update_rule_set(
        rule_set["name"],
        {
            "name": rule_set["name"],
            "etag": rule_set["etag"],
            "grant_rules": [{"role": "roles/budgetPolicy.user", "principals": ["users/b@example.com"]}],
        },
    )
    budget_id = old_budget["budget_configuration_id"]
    changed = _budget("renamed-in-journal", "150")
    changed["budget"]["alert_configurations"][0]["alert_configuration_id"] = old_budget["alert_configurations"][0][
        "alert_configuration_id"
    ]
    second.budgets.update(budget_id, changed)
    second.budgets.add_usage(budget_id, "3.25", external=True)
    new_budget = second.budgets.create(_budget("journal-only", "40"))["budget"]
    second.budgets.reorder(new_budget["budget_configuration_id"])
    doomed = second.budgets.create(_budget("deleted", "10"))["budget"]
    second.budgets.delete(doomed["budget_configuration_id"])
    second.close()


def _reset(path: str) -> None:
    state = AccountState("acct-reset", path=path)
    state.create_policy({"policy_name": "before-reset"}, None)
    state.budgets.create(_budget("before-reset", "100"))
    write_snapshot = StateFile.write_snapshot
    StateFile.write_snapshot = lambda self, snapshot: None  # the crash: the reset is journaled, not its snapshot
    try:
        state.reset()
    finally:
        StateFile.write_snapshot = write_snapshot
    state.create_policy({"policy_name": "after-reset"}, None)
    state.close()


def main() -> None:
    for name, write in (("full", _full), ("reset", _reset)):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "state.json")
            write(path)
            shutil.copy(path, os.path.join(HERE, f"{name}.json"))
            shutil.copy(path + ".journal", os.path.join(HERE, f"{name}.json.journal"))
            loaded = AccountState(None, path=path).snapshot()
        with open(os.path.join(HERE, f"{name}.expected.json"), "w", encoding="utf-8") as handle:
            json.dump(loaded, handle, indent=1, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
