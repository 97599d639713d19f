"""The emulator as a server: host metadata, loud unknown routes, ``python -m emulator`` restarts."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

import pytest
import requests
from databricks.sdk import AccountClient
from databricks.sdk.core import Config
from databricks.sdk.errors import NotFound
from databricks.sdk.service.billing import BudgetPolicy
from databricks.sdk.service.compute import CustomPolicyTag
from databricks.sdk.service.iam import GrantRule, RuleSetUpdateRequest

from emulator import ROLE_MANAGER, ROLE_USER
from emulator.state import AccountState


def test_sdk_construction_reads_host_metadata_without_warnings(databricks_emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="databricks.sdk")
    # No account id given: the SDK must learn it from /.well-known/databricks-config, in one
    # request that succeeds (no retries, no fallbacks).
    config = Config(host=databricks_emulator.url, token="dapi-test", auth_type="pat")
    assert [(r["method"], r["path"], r["status"]) for r in databricks_emulator.requests] == [
        ("GET", "/.well-known/databricks-config", 200)
    ]
    assert config.account_id == databricks_emulator.account_id
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert databricks_emulator.requests[0]["path"] == "/.well-known/databricks-config"
    assert databricks_emulator.requests[0]["status"] == 200
    metadata = requests.get(f"{databricks_emulator.url}/.well-known/databricks-config", timeout=10).json()
    assert metadata == {
        "oidc_endpoint": f"{databricks_emulator.url}/oidc/accounts/{{account_id}}",
        "account_id": databricks_emulator.account_id,
    }
    # The client built from that metadata reaches the account API (list is lazy: consume it).
    assert list(AccountClient(config=config).budget_policy.list()) == []
    assert (
        databricks_emulator.requests[-1]["path"]
        == f"/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies"
    )
    assert databricks_emulator.requests[-1]["status"] == 200


def test_unknown_route_is_a_loud_endpoint_not_found(databricks_emulator, capfd):
    a = databricks_emulator.account_client()
    path = f"/api/2.0/accounts/{databricks_emulator.account_id}/budget-policies"  # wrong API version
    with pytest.raises(NotFound) as err:
        a.api_client.do("GET", path)
    assert err.value.error_code == "ENDPOINT_NOT_FOUND"
    assert f"GET {path}" in str(err.value)
    # A known path with a method it does not serve is just as loud.
    with pytest.raises(NotFound) as err:
        a.api_client.do("PUT", f"/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies/x", body={})
    assert err.value.error_code == "ENDPOINT_NOT_FOUND" and "PUT" in str(err.value)
    stderr = capfd.readouterr().err
    assert f"ENDPOINT_NOT_FOUND: no emulated API for GET {path}" in stderr
    assert databricks_emulator.unknown_routes == [
        f"GET {path}",
        f"PUT /api/2.1/accounts/{databricks_emulator.account_id}/budget-policies/x",
    ]
    assert databricks_emulator.count(status=404) == 2


def test_trailing_slash_is_not_silently_the_list_route(databricks_emulator):
    a = databricks_emulator.account_client()
    with pytest.raises(NotFound) as err:
        a.budget_policy.get("")  # GET .../budget-policies/ -- a bug in the caller, said loudly
    assert err.value.error_code == "ENDPOINT_NOT_FOUND"


def _populate(a, account_id):
    kept = a.budget_policy.create(
        policy=BudgetPolicy(
            policy_name="survivor", custom_tags=[CustomPolicyTag(key="team", value="ml")], binding_workspace_ids=[42]
        ),
        request_id="11111111-2222-3333-4444-555555555555",
    )
    gone = a.budget_policy.create(policy=BudgetPolicy(policy_name="deleted"))
    a.budget_policy.delete(gone.policy_id)
    name = f"accounts/{account_id}/budgetPolicies/{kept.policy_id}/ruleSets/default"
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    written = a.access_control.update_rule_set(
        name=name,
        rule_set=RuleSetUpdateRequest(
            name=name, etag=etag, grant_rules=[GrantRule(role=ROLE_USER, principals=["groups/ml"])]
        ),
    )
    return kept, name, written.etag


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_state_survives_a_restart_of_python_m_emulator(databricks_emulator_process, how):
    proc = databricks_emulator_process()
    a = proc.account_client()
    kept, name, etag = _populate(a, proc.account_id)
    url, account_id = proc.url, proc.account_id

    if how == "sigterm":
        assert proc.stop() == 0
    else:
        proc.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/health", timeout=2)
    proc.start()
    assert (proc.url, proc.account_id) == (url, account_id)

    a = proc.account_client()  # a new client, same URL
    assert [p.policy_name for p in a.budget_policy.list()] == ["survivor"]
    assert a.budget_policy.get(kept.policy_id) == kept
    rule_set = a.access_control.get_rule_set(name=name, etag="")
    assert rule_set.etag == etag and rule_set.grant_rules == [GrantRule(role=ROLE_USER, principals=["groups/ml"])]
    # Idempotency records survive too: replaying the create returns the same policy.
    replay = a.budget_policy.create(
        policy=BudgetPolicy(
            policy_name="survivor", custom_tags=[CustomPolicyTag(key="team", value="ml")], binding_workspace_ids=[42]
        ),
        request_id="11111111-2222-3333-4444-555555555555",
    )
    assert replay.policy_id == kept.policy_id
    # The deleted name is free, the kept one is not.
    a.budget_policy.create(policy=BudgetPolicy(policy_name="deleted"))
    # And the etag still guards writes after the restart.
    new = a.access_control.update_rule_set(
        name=name,
        rule_set=RuleSetUpdateRequest(
            name=name, etag=etag, grant_rules=[GrantRule(role=ROLE_MANAGER, principals=["users/a@example.com"])]
        ),
    )
    assert new.etag != etag
    assert proc.stderr_text().count("Traceback") == 0


def test_process_control_endpoints_and_loud_stderr(databricks_emulator_process):
    proc = databricks_emulator_process(creator_manager="users/creator@example.com")
    control = proc.control
    assert control.health()["status"] == "ok"
    a = proc.account_client()
    created = a.budget_policy.create(policy=BudgetPolicy(policy_name="remote"))
    name = f"accounts/{proc.account_id}/budgetPolicies/{created.policy_id}/ruleSets/default"
    assert a.access_control.get_rule_set(name=name, etag="").grant_rules == [
        GrantRule(role=ROLE_MANAGER, principals=["users/creator@example.com"])
    ]

    control.reset_requests()
    control.inject_fault("503", "GET", "/budget-policies", count=1)
    control.inject_fault("drop", "GET", "/budget-policies", count=1)
    assert [p.policy_id for p in a.budget_policy.list()] == [created.policy_id]
    assert [(r["status"], r["outcome"]) for r in control.requests] == [(503, "error"), (None, "dropped"), (200, "ok")]

    # Another writer, from another process, between our read and our write.
    etag = a.access_control.get_rule_set(name=name, etag="").etag
    assert control.add_grant(created.policy_id, ROLE_USER, "users/other@example.com") != etag

    with pytest.raises(NotFound):
        a.api_client.do("GET", "/api/2.0/no/such/route")
    deadline = time.monotonic() + 5
    while "GET /api/2.0/no/such/route" not in proc.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ENDPOINT_NOT_FOUND: no emulated API for GET /api/2.0/no/such/route" in proc.stderr_text()

    control.reset()
    assert list(a.budget_policy.list()) == []
    assert json.loads(Path(proc.state_path).read_text())["policies"] == []


def test_state_file_refuses_another_account(tmp_path):
    path = tmp_path / "state.json"
    first = AccountState("acct-1", path=str(path))
    first.create_policy({"policy_name": "p"}, None)
    assert AccountState(None, path=str(path)).account_id == "acct-1"
    assert len(AccountState("acct-1", path=str(path))) == 1
    with pytest.raises(ValueError, match="acct-1"):
        AccountState("acct-2", path=str(path))
    # Atomic snapshot writes leave no temporary files behind.
    assert sorted(os.listdir(tmp_path)) == ["state.json", "state.json.journal"]


def test_journal_replay_compaction_and_a_torn_last_line(tmp_path):
    path = str(tmp_path / "state.json")
    state = AccountState("acct", path=path)
    kept = state.create_policy({"policy_name": "kept", "custom_tags": [{"key": "k", "value": "v"}]}, str(uuid.uuid4()))
    renamed = state.create_policy({"policy_name": "old-name"}, None)
    state.update_policy(renamed["policy_id"], {"policy_name": "new-name"})
    gone = state.create_policy({"policy_name": "gone"}, None)
    state.delete_policy(gone["policy_id"])
    etag = state.add_grant(kept["policy_id"], "roles/budgetPolicy.user", "users/a@example.com")
    snapshot_before = json.loads(Path(path).read_text())
    assert snapshot_before["policies"] == []  # everything so far is in the journal only
    expected = state.snapshot()
    state.close()
    with open(path + ".journal", "ab") as journal:  # a crash in the middle of a write
        journal.write(b'{"op":"policy","policy":{"policy_id":"torn"')

    reloaded = AccountState(None, path=path)
    assert reloaded.snapshot()["policies"] == expected["policies"]
    assert reloaded.etag(kept["policy_id"]) == etag
    assert (
        reloaded.find_policy("old-name") is None
        and reloaded.find_policy("new-name")["policy_id"] == renamed["policy_id"]
    )
    assert reloaded.create_policy({"policy_name": "gone"}, None)  # the deleted name is free
    # Loading folded the journal into the snapshot.
    assert {p["policy_name"] for p in json.loads(Path(path).read_text())["policies"]} == {"kept", "new-name"}
    reloaded.reset()
    assert len(AccountState(None, path=path)) == 0


def test_journal_compacts_as_it_grows(tmp_path):
    path = str(tmp_path / "state.json")
    state = AccountState("acct", path=path)
    policy = state.create_policy({"policy_name": "busy"}, None)
    for i in range(1200):
        state.update_policy(policy["policy_id"], {"policy_name": f"busy-{i}"})
    assert os.path.getsize(path + ".journal") < 200 * 1000  # compacted at least once
    assert AccountState(None, path=path).get_policy(policy["policy_id"])["policy_name"] == "busy-1199"


def test_state_model_is_usable_without_http():
    state = AccountState("acct")
    created = state.create_policy(
        {"policy_name": "direct", "custom_tags": [{"key": "k", "value": "v"}]}, str(uuid.uuid4())
    )
    assert state.get_policy(created["policy_id"]) == created
    assert state.list_policies(page_size=10) == {"policies": [created]}
    rule_set = state.get_rule_set(state.rule_set_name(created["policy_id"]))
    assert set(rule_set) == {"name", "etag"}
