"""Gateway budgets that cannot silently fail: bounds at check, guards before any write.

* Bounds: a window longer than a year or an amount outside $0.01–$10^9 is refused at check,
  with no request to the server; MLflow's own gateway code shows why the window bound matters.
* Guards, against a real ``mlflow server``: a budget on an endpoint whose spend MLflow does not
  count (usage tracking off, unpriced model) is refused before it is written, naming the
  endpoint and the model, unless ``allow_untracked``; the stack program says the same with the
  config path.
"""

from __future__ import annotations

import uuid

import pytest

from harness.engine import LocalEngine
from harness.mlflow_server import create_gateway_endpoint, provider_env
from harness.provider_server import ProviderError, ProviderServer
from providers import GatewayBudgetPolicy
from providers.gateway_budget_policy import MAX_WINDOW, check_inputs

UNREACHABLE_API_BASE = "http://127.0.0.1:9/v1"  # endpoints here are never called
UNPRICED_MODEL = "acme-private-llm-7b"  # in no price table


@pytest.fixture(scope="module")
def provider(mlflow_server):
    server = ProviderServer(config={"mlflow:trackingUri": mlflow_server.tracking_uri}, env=provider_env())
    yield server
    server.close()


def budget_writes(mlflow_server, since: int) -> list:
    return [r for r in mlflow_server.requests(since) if "/gateway/budgets/" in r.path and r.method != "GET"]


def stored_policy_ids(mlflow_server) -> set[str]:
    from mlflow.tracking._tracking_service.utils import _get_store

    return {p.budget_policy_id for p in _get_store(mlflow_server.tracking_uri).list_budget_policies(max_results=1000)}


# --- bounds at check ---------------------------------------------------------------------------

ABSURD = [
    ({"window": {"unit": "DAYS", "value": 1e18}}, "window"),
    ({"window": {"unit": "MONTHS", "value": 10**6}}, "window"),
    ({"window": {"unit": "MONTHS", "value": 13}}, "window"),
    ({"window": {"unit": "WEEKS", "value": 53}}, "window"),
    ({"window": {"unit": "DAYS", "value": 367}}, "window"),
    ({"window": {"unit": "HOURS", "value": 366 * 24 + 1}}, "window"),
    ({"window": {"unit": "MINUTES", "value": 366 * 24 * 60 + 1}}, "window"),
    ({"window": {"unit": "MINUTES", "value": 90.5}}, "window"),
    ({"amount_usd": 1e308}, "amount_usd"),
    ({"amount_usd": 1e-300}, "amount_usd"),
    ({"amount_usd": 0.009}, "amount_usd"),
    ({"amount_usd": 1e9 + 1}, "amount_usd"),
]


@pytest.mark.parametrize("change, prop", ABSURD)
def test_bounds_are_refused_at_check_with_no_request(mlflow_server, provider, deploy, change, prop):
    policy = deploy(provider, GatewayBudgetPolicy)
    args = {"amount_usd": 10, "window": "daily", "action": "REJECT", **change}
    mark = mlflow_server.mark()
    outcome = policy.check(**args)
    assert outcome.failed_properties() == {prop}
    reason = dict(outcome.failures)[prop]
    assert (
        ("at most one year" in reason or "whole number" in reason or "integer" in reason)
        if prop == "window"
        else "between 0.01 and 1e+09" in reason
    )
    assert mlflow_server.requests(mark) == []


@pytest.mark.parametrize(
    "change",
    [{"window": {"unit": unit, "value": limit}} for unit, limit in MAX_WINDOW.items()]
    + [{"amount_usd": 0.01}, {"amount_usd": 1e9}],
)
def test_the_edges_of_the_bounds_pass_check(provider, deploy, change):
    policy = deploy(provider, GatewayBudgetPolicy)
    assert policy.check(**{"amount_usd": 10, "window": "daily", "action": "REJECT", **change}).failures == []


# --- MLflow's own gateway code: why the window bound matters -----------------------------------


def _policy_stack() -> list[dict]:
    """One REJECT policy per window unit at its longest allowed length, and the amount edges."""
    stack = [
        {"amount_usd": 1.0, "window": {"unit": unit, "value": limit}, "action": "REJECT"}
        for unit, limit in MAX_WINDOW.items()
    ]
    stack.append({"amount_usd": 0.01, "window": "daily", "action": "REJECT"})
    stack.append({"amount_usd": 1e9, "window": "monthly", "action": "ALERT"})
    return stack


def _enforced_by_mlflow(tracking_uri: str, monkeypatch) -> tuple[list, bool]:
    """What MLflow's gateway does with the store's policies: windows loaded, and whether a
    request is rejected after $2 of spend (``maybe_refresh_budget_policies`` is what the gateway
    runs before each request; its failures are logged at DEBUG and swallowed)."""
    import mlflow.gateway.budget_tracker as budget_tracker
    from mlflow.gateway.budget import maybe_refresh_budget_policies
    from mlflow.tracking._tracking_service.utils import _get_store

    monkeypatch.setattr(budget_tracker, "_budget_tracker", None)  # a fresh gateway worker
    store = _get_store(tracking_uri)
    maybe_refresh_budget_policies(store)
    tracker = budget_tracker.get_budget_tracker()
    tracker.record_cost(2.0)
    rejected, _ = tracker.should_reject_request()
    return tracker.get_all_windows(), rejected


@pytest.mark.parametrize("absurd_window", [{"unit": "DAYS", "value": 10**18}, {"unit": "MONTHS", "value": 10**6}])
def test_valid_policies_stay_enforced_and_one_absurd_window_would_disable_all(
    sqlite_tracking_uri, monkeypatch, absurd_window
):
    from mlflow.tracking._tracking_service.utils import _get_store

    from providers.gateway_budget_policy import budget_arguments

    store = _get_store(sqlite_tracking_uri)
    for declared in _policy_stack():
        inputs, failures = check_inputs(declared)
        assert not failures, failures.items
        store.create_budget_policy(**budget_arguments(inputs, None))

    windows, rejected = _enforced_by_mlflow(sqlite_tracking_uri, monkeypatch)
    assert len(windows) == len(_policy_stack())
    assert all(w.window_start < w.window_end for w in windows)
    assert rejected  # $2 spent: every $1 and $0.01 REJECT cap has tripped

    # The bound is what keeps this out: our check refuses it, MLflow's SQL store does not.
    absurd = {"amount_usd": 1.0, "window": absurd_window, "action": "REJECT"}
    assert check_inputs(absurd)[1]
    from mlflow.entities.gateway_budget_policy import BudgetDuration, BudgetDurationUnit

    arguments = budget_arguments({**absurd, "window": {"unit": "DAYS", "value": 1}, "scope": "GLOBAL"}, None)
    arguments["duration"] = BudgetDuration(BudgetDurationUnit(absurd_window["unit"]), absurd_window["value"])
    store.create_budget_policy(**arguments)

    windows, rejected = _enforced_by_mlflow(sqlite_tracking_uri, monkeypatch)
    assert windows == [] and not rejected  # every cap of the gateway is off


# --- guards against a real server --------------------------------------------------------------


def reject_args(target: str, **extra) -> dict:
    return {"amount_usd": 5, "window": "daily", "action": "REJECT", "scope": "ENDPOINT", "target": target, **extra}


def test_endpoint_with_usage_tracking_off_is_refused_before_any_write(mlflow_server, provider, deploy):
    endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE, usage_tracking=False)
    policy = deploy(provider, GatewayBudgetPolicy)
    before, mark = stored_policy_ids(mlflow_server), mlflow_server.mark()
    with pytest.raises(ProviderError) as error:
        policy.up(**reject_args(endpoint.name))
    message = error.value.message
    assert f"endpoint '{endpoint.name}' ({endpoint.endpoint_id})" in message
    assert "usage tracking is off" in message
    assert f"update_gateway_endpoint('{endpoint.endpoint_id}', usage_tracking=True)" in message
    assert "allow_untracked=True" in message
    assert budget_writes(mlflow_server, mark) == []
    assert stored_policy_ids(mlflow_server) == before


def test_tracked_priced_endpoint_goes_through(mlflow_server, provider, deploy):
    endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE)
    policy = deploy(provider, GatewayBudgetPolicy)
    assert policy.up(**reject_args(endpoint.name)) == "create"
    assert policy.id in stored_policy_ids(mlflow_server)
    assert policy.outputs["allow_untracked"] is False


def test_unpriced_model_is_refused_before_any_write(mlflow_server, provider, deploy):
    endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE, model=UNPRICED_MODEL)
    policy = deploy(provider, GatewayBudgetPolicy)
    before, mark = stored_policy_ids(mlflow_server), mlflow_server.mark()
    with pytest.raises(ProviderError) as error:
        policy.up(**reject_args(endpoint.endpoint_id, action="ALERT"))
    message = error.value.message
    assert f"its model 'openai/{UNPRICED_MODEL}'" in message
    assert f"endpoint '{endpoint.name}' ({endpoint.endpoint_id})" in message
    assert "has no price" in message and "MLFLOW_MODEL_CATALOG_URI" in message
    assert budget_writes(mlflow_server, mark) == []
    assert stored_policy_ids(mlflow_server) == before


def test_opt_out_accepts_a_budget_that_cannot_trip(mlflow_server, provider, deploy):
    untracked = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE, usage_tracking=False)
    policy = deploy(provider, GatewayBudgetPolicy)
    assert policy.up(**reject_args(untracked.name, allow_untracked=True)) == "create"
    assert policy.outputs["allow_untracked"] is True
    assert mlflow_server_policy(mlflow_server, policy.id).target_value == untracked.endpoint_id
    # Turning the opt-out off again is refused at the diff of the preview, before the update.
    with pytest.raises(ProviderError) as error:
        policy.diff(**reject_args(untracked.name, allow_untracked=False))
    assert "usage tracking is off" in error.value.message


def test_retargeting_to_an_untracked_endpoint_is_refused_at_preview(mlflow_server, provider, deploy):
    tracked = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE)
    untracked = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE, usage_tracking=False)
    policy = deploy(provider, GatewayBudgetPolicy)
    policy.up(**reject_args(tracked.name))
    mark = mlflow_server.mark()
    with pytest.raises(ProviderError) as error:
        policy.diff(**reject_args(untracked.name))  # what `pulumi preview` runs for an update
    assert f"endpoint '{untracked.name}'" in error.value.message
    assert budget_writes(mlflow_server, mark) == []
    assert mlflow_server_policy(mlflow_server, policy.id).target_value == tracked.endpoint_id
    # Unchanged inputs diff without asking the server at all.
    mark = mlflow_server.mark()
    assert policy.diff(**reject_args(tracked.name)).changes == "none"
    assert mlflow_server.requests(mark) == []


def mlflow_server_policy(mlflow_server, policy_id):
    from mlflow.tracking._tracking_service.utils import _get_store

    return _get_store(mlflow_server.tracking_uri).get_budget_policy(policy_id)


# --- the stack program: the same errors with the config path -----------------------------------


def gateway_team(endpoint_name: str, **extra) -> list[dict]:
    gateway = {
        "limitUsd": 20,
        "window": "daily",
        "scope": "ENDPOINT",
        "target": endpoint_name,
        "alertThresholds": [],
        "hardStop": True,
        "webhook": {"url": "https://hooks.slack.com/services/T0/B0/guards"},
        **extra,
    }
    return [{"name": f"team-{uuid.uuid4().hex[:6]}", "gateway": gateway}]


def test_stack_program_names_the_config_path_and_honours_allow_untracked(mlflow_server, provider_server_factory):
    untracked = create_gateway_endpoint(mlflow_server.tracking_uri, UNREACHABLE_API_BASE, usage_tracking=False)
    config = {"mlflow:trackingUri": mlflow_server.tracking_uri}
    engine = LocalEngine(provider_server_factory(config=config, env=provider_env()))
    teams = gateway_team(untracked.name)

    with pytest.raises(Exception) as error:  # noqa: PT011 (the program run re-raises the step's error)
        engine.up({**config, "ml-budgets:teams": teams})
    message = str(error.value)
    assert "declared at ml-budgets:teams[0].gateway" in message
    assert "set allowUntracked: true at ml-budgets:teams[0].gateway" in message
    assert f"endpoint '{untracked.name}'" in message
    assert not [key for key in engine.state if key[0].endswith("GatewayBudgetPolicy")]

    teams[0]["gateway"]["allowUntracked"] = True
    engine.up({**config, "ml-budgets:teams": teams})
    policies = [e for key, e in engine.state.items() if key[0].endswith("GatewayBudgetPolicy")]
    assert len(policies) == 2  # the hard stop and the ALERT that announces it
    assert all(e.outputs["allow_untracked"] for e in policies)
    engine.destroy()
