"""AccountBudget's check against hostile and careless input (issue 23): it never raises on a JSON
value, refuses amounts that could never trip, addresses nobody can receive, control characters,
unbounded lists; every failure message stays short; workspace ids follow the one shared rule."""

from __future__ import annotations

import itertools

import pytest

from harness.deployment import Deployment
from providers import AccountBudget, ServerlessBudgetPolicy
from providers.account_budget import check_inputs
from tests.providers.test_account_budget import FIELDS

ALERT = {"threshold_usd": 10, "notify": ["lead@example.com"]}
JSON_VALUES = [
    None,
    True,
    0,
    -1,
    1e308,
    float("nan"),
    "x",
    "",
    [],
    [1],
    [None],
    [{"x": 1}],
    {},
    {"x": 1},
    {"x": [1, {"y": None}]},
    [[[]]],
    {"threshold_usd": {"x": 1}},
]


@pytest.mark.parametrize("field, value", list(itertools.product(FIELDS, JSON_VALUES)))
def test_check_never_raises_on_any_json_value(field, value):
    props = {"display_name": "b", "resource_type": "AI_GATEWAY", "alerts": [ALERT], field: value}
    _, failures = check_inputs(props)  # must not raise
    assert all(len(f.reason) < 400 for f in failures.items)


@pytest.mark.parametrize("value", [{"x": 1}, ["AI_GATEWAY"], 7])
def test_a_resource_type_of_the_wrong_shape_is_a_failure_not_a_crash(value):
    _, failures = check_inputs({"display_name": "b", "resource_type": value, "alerts": [ALERT]})
    assert [f.property for f in failures.items] == ["resource_type"]


@pytest.mark.parametrize("amount", [1e308, 1e10, 0.001, 0])
def test_thresholds_and_overrides_that_could_never_trip_are_refused(amount):
    blocking = {"threshold_usd": amount, "notify": ["a@example.com"], "block_usage": True}
    _, failures = check_inputs({"display_name": "b", "resource_type": "AI_GATEWAY", "alerts": [blocking]})
    assert "alerts[0].threshold_usd" in [f.property for f in failures.items]
    per_user = {"threshold_usd": 10, "notify": ["a@example.com"], "overrides": {"7001": amount}}
    _, failures = check_inputs(
        {"display_name": "b", "resource_type": "AI_GATEWAY", "alerts": [ALERT], "per_user_alert": per_user}
    )
    assert [f.property for f in failures.items] == ["per_user_alert.overrides.7001"]


UNDELIVERABLE = [
    "a\x00b@example.com",
    "\x1b[31mred@example.com",
    "evil\u202e@example.com",  # bidi override
    "zero\u200bwidth@example.com",
    "pаypal@example.com",  # Cyrillic а among ASCII
    "a@..c",
    "a@b",
    "mailto:a@example.com",
    "a" * 10_000 + "@example.com",
    "a@b.c",
    "a b@example.com",
]


@pytest.mark.parametrize("address", UNDELIVERABLE)
def test_addresses_nobody_can_receive_are_refused(address):
    alert = {"threshold_usd": 10, "notify": [address]}
    _, failures = check_inputs({"display_name": "b", "alerts": [alert]})
    assert [f.property for f in failures.items] == ["alerts[0].notify"]
    assert len(failures.items[0].reason) < 300


def test_deliverable_addresses_pass():
    good = ["lead@example.com", "first.last+budget@sub.example.co.uk", "ops@xn--bcher-kva.example"]
    inputs, failures = check_inputs({"display_name": "b", "alerts": [{"threshold_usd": 10, "notify": good}]})
    assert not failures and inputs["alerts"][0]["notify"] == sorted(good)


@pytest.mark.parametrize("text", ["\n", "\x00", "\x1b[31m", "\x7f"])
def test_control_characters_are_refused_in_names_and_tags(text):
    _, failures = check_inputs({"display_name": f"a{text}b", "alerts": [ALERT]})
    assert [f.property for f in failures.items] == ["display_name"]
    _, failures = check_inputs({"display_name": "b", "alerts": [ALERT], "tags": {f"k{text}": ["v"]}})
    assert [f.property for f in failures.items] == ["tags"]
    _, failures = check_inputs({"display_name": "b", "alerts": [ALERT], "tags": {"k": [f"v{text}"]}})
    assert [f.property for f in failures.items] == ["tags"]


@pytest.mark.parametrize(
    "props, prop",
    [
        ({"tags": {f"k{i}": ["v"] for i in range(21)}}, "tags"),
        ({"tags": {"k": [f"v{i}" for i in range(51)]}}, "tags"),
        ({"alerts": [{"threshold_usd": 10, "notify": [f"a{i}@example.com" for i in range(101)]}]}, "alerts[0].notify"),
        ({"alerts": [{"threshold_usd": t, "notify": ["a@example.com"]} for t in range(1, 1001)]}, "alerts"),
    ],
)
def test_lists_are_bounded_and_the_failure_is_short(props, prop):
    _, failures = check_inputs({"display_name": "b", "alerts": [ALERT], **props})
    assert prop in [f.property for f in failures.items]
    assert len(failures.items) <= 3 and all(len(f.reason) < 300 for f in failures.items)


def test_a_long_display_name_is_not_echoed_whole():
    _, failures = check_inputs({"display_name": "x" * 10_000, "alerts": [ALERT]})
    assert len(failures.items[0].reason) < 100


@pytest.mark.parametrize(
    "workspace_id, valid", [("1234", True), (1234.0, True), ("²", False), (-5, False), (2**53 + 2, False)]
)
def test_workspace_ids_follow_one_rule_in_every_resource(workspace_id, valid):
    _, budget_failures = check_inputs({"display_name": "b", "alerts": [ALERT], "workspace_ids": [workspace_id]})
    assert (not budget_failures) is valid
    from providers.serverless_budget_policy import check_inputs as policy_check

    _, policy_failures = policy_check({"policy_name": "p", "binding_workspace_ids": [workspace_id]})
    assert (not policy_failures) is valid


def test_hostile_values_through_the_provider_server():
    """The same, as pulumi preview runs it: failures at check, no crash of the provider."""
    from harness.provider_server import ProviderServer
    from harness.pulumi_program import declared_inputs

    inputs = declared_inputs(lambda: AccountBudget("b", display_name="b", alerts=[ALERT]))
    inputs.update(resource_type={"x": 1}, alerts=[{"threshold_usd": 1e308, "notify": ["mailto:a@b.co"]}])
    with ProviderServer(config={"databricks:host": "http://127.0.0.1:9", "databricks:accountId": "a"}) as server:
        checked = server.check(server.urn("pulumi-python:dynamic/mlbudgets:AccountBudget", "b"), inputs)
        assert {prop for prop, _ in checked.failures} == {
            "resource_type",
            "alerts[0].threshold_usd",
            "alerts[0].notify",
        }
        ok = Deployment(server, ServerlessBudgetPolicy).check(policy_name="p", binding_workspace_ids=["1234"])
        assert ok.failures == []
