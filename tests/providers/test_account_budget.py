"""AccountBudget through the SDK's provider server over gRPC, against the emulator's budgets API."""

from __future__ import annotations

import pytest

from harness.provider_server import ProviderError, ProviderServer
from harness.pulumi_program import declared_inputs
from providers import AccountBudget

TYPE = "pulumi-python:dynamic/mlbudgets:AccountBudget"
FIELDS = (
    "display_name",
    "alerts",
    "tags",
    "workspace_ids",
    "resource_type",
    "per_user_alert",
    "include_external_spend",
)


def declared(**props) -> dict:
    """Inputs exactly as the SDK registers them for ``AccountBudget(**props)``."""
    return declared_inputs(lambda: AccountBudget("budget", **props))


@pytest.fixture
def server(databricks_emulator, provider_server_factory) -> ProviderServer:
    return provider_server_factory(config=databricks_emulator.config())


def gateway_budget(**overrides) -> dict:
    props = dict(
        display_name="search AI Gateway",
        resource_type="AI_GATEWAY",
        alerts=[
            {"threshold_usd": 1000, "notify": ["finops@example.com", "lead@example.com"], "block_usage": True},
            {"threshold_usd": 500, "notify": ["lead@example.com"]},
        ],
        per_user_alert={
            "threshold_usd": 50,
            "notify": ["lead@example.com"],
            "block_usage": True,
            "overrides": {"7001": 200, "7002": 120.5},
        },
        tags={"team": ["search"], "env": ["prod", "staging"]},
        workspace_ids=[1002, 1001],
        include_external_spend=True,
    )
    props.update(overrides)
    return declared(**props)


def remote_shape(budget) -> dict:
    """A budget read with the plain SDK, as sets keyed by meaning."""
    alerts = set()
    overrides = set()
    for alert in budget.alert_configurations:
        actions = frozenset((a.action_type.value, a.target) for a in alert.action_configurations or [])
        alerts.add(
            (
                alert.scope_type.value,
                alert.quantity_threshold,
                alert.time_period.value,
                alert.trigger_type.value,
                alert.quantity_type.value,
                actions,
            )
        )
        overrides |= {(o.principal_id, o.override_threshold) for o in alert.principal_overrides or []}
    tags = {t.key: set(t.value.values) for t in budget.filter.tags or []}
    workspaces = set(budget.filter.workspace_id.values) if budget.filter.workspace_id else set()
    return {
        "display_name": budget.display_name,
        "resource_type": budget.resource_type.value,
        "alerts": alerts,
        "overrides": overrides,
        "tags": tags,
        "workspaces": workspaces,
        "external": budget.include_external_spend,
    }


EMAIL, BLOCK = "EMAIL_NOTIFICATION", "BLOCK_USAGE"
SHARED, PER_USER = "ALERT_CONFIGURATION_SCOPE_TYPE_SHARED", "ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER"
MONTHLY = ("MONTH", "CUMULATIVE_SPENDING_EXCEEDED", "LIST_PRICE_DOLLARS_USD")


def test_lifecycle_create_read_update_reorder_refresh_delete(server, databricks_emulator):
    client = databricks_emulator.account_client()
    urn = server.urn(TYPE, "search-gateway")
    checked = server.check(urn, gateway_budget())
    assert checked.failures == []
    budget_id, outs = server.create(urn, checked.inputs)
    assert outs["budget_id"] == budget_id and outs["account_id"] == databricks_emulator.account_id

    # Read back with the plain SDK: exactly what was declared.
    remote = remote_shape(client.budgets.get(budget_id).budget)
    assert remote == {
        "display_name": "search AI Gateway",
        "resource_type": "BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY",
        "alerts": {
            (SHARED, "500", *MONTHLY, frozenset({(EMAIL, "lead@example.com")})),
            (
                SHARED,
                "1000",
                *MONTHLY,
                frozenset({(EMAIL, "finops@example.com"), (EMAIL, "lead@example.com"), (BLOCK, None)}),
            ),
            (PER_USER, "50", *MONTHLY, frozenset({(EMAIL, "lead@example.com"), (BLOCK, None)})),
        },
        "overrides": {(7001, "200"), (7002, "120.5")},
        "tags": {"team": {"search"}, "env": {"prod", "staging"}},
        "workspaces": {1001, 1002},
        "external": True,
    }
    assert {k: outs.get(k) for k in FIELDS} == {k: checked.inputs.get(k) for k in FIELDS}

    # Same inputs: no diff.
    assert server.diff(urn, budget_id, outs, server.check(urn, gateway_budget(), outs).inputs).changes == "none"

    # Thresholds and addresses change in place; the budget id stays.
    alert_ids_before = {
        a.quantity_threshold: a.alert_configuration_id
        for a in client.budgets.get(budget_id).budget.alert_configurations
    }
    changed = server.check(
        urn,
        gateway_budget(
            alerts=[
                {"threshold_usd": 1200, "notify": ["finops@example.com"], "block_usage": True},
                {"threshold_usd": 500, "notify": ["lead@example.com", "oncall@example.com"]},
            ]
        ),
        outs,
    ).inputs
    diff = server.diff(urn, budget_id, outs, changed)
    assert diff.changes == "some" and diff.replaces == []
    databricks_emulator.reset_requests()
    outs = server.update(urn, budget_id, outs, changed)
    assert [r["method"] for r in databricks_emulator.requests if "/budgets" in r["path"]] == ["GET", "PUT"]
    remote_budget = client.budgets.get(budget_id).budget
    remote = remote_shape(remote_budget)
    assert (SHARED, "1200", *MONTHLY, frozenset({(EMAIL, "finops@example.com"), (BLOCK, None)})) in remote["alerts"]
    assert (SHARED, "500", *MONTHLY, frozenset({(EMAIL, "lead@example.com"), (EMAIL, "oncall@example.com")})) in remote[
        "alerts"
    ]
    assert len(remote["alerts"]) == 3
    # The unchanged $500 alert kept its id: matched by meaning, not by position.
    kept = {a.quantity_threshold: a.alert_configuration_id for a in remote_budget.alert_configurations}
    assert kept["500"] == alert_ids_before["500"]

    # The server rewrites the order of alerts, actions and overrides: no diff, nothing written.
    before = client.budgets.get(budget_id).budget.as_dict()
    reordered = databricks_emulator.state.budgets.reorder(budget_id)["budget"]
    assert reordered != before  # the order really changed on the wire
    read = server.read(urn, budget_id, outs)
    assert read.outs == outs
    assert server.diff(urn, budget_id, read.outs, changed).changes == "none"

    # An edit in the account console shows up on refresh, and the next up puts it back.
    from databricks.sdk.service import billing

    edited = client.budgets.get(budget_id).budget
    edited.display_name = "renamed in the console"
    shared_500 = next(a for a in edited.alert_configurations if a.quantity_threshold == "500")
    shared_500.quantity_threshold = "450"
    client.budgets.update(
        budget_id,
        billing.UpdateBudgetConfigurationBudget(
            budget_configuration_id=budget_id,
            display_name=edited.display_name,
            filter=edited.filter,
            alert_configurations=edited.alert_configurations,
            resource_type=edited.resource_type,
            include_external_spend=edited.include_external_spend,
        ),
    )
    refreshed = server.read(urn, budget_id, outs)
    assert refreshed.outs["display_name"] == "renamed in the console"
    assert [a["threshold_usd"] for a in refreshed.outs["alerts"]] == [450.0, 1200.0]
    assert refreshed.inputs["display_name"] == "renamed in the console"
    assert server.diff(urn, budget_id, refreshed.outs, changed).changes == "some"
    outs = server.update(urn, budget_id, refreshed.outs, changed)
    assert remote_shape(client.budgets.get(budget_id).budget) == remote

    # Delete; gone for the SDK and for refresh; a second delete succeeds.
    server.delete(urn, budget_id, outs)
    from databricks.sdk.errors import NotFound

    with pytest.raises(NotFound):
        client.budgets.get(budget_id)
    assert budget_id not in {b.budget_configuration_id for b in client.budgets.list()}
    assert server.read(urn, budget_id, outs).id == ""
    server.delete(urn, budget_id, outs)


BAD_BUDGETS = {
    "no name": (dict(display_name="", alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]), "display_name"),
    "name too long": (
        dict(display_name="x" * 129, alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]),
        "display_name",
    ),
    "no alert": (dict(display_name="b", alerts=[]), "alerts"),
    "fifth alert": (
        dict(
            display_name="b", alerts=[{"threshold_usd": t, "notify": ["a@example.com"]} for t in (10, 20, 30, 40, 50)]
        ),
        "alerts",
    ),
    "repeated threshold": (
        dict(
            display_name="b",
            alerts=[
                {"threshold_usd": 10, "notify": ["a@example.com"]},
                {"threshold_usd": 10.0, "notify": ["b@example.com"]},
            ],
        ),
        "alerts",
    ),
    "zero threshold": (
        dict(display_name="b", alerts=[{"threshold_usd": 0, "notify": ["a@example.com"]}]),
        "alerts[0].threshold_usd",
    ),
    "threshold as text": (
        dict(display_name="b", alerts=[{"threshold_usd": "100", "notify": ["a@example.com"]}]),
        "alerts[0].threshold_usd",
    ),
    "malformed address": (
        dict(display_name="b", alerts=[{"threshold_usd": 10, "notify": ["finops-at-example.com"]}]),
        "alerts[0].notify",
    ),
    "alert telling nobody": (dict(display_name="b", alerts=[{"threshold_usd": 10, "notify": []}]), "alerts[0].notify"),
    "misspelt key": (dict(display_name="b", alerts=[{"threshold": 10, "notify": ["a@example.com"]}]), "alerts[0]"),
    "BLOCK_USAGE on an ALL budget": (
        dict(display_name="b", alerts=[{"threshold_usd": 10, "notify": ["a@example.com"], "block_usage": True}]),
        "alerts",
    ),
    "BLOCK_USAGE below the highest": (
        dict(
            display_name="b",
            resource_type="AI_GATEWAY",
            alerts=[
                {"threshold_usd": 10, "notify": ["a@example.com"], "block_usage": True},
                {"threshold_usd": 20, "notify": ["a@example.com"]},
            ],
        ),
        "alerts",
    ),
    "two blocking alerts": (
        dict(
            display_name="b",
            resource_type="AI_GATEWAY",
            alerts=[{"threshold_usd": 10, "block_usage": True}, {"threshold_usd": 20, "block_usage": True}],
        ),
        "alerts",
    ),
    "per-user alert on an ALL budget": (
        dict(display_name="b", per_user_alert={"threshold_usd": 5, "notify": ["a@example.com"]}),
        "per_user_alert",
    ),
    "malformed principal": (
        dict(
            display_name="b",
            resource_type="AI_GATEWAY",
            per_user_alert={"threshold_usd": 5, "block_usage": True, "overrides": {"groups/ml-eng": 50}},
        ),
        "per_user_alert.overrides",
    ),
    "external spend on an ALL budget": (
        dict(
            display_name="b", include_external_spend=True, alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]
        ),
        "include_external_spend",
    ),
    "unknown resource type": (
        dict(display_name="b", resource_type="SERVERLESS", alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]),
        "resource_type",
    ),
    "tag value not a list": (
        dict(display_name="b", tags={"team": "search"}, alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]),
        "tags",
    ),
    "bad workspace id": (
        dict(display_name="b", workspace_ids=[-3], alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}]),
        "workspace_ids",
    ),
}


def test_bad_budgets_are_rejected_at_check_with_no_request(server, databricks_emulator):
    assert len(BAD_BUDGETS) >= 12
    urn = server.urn(TYPE, "bad")
    declared_bad = {case: (declared(**props), prop) for case, (props, prop) in BAD_BUDGETS.items()}
    databricks_emulator.reset_requests()
    for case, (inputs, prop) in declared_bad.items():
        outcome = server.check(urn, inputs)
        assert prop in outcome.failed_properties(), (case, outcome.failures)
        reason = " ".join(r for p, r in outcome.failures if p == prop)
        assert reason, case
    assert databricks_emulator.requests == [], "check must not reach the API"
    assert len(databricks_emulator.state.budgets) == 0


def test_check_messages_say_what_would_be_valid(server):
    urn = server.urn(TYPE, "msg")
    reasons = dict(server.check(urn, declared(**BAD_BUDGETS["BLOCK_USAGE below the highest"][0])).failures)
    assert "highest threshold is $20" in reasons["alerts"]
    reasons = dict(server.check(urn, declared(**BAD_BUDGETS["fifth alert"][0])).failures)
    assert "at most 4" in reasons["alerts"]
    reasons = dict(server.check(urn, declared(**BAD_BUDGETS["per-user alert on an ALL budget"][0])).failures)
    assert '"AI_GATEWAY"' in reasons["per_user_alert"]


def test_changing_include_external_spend_replaces(server):
    urn = server.urn(TYPE, "ext")
    budget_id, outs = server.apply(urn, gateway_budget())
    diff = server.diff(
        urn, budget_id, outs, server.check(urn, gateway_budget(include_external_spend=False), outs).inputs
    )
    assert diff.changes == "some" and diff.replaces == ["include_external_spend"]
    diff = server.diff(
        urn,
        budget_id,
        outs,
        server.check(
            urn,
            gateway_budget(
                resource_type="ALL",
                alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}],
                per_user_alert=None,
                include_external_spend=False,
            ),
            outs,
        ).inputs,
    )
    assert "resource_type" in diff.replaces
    server.delete(urn, budget_id, outs)


def test_update_of_a_budget_deleted_outside_pulumi_says_what_to_do(server, databricks_emulator):
    urn = server.urn(TYPE, "gone")
    budget_id, outs = server.apply(urn, gateway_budget())
    databricks_emulator.account_client().budgets.delete(budget_id)
    changed = server.check(urn, gateway_budget(display_name="renamed"), outs).inputs
    with pytest.raises(ProviderError) as error:
        server.update(urn, budget_id, outs, changed)
    assert f"Unable to update account budget '{budget_id}'" in error.value.message
    assert "pulumi refresh" in error.value.message


def test_no_credentials_in_outputs(server, databricks_emulator):
    _, outs = server.apply(server.urn(TYPE, "secret-free"), gateway_budget())
    assert "dapi" not in repr(outs) and databricks_emulator.config()["databricks:token"] not in repr(outs)


@pytest.mark.parametrize("fault", ["drop", "503"])
def test_a_create_whose_answer_was_lost_leaves_one_budget(server, databricks_emulator, fault):
    """The budgets API has no request id: a re-sent create would make a twin budget."""
    databricks_emulator.faults.inject(fault, "POST", "/budgets", phase="after")
    budget_id, outs = server.apply(server.urn(TYPE, "lost-answer"), gateway_budget())
    assert databricks_emulator.state.budgets.ids() == [budget_id]
    assert databricks_emulator.count("POST", "/budgets") == 1
    assert outs["display_name"] == "search AI Gateway"


def test_a_throttled_create_is_sent_again_and_makes_one_budget(server, databricks_emulator):
    databricks_emulator.faults.throttle("POST", "/budgets", retry_after=1, count=2)
    budget_id, _ = server.apply(server.urn(TYPE, "throttled"), gateway_budget())
    assert databricks_emulator.state.budgets.ids() == [budget_id]
    assert databricks_emulator.count("POST", "/budgets") == 3


def test_a_lost_create_answer_is_sent_again_when_nothing_was_made(server, databricks_emulator):
    databricks_emulator.faults.drop("POST", "/budgets", phase="before")
    budget_id, _ = server.apply(server.urn(TYPE, "dropped-before"), gateway_budget())
    assert databricks_emulator.state.budgets.ids() == [budget_id]
    assert databricks_emulator.count("POST", "/budgets") == 2


ONE_ALERT = [{"threshold_usd": 10, "notify": ["a@example.com"]}]
JUDGED_ALIKE = [
    (dict(display_name="ok", alerts=ONE_ALERT), True),
    (dict(display_name="x" * 128, alerts=ONE_ALERT), True),
    (dict(display_name="x" * 129, alerts=ONE_ALERT), False),
    (dict(display_name="four", alerts=[{"threshold_usd": t, "notify": ["a@example.com"]} for t in (1, 2, 3, 4)]), True),
    (
        dict(display_name="five", alerts=[{"threshold_usd": t, "notify": ["a@example.com"]} for t in (1, 2, 3, 4, 5)]),
        False,
    ),
    (
        dict(
            display_name="same",
            alerts=[
                {"threshold_usd": 10, "notify": ["a@example.com"]},
                {"threshold_usd": 10.0, "notify": ["b@example.com"]},
            ],
        ),
        False,
    ),
    (
        dict(
            display_name="cents",
            alerts=[
                {"threshold_usd": 10.25, "notify": ["a@example.com"]},
                {"threshold_usd": 10.2, "notify": ["a@example.com"]},
            ],
        ),
        True,
    ),
    (dict(display_name="block", alerts=[{"threshold_usd": 10, "block_usage": True}]), False),
    (dict(display_name="block", resource_type="AI_GATEWAY", alerts=[{"threshold_usd": 10, "block_usage": True}]), True),
    (
        dict(
            display_name="low block",
            resource_type="AI_GATEWAY",
            alerts=[{"threshold_usd": 10, "block_usage": True}, {"threshold_usd": 20, "notify": ["a@example.com"]}],
        ),
        False,
    ),
    (dict(display_name="per user", per_user_alert={"threshold_usd": 5, "notify": ["a@example.com"]}), False),
    (
        dict(
            display_name="per user",
            resource_type="AI_GATEWAY",
            per_user_alert={"threshold_usd": 5, "block_usage": True, "overrides": {"9223372036854775807": 9}},
        ),
        True,
    ),
    (dict(display_name="external", include_external_spend=True, alerts=ONE_ALERT), False),
    (dict(display_name="external", resource_type="AI_GATEWAY", include_external_spend=True, alerts=ONE_ALERT), True),
    (
        dict(
            display_name="filtered",
            tags={"team": ["a", "b"], "env": ["prod"]},
            workspace_ids=[1, 2**53],
            alerts=ONE_ALERT,
        ),
        True,
    ),
]


@pytest.mark.parametrize("props, valid", JUDGED_ALIKE)
def test_provider_and_emulator_judge_budgets_alike(props, valid):
    """What check() accepts, Databricks' documented rules (the emulator) accept, and the other way round."""
    from emulator import budget_validation as emulator_budgets
    from emulator.errors import ApiError
    from providers import account_budget

    inputs, failures = account_budget.check_inputs(props)
    assert (not failures) is valid, [(f.property, f.reason) for f in failures.items]
    body = account_budget._create_body(
        inputs if valid else {**props, **{k: v for k, v in inputs.items() if v is not None}}
    ).as_dict()
    if props.get("include_external_spend"):  # _create_body leaves it out of ALL budgets
        body["include_external_spend"] = True
    try:
        emulator_budgets.validated(json_roundtrip(body), current=None)
        accepted = True
    except (ApiError, KeyError, TypeError):
        accepted = False
    assert accepted is valid


def json_roundtrip(value):
    import json

    return json.loads(json.dumps(value))


def test_a_missing_billing_admin_role_is_named_without_a_partial_write(server, databricks_emulator):
    databricks_emulator.faults.error(
        "POST",
        "/budgets",
        status=403,
        error_code="PERMISSION_DENIED",
        message="You are not allowed to call this API, consider getting billing.admin role",
    )
    with pytest.raises(ProviderError) as error:
        server.apply(server.urn(TYPE, "no-role"), gateway_budget())
    assert "Unable to create account budget 'search AI Gateway'" in error.value.message
    assert "billing admin role" in error.value.message
    assert len(databricks_emulator.state.budgets) == 0 and databricks_emulator.count("POST", "/budgets") == 1


@pytest.mark.parametrize("fault", [None, "drop", "503"])
def test_a_create_is_one_ordinary_request_with_a_length(databricks_emulator, monkeypatch, fault):
    """The create sends a normal JSON body with a Content-Length (a chunked body, with no length,
    is refused by some proxies) and, when its answer is lost, is not re-sent by the SDK."""
    import requests

    from providers import account_budget
    from providers._databricks import DatabricksAccount

    sent: list[requests.PreparedRequest] = []
    send = requests.Session.send

    def recording_send(session, request, **kwargs):
        sent.append(request)
        return send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    if fault:
        databricks_emulator.faults.inject(fault, "POST", "/budgets", phase="after")
    account = DatabricksAccount()
    account.configure({**databricks_emulator.config(), "databricks:retryTimeoutSeconds": "20"})
    props, failures = account_budget.check_inputs(
        dict(display_name="plain body", alerts=[{"threshold_usd": 10, "notify": ["a@example.com"]}])
    )
    assert not failures
    budget = account_budget._create_without_twins(account.client(), props)

    posts = [r for r in sent if r.method == "POST" and r.url.endswith("/budgets")]
    assert len(posts) == 1
    assert "Transfer-Encoding" not in posts[0].headers
    assert int(posts[0].headers["Content-Length"]) == len(posts[0].body)
    assert databricks_emulator.state.budgets.ids() == [budget.budget_configuration_id]
