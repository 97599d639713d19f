"""Budget policies: the real databricks-sdk ``AccountClient.budget_policy`` against the emulator."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
import requests
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service.billing import BudgetPolicy, Filter, SortSpec, SortSpecField
from databricks.sdk.service.compute import CustomPolicyTag


def _policy(name: str, tags: dict[str, str] | None = None, workspaces: list[int] | None = None) -> BudgetPolicy:
    return BudgetPolicy(
        policy_name=name,
        custom_tags=[CustomPolicyTag(key=k, value=v) for k, v in (tags or {}).items()] or None,
        binding_workspace_ids=workspaces,
    )


def test_full_round_trip_create_get_list_update_delete(databricks_emulator):
    a = databricks_emulator.account_client()
    created = a.budget_policy.create(
        policy=_policy("ml-team-a", {"team": "a", "cost-center": "cc-1"}, [1001, 1002]),
        request_id=str(uuid.uuid4()),
    )
    assert len(created.policy_id) == 36 and uuid.UUID(created.policy_id)
    assert created.policy_name == "ml-team-a"
    assert [(t.key, t.value) for t in created.custom_tags] == [("team", "a"), ("cost-center", "cc-1")]
    assert created.binding_workspace_ids == [1001, 1002]

    fetched = a.budget_policy.get(created.policy_id)
    assert fetched == created
    assert [p.policy_id for p in a.budget_policy.list()] == [created.policy_id]

    # Update is a full replacement: what is not sent is gone (as_dict() drops empty lists).
    updated = a.budget_policy.update(
        created.policy_id, BudgetPolicy(policy_id=created.policy_id, policy_name="ml-team-a-renamed")
    )
    assert updated.policy_name == "ml-team-a-renamed"
    assert not updated.custom_tags and not updated.binding_workspace_ids
    again = a.budget_policy.get(created.policy_id)
    assert again.policy_name == "ml-team-a-renamed" and not again.custom_tags and not again.binding_workspace_ids

    a.budget_policy.delete(created.policy_id)
    with pytest.raises(NotFound):
        a.budget_policy.get(created.policy_id)
    assert list(a.budget_policy.list()) == []
    assert len(databricks_emulator.state) == 0


def test_wire_format_matches_what_the_sdk_sends(databricks_emulator):
    """The emulator's paths are exactly the SDK's, and PATCH carries the bare policy as body."""
    a = databricks_emulator.account_client()
    account = databricks_emulator.account_id
    databricks_emulator.reset_requests()
    created = a.budget_policy.create(policy=_policy("wire", {"k": "v"}), request_id="0" * 36)
    a.budget_policy.update(created.policy_id, _policy("wire-2", {"k": "v2"}, [7]))
    a.budget_policy.delete(created.policy_id)
    log = databricks_emulator.requests
    assert [(r["method"], r["path"]) for r in log] == [
        ("POST", f"/api/2.1/accounts/{account}/budget-policies"),
        ("PATCH", f"/api/2.1/accounts/{account}/budget-policies/{created.policy_id}"),
        ("DELETE", f"/api/2.1/accounts/{account}/budget-policies/{created.policy_id}"),
    ]
    assert log[0]["body"] == {
        "policy": {"policy_name": "wire", "custom_tags": [{"key": "k", "value": "v"}]},
        "request_id": "0" * 36,
    }
    assert log[1]["body"] == {
        "policy_name": "wire-2",
        "custom_tags": [{"key": "k", "value": "v2"}],
        "binding_workspace_ids": [7],
    }
    assert log[1]["query"] == {}
    assert all(r["status"] == 200 for r in log)


def test_responses_drop_empty_lists_like_as_dict(databricks_emulator):
    a = databricks_emulator.account_client()
    created = a.budget_policy.create(policy=_policy("bare"))
    raw = requests.get(
        f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies/{created.policy_id}",
        headers={"Authorization": "Bearer dapi-x"},
        timeout=10,
    ).json()
    assert raw == {"policy_id": created.policy_id, "policy_name": "bare"}
    listing = requests.get(
        f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies",
        params={"filter_by.policy_name": "no-such"},
        headers={"Authorization": "Bearer dapi-x"},
        timeout=10,
    ).json()
    assert listing == {}


def test_list_pages_sorted_by_name(databricks_emulator):
    a = databricks_emulator.account_client()
    names = [f"policy-{i:02d}" for i in range(11)]
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    for name in shuffled:
        a.budget_policy.create(policy=_policy(name))
    databricks_emulator.reset_requests()

    listed = [p.policy_name for p in a.budget_policy.list(page_size=4)]
    assert listed == names
    pages = [r for r in databricks_emulator.requests if r["method"] == "GET"]
    assert len(pages) == 3  # 4 + 4 + 3
    assert "page_token" not in pages[0]["query"]
    assert pages[1]["query"]["page_token"] and pages[2]["query"]["page_token"]
    assert all(p["query"]["page_size"] == "4" for p in pages)

    descending = [
        p.policy_name
        for p in a.budget_policy.list(page_size=5, sort_spec=SortSpec(field=SortSpecField.POLICY_NAME, descending=True))
    ]
    assert descending == names[::-1]
    filtered = [p.policy_name for p in a.budget_policy.list(filter_by=Filter(policy_name="icy-0"))]
    assert filtered == names[:10]


def test_list_paging_is_stable_when_policies_change_between_pages(databricks_emulator):
    a = databricks_emulator.account_client()
    for name in ["b", "d", "f", "h"]:
        a.budget_policy.create(policy=_policy(name))
    seen = []
    for policy in a.budget_policy.list(page_size=2):
        seen.append(policy.policy_name)
        if policy.policy_name == "d":  # page 1 done: insert before and after the cursor
            a.budget_policy.create(policy=_policy("a"))
            a.budget_policy.create(policy=_policy("e"))
    assert seen == ["b", "d", "e", "f", "h"]


def test_list_page_size_limits(databricks_emulator):
    a = databricks_emulator.account_client()
    for i in range(3):
        a.budget_policy.create(policy=_policy(f"p{i}"))
    with pytest.raises(InvalidParameterValue) as err:
        list(a.budget_policy.list(page_size=-1))
    assert "page_size" in str(err.value)
    # Documented: values above 1000 are coerced to 1000 (not rejected).
    assert len(list(a.budget_policy.list(page_size=5000))) == 3


def test_page_token_must_come_with_the_same_filter(databricks_emulator):
    a = databricks_emulator.account_client()
    for i in range(3):
        a.budget_policy.create(policy=_policy(f"p{i}"))
    base = f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies"
    auth = {"Authorization": "Bearer dapi-x"}
    first = requests.get(base, params={"page_size": 1}, headers=auth, timeout=10).json()
    token = first["next_page_token"]
    ok = requests.get(base, params={"page_size": 1, "page_token": token}, headers=auth, timeout=10)
    assert ok.status_code == 200 and ok.json()["policies"][0]["policy_name"] == "p1"
    other = requests.get(
        base, params={"page_size": 1, "page_token": token, "filter_by.policy_name": "p"}, headers=auth, timeout=10
    )
    assert other.status_code == 400 and other.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    garbage = requests.get(base, params={"page_token": "not-a-token"}, headers=auth, timeout=10)
    assert garbage.status_code == 400


def test_create_is_idempotent_per_request_id(databricks_emulator):
    a = databricks_emulator.account_client()
    request_id = str(uuid.uuid4())
    first = a.budget_policy.create(policy=_policy("idem", {"t": "1"}), request_id=request_id)
    second = a.budget_policy.create(policy=_policy("idem", {"t": "1"}), request_id=request_id)
    assert second == first
    assert len(databricks_emulator.state) == 1
    # A new request id is a new create: the name is taken now.
    with pytest.raises(ResourceAlreadyExists):
        a.budget_policy.create(policy=_policy("idem", {"t": "1"}), request_id=str(uuid.uuid4()))
    # Re-using a request id for a different policy is refused, loudly.
    with pytest.raises(InvalidParameterValue) as err:
        a.budget_policy.create(policy=_policy("something-else"), request_id=request_id)
    assert request_id in str(err.value)
    assert len(databricks_emulator.state) == 1


def test_idempotent_replay_returns_current_policy_after_update(databricks_emulator):
    a = databricks_emulator.account_client()
    request_id = str(uuid.uuid4())
    created = a.budget_policy.create(policy=_policy("before"), request_id=request_id)
    a.budget_policy.update(created.policy_id, _policy("after"))
    replay = a.budget_policy.create(policy=_policy("before"), request_id=request_id)
    assert replay.policy_id == created.policy_id and replay.policy_name == "after"
    assert len(databricks_emulator.state) == 1


LATIN1_OK = "Café Zürich ñ ÿ"

REJECTED_CREATES = [
    pytest.param(BudgetPolicy(policy_name=""), "policy_name is required", id="empty-name"),
    pytest.param(BudgetPolicy(), "policy_name is required", id="no-name"),
    pytest.param(_policy("x" * 128), "between 1 and 127", id="name-128-chars"),
    pytest.param(_policy("コスト"), "ISO 8859-1", id="name-not-latin1"),
    pytest.param(_policy("budget €"), "ISO 8859-1", id="name-euro-sign-not-latin1"),
    pytest.param(_policy("databricks:default-policy-x"), "reserved", id="name-reserved-prefix"),
    pytest.param(_policy("t", {f"k{i}": "v" for i in range(21)}), "at most 20", id="21-tags"),
    pytest.param(_policy("t", {"": "v"}), "key is required", id="empty-tag-key"),
    pytest.param(_policy("t", {"k" * 513: "v"}), "512", id="tag-key-513"),
    pytest.param(_policy("t", {"k": "v" * 257}), "256", id="tag-value-257"),
    pytest.param(_policy("t", {"budget-policy-name": "v"}), "reserved", id="reserved-tag-name"),
    pytest.param(_policy("t", {"budget-policy-id": "v"}), "reserved", id="reserved-tag-id"),
    pytest.param(
        _policy("t", {"budget-policy-resolution-result": "v"}), "reserved", id="reserved-tag-resolution-result"
    ),
    pytest.param(
        BudgetPolicy(
            policy_name="t", custom_tags=[CustomPolicyTag(key="a", value="1"), CustomPolicyTag(key="a", value="2")]
        ),
        "duplicated",
        id="duplicate-tag-key",
    ),
    pytest.param(BudgetPolicy(policy_name="t", binding_workspace_ids=["abc"]), "integer", id="workspace-not-int"),
    pytest.param(BudgetPolicy(policy_name="t", binding_workspace_ids=[0]), "positive", id="workspace-zero"),
    pytest.param(BudgetPolicy(policy_name="t", policy_id=str(uuid.uuid4())), "generated", id="policy-id-on-create"),
]


@pytest.mark.parametrize("policy, message", REJECTED_CREATES)
def test_create_rejects_invalid_policy(databricks_emulator, policy, message):
    a = databricks_emulator.account_client()
    with pytest.raises(InvalidParameterValue) as err:
        a.budget_policy.create(policy=policy)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in str(err.value)
    assert len(databricks_emulator.state) == 0


ACCEPTED_LIMITS = [
    pytest.param(_policy("x" * 127), id="name-127-chars"),
    pytest.param(_policy(LATIN1_OK), id="name-latin1"),
    pytest.param(_policy("my databricks:default-policy"), id="reserved-word-not-at-start"),
    pytest.param(_policy("t", {f"k{i}": "v" for i in range(20)}), id="20-tags"),
    pytest.param(_policy("t", {"k" * 512: "v" * 256}), id="tag-key-512-value-256"),
    pytest.param(BudgetPolicy(policy_name="t", custom_tags=[CustomPolicyTag(key="only-key")]), id="tag-without-value"),
    pytest.param(_policy("t", workspaces=[2**63 - 1]), id="workspace-int64-max"),
]


@pytest.mark.parametrize("policy", ACCEPTED_LIMITS)
def test_create_accepts_values_at_the_limits(databricks_emulator, policy):
    a = databricks_emulator.account_client()
    created = a.budget_policy.create(policy=policy)
    fetched = a.budget_policy.get(created.policy_id)
    assert fetched.policy_id == created.policy_id
    assert fetched.policy_name == policy.policy_name
    assert (fetched.custom_tags or []) == (policy.custom_tags or [])
    assert (fetched.binding_workspace_ids or []) == (policy.binding_workspace_ids or [])


@pytest.mark.parametrize("request_id", ["short", "x" * 37, "é" * 36, "0" * 35 + "é"])
def test_create_rejects_bad_request_id(databricks_emulator, request_id):
    a = databricks_emulator.account_client()
    with pytest.raises(InvalidParameterValue) as err:
        a.budget_policy.create(policy=_policy("p"), request_id=request_id)
    assert "36 ASCII characters" in str(err.value)
    assert len(databricks_emulator.state) == 0


def test_duplicate_active_name_is_409_until_the_holder_is_deleted(databricks_emulator):
    a = databricks_emulator.account_client()
    holder = a.budget_policy.create(policy=_policy("shared-name"))
    with pytest.raises(ResourceAlreadyExists) as err:
        a.budget_policy.create(policy=_policy("shared-name"))
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "Duplicate policy name" in str(err.value) and holder.policy_id in str(err.value)
    other = a.budget_policy.create(policy=_policy("other"))
    with pytest.raises(ResourceAlreadyExists):
        a.budget_policy.update(other.policy_id, _policy("shared-name"))
    # Renaming a policy to its own name, and taking a name freed by a delete, are fine.
    a.budget_policy.update(holder.policy_id, _policy("shared-name", {"k": "v"}))
    a.budget_policy.delete(holder.policy_id)
    assert a.budget_policy.update(other.policy_id, _policy("shared-name")).policy_name == "shared-name"


def test_update_validates_like_create(databricks_emulator):
    a = databricks_emulator.account_client()
    created = a.budget_policy.create(policy=_policy("valid", {"k": "v"}))
    with pytest.raises(InvalidParameterValue):
        a.budget_policy.update(created.policy_id, _policy("t", {"budget-policy-id": "x"}))
    with pytest.raises(InvalidParameterValue):
        a.budget_policy.update(created.policy_id, BudgetPolicy())  # name must be sent: full replacement
    with pytest.raises(InvalidParameterValue) as err:
        a.budget_policy.update(created.policy_id, BudgetPolicy(policy_id=str(uuid.uuid4()), policy_name="valid"))
    assert "does not match" in str(err.value)
    assert a.budget_policy.get(created.policy_id) == created  # nothing changed


def test_missing_policy_is_404_resource_does_not_exist(databricks_emulator):
    a = databricks_emulator.account_client()
    missing = str(uuid.uuid4())
    for call in (
        lambda: a.budget_policy.get(missing),
        lambda: a.budget_policy.delete(missing),
        lambda: a.budget_policy.update(missing, _policy("x")),
    ):
        with pytest.raises(ResourceDoesNotExist) as err:
            call()
        assert isinstance(err.value, NotFound)
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST" and missing in str(err.value)
    with pytest.raises(InvalidParameterValue):
        a.budget_policy.get("not a valid id!")
    with pytest.raises(InvalidParameterValue):
        a.budget_policy.get("x" * 41)


def test_unknown_account_is_permission_denied(databricks_emulator):
    other = databricks_emulator.account_client()
    other.api_client._cfg.account_id = str(uuid.uuid4())  # same host, someone else's account
    with pytest.raises(PermissionDenied) as err:
        list(other.budget_policy.list())
    assert err.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(PermissionDenied):
        other.access_control.get_rule_set(
            name=f"accounts/{other.config.account_id}/budgetPolicies/x/ruleSets/default", etag=""
        )


def test_requests_without_credentials_are_401(databricks_emulator):
    url = f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies"
    response = requests.get(url, timeout=10)
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
    assert requests.get(url, headers={"Authorization": "Bearer anything"}, timeout=10).status_code == 200


def test_malformed_json_body_is_400(databricks_emulator):
    url = f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budget-policies"
    auth = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    response = requests.post(url, data=b"{not json", headers=auth, timeout=10)
    assert response.status_code == 400 and response.json()["error_code"] == "MALFORMED_REQUEST"
    response = requests.post(url, json={"policy": {"policy_name": "p", "colour": "red"}}, headers=auth, timeout=10)
    assert response.status_code == 400 and "colour" in response.json()["message"]


def test_concurrent_creates_of_one_name_yield_exactly_one_policy(databricks_emulator):
    results: list[object] = []
    lock = threading.Lock()

    def create() -> None:
        a = databricks_emulator.account_client()
        try:
            outcome: object = a.budget_policy.create(policy=_policy("contended"))
        except ResourceAlreadyExists as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=create) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [r for r in results if isinstance(r, BudgetPolicy)]
    assert len(created) == 1 and len(results) == 12
    assert all(isinstance(r, ResourceAlreadyExists) for r in results if r not in created)
    assert len(databricks_emulator.state) == 1


def test_many_concurrent_clients(databricks_emulator):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        a = databricks_emulator.account_client()
        try:
            for i in range(25):
                p = a.budget_policy.create(policy=_policy(f"w{n:02d}-{i:02d}", {"worker": str(n)}))
                assert a.budget_policy.get(p.policy_id).policy_name == p.policy_name
        except BaseException as exc:  # pragma: no cover  # noqa: BLE001 (a thread's failure, reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = [p.policy_name for p in databricks_emulator.account_client().budget_policy.list(page_size=1000)]
    assert len(listed) == 200 and listed == sorted(listed)
    assert databricks_emulator.count("POST", "/budget-policies", status=200) == 200


def test_bad_request_base_class_for_all_400s(databricks_emulator):
    a = databricks_emulator.account_client()
    with pytest.raises(BadRequest):
        a.budget_policy.create(policy=_policy("x" * 200))
