"""State files written by the 0.2.0 emulator (tests/emulator/legacy_state, made by its make.py with
that code) still load, answer and are written back in the same format."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from emulator.state import AccountState
from tests.emulator.legacy_state import make

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LEGACY = Path(__file__).parent / "legacy_state"


def _copy(name: str, tmp_path: Path) -> str:
    path = tmp_path / "state.json"
    shutil.copy(LEGACY / f"{name}.json", path)
    shutil.copy(LEGACY / f"{name}.json.journal", str(path) + ".journal")
    return str(path)


def _expected(name: str) -> dict[str, Any]:
    return json.loads((LEGACY / f"{name}.expected.json").read_text())


@pytest.mark.parametrize("name", ["full", "reset"])
def test_a_state_file_of_0_2_0_loads_to_what_0_2_0_loaded(name, tmp_path):
    path = _copy(name, tmp_path)
    state = AccountState(None, path=path)
    assert state.snapshot() == _expected(name)
    # Loading folded the journal into a snapshot of the same format.
    assert json.loads(Path(path).read_text()) == _expected(name)
    assert Path(path + ".journal").read_bytes() == b""
    state.close()


def test_a_loaded_0_2_0_state_answers_like_the_account_it_was(tmp_path):
    expected = _expected("full")
    state = AccountState(None, path=_copy("full", tmp_path))
    kept = state.find_policy("kept")
    assert kept is not None and state.etag(kept["policy_id"]) == expected["rule_sets"][kept["policy_id"]]["etag"]
    assert state.grant_rules(kept["policy_id"]) == [
        {"role": "roles/budgetPolicy.manager", "principals": [make.ADMIN, "groups/finance"]},
        {"role": "roles/budgetPolicy.user", "principals": ["users/reader@example.com"]},
    ]
    renamed = state.find_policy("new-name")
    assert renamed is not None and renamed["binding_workspace_ids"] == [42, 43]
    assert state.find_policy("old-name") is None and state.find_policy("gone") is None
    # A replayed request id answers the policy it made, as it is now.
    assert state.create_policy({"policy_name": "old-name", "binding_workspace_ids": [42]}, make.REQUEST_2) == renamed
    assert state.create_policy({"policy_name": "gone"}, None)["policy_name"] == "gone"  # the name was freed
    budgets = {b["display_name"]: b for b in expected["budgets"]}
    assert state.budgets.ids() == sorted(b["budget_configuration_id"] for b in expected["budgets"])
    old = state.budgets.get(budgets["renamed-in-journal"]["budget_configuration_id"])["budget"]
    assert old["alert_configurations"][0]["quantity_threshold"] == "150"
    # New rule set versions continue after the loaded ones: the next etag is a new one.
    before = state.etag(kept["policy_id"])
    assert state.bump_etag(kept["policy_id"]) != before
    state.close()


def _shape(value: Any) -> Any:
    """The structure of a journal record: keys, list lengths and value types, not the ids and times
    (lists as sorted shapes: actions are kept in the order of their random ids)."""
    if isinstance(value, dict):
        return {_ID.sub("<id>", key): (item if key == "op" else _shape(item)) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_shape(item) for item in value), key=lambda shape: json.dumps(shape, sort_keys=True))
    return type(value).__name__


@pytest.mark.parametrize("name", ["full", "reset"])
def test_the_same_calls_write_the_same_records_as_0_2_0(name, tmp_path):
    path = str(tmp_path / "state.json")
    {"full": make._full, "reset": make._reset}[name](path)
    for written, legacy in (
        (Path(path + ".journal"), LEGACY / f"{name}.json.journal"),
        (Path(path), LEGACY / f"{name}.json"),
    ):
        records = [json.loads(line) for line in written.read_text().splitlines()]
        legacy_records = [json.loads(line) for line in legacy.read_text().splitlines()]
        assert [_shape(r) for r in records] == [_shape(r) for r in legacy_records]
