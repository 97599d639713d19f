"""The emulator's account budgets API, driven by the real databricks-sdk ``AccountClient.budgets``."""

from __future__ import annotations

import pytest
import requests
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceDoesNotExist
from databricks.sdk.service import billing

EMAIL = billing.ActionConfigurationType.EMAIL_NOTIFICATION
BLOCK = billing.ActionConfigurationType.BLOCK_USAGE
SHARED = billing.AlertConfigurationScopeType.ALERT_CONFIGURATION_SCOPE_TYPE_SHARED
PER_USER = billing.AlertConfigurationScopeType.ALERT_CONFIGURATION_SCOPE_TYPE_PER_USER
GATEWAY = billing.BudgetResourceType.BUDGET_RESOURCE_TYPE_UNITY_AI_GATEWAY


def alert(threshold: str, *actions, scope=None, overrides=None, **fields):
    defaults = dict(
        quantity_type=billing.AlertConfigurationQuantityType.LIST_PRICE_DOLLARS_USD,
        time_period=billing.AlertConfigurationTimePeriod.MONTH,
        trigger_type=billing.AlertConfigurationTriggerType.CUMULATIVE_SPENDING_EXCEEDED,
    )
    defaults.update(fields)
    return billing.CreateBudgetConfigurationBudgetAlertConfigurations(
        quantity_threshold=threshold,
        scope_type=scope,
        principal_overrides=overrides,
        action_configurations=[
            billing.CreateBudgetConfigurationBudgetActionConfigurations(action_type=t, target=x) for t, x in actions
        ],
        **defaults,
    )


def budget(*alerts, name="team budget", **fields):
    return billing.CreateBudgetConfigurationBudget(display_name=name, alert_configurations=list(alerts), **fields)


def mail(address="finops@example.com"):
    return (EMAIL, address)


@pytest.fixture
def account(databricks_emulator):
    return databricks_emulator.account_client()


def test_create_get_list_delete_at_the_sdk_paths(account, databricks_emulator):
    created = account.budgets.create(
        budget(
            alert("100", mail()),
            filter=billing.BudgetConfigurationFilter(
                workspace_id=billing.BudgetConfigurationFilterWorkspaceIdClause(
                    operator=billing.BudgetConfigurationFilterOperator.IN, values=[7]
                )
            ),
        )
    ).budget
    assert len(created.budget_configuration_id) == 36 and created.account_id == databricks_emulator.account_id
    assert created.create_time and created.update_time == created.create_time
    assert account.budgets.get(created.budget_configuration_id).budget == created
    assert [b.budget_configuration_id for b in account.budgets.list()] == [created.budget_configuration_id]
    account.budgets.delete(created.budget_configuration_id)
    with pytest.raises(ResourceDoesNotExist):
        account.budgets.get(created.budget_configuration_id)
    with pytest.raises(NotFound):
        account.budgets.delete(created.budget_configuration_id)
    paths = {(r["method"], r["path"].split(databricks_emulator.account_id)[-1]) for r in databricks_emulator.requests}
    assert ("POST", "/budgets") in paths and ("GET", "/budgets") in paths
    assert databricks_emulator.unknown_routes == []


REJECTED = {
    "no alert": budget(),
    "name too long": budget(alert("1", mail()), name="x" * 129),
    "five shared alerts": budget(*[alert(str(t), mail()) for t in (1, 2, 3, 4, 5)]),
    "repeated threshold": budget(alert("10", mail()), alert("10.0", mail("b@example.com"))),
    "threshold not a decimal": budget(alert("ten", mail())),
    "yearly period": budget(alert("1", mail(), time_period=None)),
    "BLOCK_USAGE on an ALL budget": budget(alert("1", (BLOCK, None))),
    "per-user alert on an ALL budget": budget(alert("1", mail(), scope=PER_USER)),
    "external spend on an ALL budget": budget(alert("1", mail()), include_external_spend=True),
    "BLOCK_USAGE below the highest": budget(alert("1", (BLOCK, None)), alert("2", mail()), resource_type=GATEWAY),
    "two per-user alerts": budget(
        alert("1", mail(), scope=PER_USER), alert("2", mail(), scope=PER_USER), resource_type=GATEWAY
    ),
    "email without an address": budget(alert("1", (EMAIL, "not-an-address"))),
    "same action twice": budget(alert("1", mail(), mail())),
    "override twice": budget(
        alert(
            "1",
            mail(),
            scope=PER_USER,
            overrides=[billing.PrincipalOverride("5", 9), billing.PrincipalOverride("6", 9)],
        ),
        resource_type=GATEWAY,
    ),
    "empty tag values": budget(
        alert("1", mail()),
        filter=billing.BudgetConfigurationFilter(
            tags=[
                billing.BudgetConfigurationFilterTagClause(
                    "team", billing.BudgetConfigurationFilterClause(billing.BudgetConfigurationFilterOperator.IN, [])
                )
            ]
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_documented_rules_answer_400_invalid_parameter_value(account, databricks_emulator, case):
    with pytest.raises(InvalidParameterValue) as error:
        account.budgets.create(REJECTED[case])
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert len(databricks_emulator.state.budgets) == 0


def test_gateway_budget_with_block_per_user_alert_and_overrides_is_accepted(account):
    made = account.budgets.create(
        budget(
            alert("500", mail()),
            alert("1000", (BLOCK, None), mail()),
            alert(
                "50",
                (BLOCK, None),
                scope=PER_USER,
                overrides=[billing.PrincipalOverride("200", 11), billing.PrincipalOverride("80", 12)],
            ),
            resource_type=GATEWAY,
            include_external_spend=True,
        )
    ).budget
    assert made.resource_type == GATEWAY and made.include_external_spend is True
    assert sum(1 for a in made.alert_configurations if a.scope_type == PER_USER) == 1


def test_update_replaces_keeps_ids_refuses_action_type_change_and_external_spend_change(account):
    made = account.budgets.create(budget(alert("100", mail(), (BLOCK, None)), resource_type=GATEWAY)).budget
    budget_id = made.budget_configuration_id
    current = made.alert_configurations[0]
    email = next(a for a in current.action_configurations if a.action_type == EMAIL)

    def put(alerts, **fields):
        body = dict(
            budget_configuration_id=budget_id,
            display_name="renamed",
            alert_configurations=alerts,
            resource_type=GATEWAY,
        )
        body.update(fields)
        return account.budgets.update(budget_id, billing.UpdateBudgetConfigurationBudget(**body)).budget

    kept = put(
        [
            billing.AlertConfiguration(
                alert_configuration_id=current.alert_configuration_id,
                quantity_threshold="150",
                quantity_type=current.quantity_type,
                time_period=current.time_period,
                trigger_type=current.trigger_type,
                action_configurations=[
                    billing.ActionConfiguration(
                        action_configuration_id=email.action_configuration_id,
                        action_type=EMAIL,
                        target="new@example.com",
                    )
                ],
            )
        ]
    )
    assert (
        kept.display_name == "renamed"
        and kept.alert_configurations[0].alert_configuration_id == current.alert_configuration_id
    )
    assert [(a.action_configuration_id, a.target) for a in kept.alert_configurations[0].action_configurations] == [
        (email.action_configuration_id, "new@example.com")
    ]
    with pytest.raises(InvalidParameterValue, match="Action type cannot be updated"):
        put(
            [
                billing.AlertConfiguration(
                    alert_configuration_id=current.alert_configuration_id,
                    quantity_threshold="150",
                    quantity_type=current.quantity_type,
                    time_period=current.time_period,
                    trigger_type=current.trigger_type,
                    action_configurations=[
                        billing.ActionConfiguration(
                            action_configuration_id=email.action_configuration_id, action_type=BLOCK
                        )
                    ],
                )
            ]
        )
    with pytest.raises(InvalidParameterValue, match="include_external_spend"):
        put([alert_as_update(alert("10", mail()))], include_external_spend=True)


def alert_as_update(create_alert) -> billing.AlertConfiguration:
    return billing.AlertConfiguration.from_dict(create_alert.as_dict())


def test_actions_and_overrides_come_back_in_the_servers_order(account, databricks_emulator):
    addresses = [f"user{i}@example.com" for i in range(8)]
    overrides = [billing.PrincipalOverride(str(10 + i), 100 + i) for i in range(8)]
    made = account.budgets.create(
        budget(
            alert("100", *[mail(a) for a in addresses]),
            alert("5", (BLOCK, None), scope=PER_USER, overrides=overrides),
            resource_type=GATEWAY,
        )
    ).budget
    shared = next(a for a in made.alert_configurations if a.scope_type == SHARED)
    per_user = next(a for a in made.alert_configurations if a.scope_type == PER_USER)
    assert sorted(a.target for a in shared.action_configurations) == addresses
    assert [a.target for a in shared.action_configurations] != addresses
    assert [o.principal_id for o in per_user.principal_overrides] != [o.principal_id for o in overrides]
    # A later rewrite on the server side reverses them again.
    reordered = databricks_emulator.state.budgets.reorder(made.budget_configuration_id)["budget"]
    again = account.budgets.get(made.budget_configuration_id).budget
    assert again.as_dict() == reordered and again != made


def test_list_pages(account, databricks_emulator):
    databricks_emulator.state.budgets.list_page_size = 3
    ids = {
        account.budgets.create(budget(alert("1", mail()), name=f"b{i}")).budget.budget_configuration_id
        for i in range(8)
    }
    assert {b.budget_configuration_id for b in account.budgets.list()} == ids
    assert databricks_emulator.count("GET", "/budgets") == 3
    with pytest.raises(InvalidParameterValue):
        list(account.budgets.list(page_token="garbage"))


def test_spend_statuses_follow_usage_fed_through_the_control_endpoint(account, databricks_emulator):
    from emulator.process import RemoteControl

    state = databricks_emulator.state
    caller = state.creator_user_id
    blocking = account.budgets.create(
        budget(
            alert("200", mail()),
            alert("400", (BLOCK, None)),
            alert("50", (BLOCK, None), scope=PER_USER, overrides=[billing.PrincipalOverride("80", caller)]),
            resource_type=GATEWAY,
            filter=billing.BudgetConfigurationFilter(
                workspace_id=billing.BudgetConfigurationFilterWorkspaceIdClause(
                    operator=billing.BudgetConfigurationFilterOperator.IN, values=[11]
                )
            ),
        )
    ).budget.budget_configuration_id
    alerts_only = account.budgets.create(
        budget(alert("10", mail()), resource_type=GATEWAY)
    ).budget.budget_configuration_id
    control = RemoteControl(databricks_emulator.url)
    control.add_budget_usage(blocking, "30")  # the caller
    control.add_budget_usage(blocking, "70.5", principal_id=999)  # someone else
    control.add_budget_usage(blocking, "1000", external=True)  # external spend, not tracked here

    name = f"accounts/{databricks_emulator.account_id}/budget-spend-statuses/{blocking}"
    status = account.budgets.get_budget_spend_status(name)
    assert status.name == name
    by_scope = {s.scope_type: s for s in status.alert_spend_statuses}
    assert by_scope[SHARED].percent_consumed == "25.1" and by_scope[SHARED].spend is None  # 100.5 of 400
    assert (by_scope[PER_USER].spend, by_scope[PER_USER].threshold, by_scope[PER_USER].percent_consumed) == (
        "30",
        "80",
        "37.5",
    )

    # A group override applies when the caller is in that group and has no override of its own.
    group_budget = account.budgets.create(
        budget(
            alert(
                "50",
                (BLOCK, None),
                scope=PER_USER,
                overrides=[billing.PrincipalOverride("120", 77), billing.PrincipalOverride("90", 78)],
            ),
            resource_type=GATEWAY,
        )
    ).budget.budget_configuration_id
    requests.post(
        f"{databricks_emulator.url}/_emulator/caller", json={"group_ids": [77, 78]}, timeout=10
    ).raise_for_status()
    group_status = account.budgets.get_budget_spend_status(
        f"accounts/{databricks_emulator.account_id}/budget-spend-statuses/{group_budget}"
    ).alert_spend_statuses[0]
    assert (group_status.spend, group_status.threshold, group_status.percent_consumed) == ("0", "120", "0.0")
    account.budgets.delete(group_budget)

    with pytest.raises(NotFound):  # no blocking threshold
        account.budgets.get_budget_spend_status(
            f"accounts/{databricks_emulator.account_id}/budget-spend-statuses/{alerts_only}"
        )
    with pytest.raises(InvalidParameterValue):
        account.budgets.get_budget_spend_status(
            f"accounts/{databricks_emulator.account_id}/budget-spend-statuses/not-a-uuid"
        )

    parent = f"accounts/{databricks_emulator.account_id}"
    assert [s.name for s in account.budgets.list_budget_spend_statuses(parent).budget_spend_statuses] == [name]
    assert account.budgets.list_budget_spend_statuses(parent, filter="workspace_id IN (11, 12)").budget_spend_statuses
    assert not account.budgets.list_budget_spend_statuses(parent, filter="workspace_id = 12").budget_spend_statuses
    with pytest.raises(InvalidParameterValue):
        account.budgets.list_budget_spend_statuses(parent, filter="workspace_id IN ()")
    with pytest.raises(InvalidParameterValue):
        account.budgets.list_budget_spend_statuses(parent, page_size=-1)


def test_budgets_survive_a_restart(databricks_emulator_process):
    emulator = databricks_emulator_process()
    account = emulator.account_client()
    made = account.budgets.create(budget(alert("100", mail()))).budget
    emulator.restart()
    assert emulator.account_client().budgets.get(made.budget_configuration_id).budget == made


def test_unknown_fields_are_refused(databricks_emulator):
    url = f"{databricks_emulator.url}/api/2.1/accounts/{databricks_emulator.account_id}/budgets"
    body = budget(alert("100", mail())).as_dict()
    body["alert_configurations"][0]["treshold"] = "5"
    answer = requests.post(url, json={"budget": body}, headers={"Authorization": "Bearer x"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "treshold" in answer.json()["message"]
