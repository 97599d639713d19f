"""GatewayBudgetPolicy through the SDK's provider server, against SQLite and a running server."""

from __future__ import annotations

import pytest

from harness.deployment import Deployment, declare
from harness.mlflow_server import create_gateway_endpoint
from harness.provider_server import ProviderError
from providers import GatewayBudgetPolicy

UNREACHABLE_API_BASE = "http://127.0.0.1:9/v1"  # endpoints here are never called


def policy_of(backend, policy_id):
    return backend.tracking_store().get_budget_policy(policy_id)


# --- check -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checker(mlflow_backend):
    """check() needs no store: one provider server (any backend) serves these tests."""
    return mlflow_backend.provider


def check(provider, **kwargs):
    """Check as `pulumi preview` runs it, through the deployment driver."""
    return Deployment(provider, GatewayBudgetPolicy).check(**kwargs)


def test_check_reports_every_bad_input_naming_the_property(checker):
    outcome = check(
        checker,
        amount_usd=0,
        window={"unit": "YEARS", "value": 1},
        action="BLOCK",
        scope="ENDPOINT",
    )
    assert outcome.failed_properties() == {"amount_usd", "window", "action", "target"}
    reasons = dict(outcome.failures)
    assert "between 0.01 and 1e+09" in reasons["amount_usd"]
    assert "MINUTES, HOURS, DAYS, WEEKS, MONTHS" in reasons["window"]
    assert "ALERT, REJECT" in reasons["action"]
    assert "endpoint name or id" in reasons["target"]


@pytest.mark.parametrize(
    "kwargs, prop",
    [
        ({"amount_usd": -5}, "amount_usd"),
        ({"amount_usd": float("nan")}, "amount_usd"),
        ({"window": "yearly"}, "window"),
        ({"window": {"unit": "DAYS", "value": 0}}, "window"),
        ({"window": {"unit": "DAYS", "value": 1.5}}, "window"),
        ({"window": {"unit": "DAYS", "value": 1, "every": 2}}, "window"),
        ({"scope": "TEAM"}, "scope"),
        ({"scope": "GLOBAL", "target": "my-endpoint"}, "target"),
        ({"scope": "WORKSPACE", "target": "my-endpoint"}, "target"),
        ({"scope": "USER"}, "target"),
        ({"scope": "USER", "target": "  "}, "target"),
    ],
)
def test_check_rejects(checker, mlflow_backend, kwargs, prop):
    base = {"amount_usd": 10, "window": "daily", "action": "ALERT"}
    outcome = check(checker, **{**base, **kwargs})
    # A SQL store also refuses USER scope itself (no users there).
    user_on_sqlite = kwargs.get("scope") == "USER" and mlflow_backend.kind == "sqlite"
    assert outcome.failed_properties() == {prop} | ({"scope"} if user_on_sqlite else set())


def test_check_normalizes_presets_enums_and_defaults(checker, mlflow_backend):
    inputs = check(checker, amount_usd=25, window="Weekly", action="reject").inputs
    assert inputs["window"] == {"unit": "WEEKS", "value": 1}
    assert (inputs["action"], inputs["scope"], inputs["amount_usd"]) == ("REJECT", "GLOBAL", 25.0)
    assert inputs["tracking_uri"] == mlflow_backend.tracking_uri

    custom = check(
        checker, amount_usd=1, window={"unit": "hours", "value": 6}, action="ALERT", scope="user", target="alice"
    ).inputs
    assert custom["window"] == {"unit": "HOURS", "value": 6}
    assert (custom["scope"], custom["target"]) == ("USER", "alice")


def test_check_skips_values_unknown_during_preview(checker):
    from pulumi.runtime import rpc

    urn = checker.urn("pulumi-python:dynamic/mlbudgets:GatewayBudgetPolicy", "p")
    news = declare(GatewayBudgetPolicy, "p", amount_usd=5, window="daily", action="ALERT")
    news.update(scope=rpc.UNKNOWN, target=rpc.UNKNOWN, amount_usd=rpc.UNKNOWN)
    assert checker.check(urn, news).failures == []


def test_check_without_a_tracking_server_names_the_config(provider_server_factory, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    provider = provider_server_factory()
    outcome = check(provider, amount_usd=5, window="daily", action="ALERT")
    assert outcome.failed_properties() == {"tracking_uri"}
    assert "mlflow:trackingUri" in dict(outcome.failures)["tracking_uri"]


# --- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_create_diff_update_read_delete(mlflow_backend, deploy):
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    # A GLOBAL ALERT policy far above any spend: inert for the other tests sharing the server.
    assert policy.up(amount_usd=100_000, window="monthly", action="alert") == "create"
    assert policy.id.startswith("bp-")
    assert policy.outputs["budget_policy_id"] == policy.id
    assert policy.outputs["tracking_uri"] == mlflow_backend.tracking_uri
    stored = policy_of(mlflow_backend, policy.id)
    assert (stored.budget_amount, stored.duration.unit.value, stored.budget_action.value) == (
        100_000,
        "MONTHS",
        "ALERT",
    )

    assert policy.up(amount_usd=100_000, window="monthly", action="ALERT") == "same"
    read = policy.refresh()
    assert read.id == policy.id
    assert policy.diff(amount_usd=100_000, window="monthly", action="ALERT").changes == "none"

    new_window = {"unit": "DAYS", "value": 7}
    assert policy.diff(amount_usd=200_000, window=new_window, action="ALERT").replaces == []
    assert policy.up(amount_usd=200_000, window=new_window, action="ALERT") == "update"
    stored = policy_of(mlflow_backend, policy.id)
    assert (stored.budget_amount, stored.duration.unit.value, stored.duration.value) == (200_000, "DAYS", 7)
    assert policy.outputs["window"] == new_window

    assert policy.destroy_and_retry().id == ""  # gone, and deleting it again is fine


def test_endpoint_target_by_name_is_resolved_to_the_id(mlflow_backend, deploy):
    endpoint = create_gateway_endpoint(mlflow_backend.tracking_uri, UNREACHABLE_API_BASE)
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=50, window="daily", action="REJECT", scope="ENDPOINT", target=endpoint.name)
    policy.up(**args)
    assert policy.outputs["target"] == endpoint.name
    assert policy.outputs["target_value"] == endpoint.endpoint_id
    assert policy_of(mlflow_backend, policy.id).target_value == endpoint.endpoint_id

    policy.refresh()
    assert policy.outputs["target"] == endpoint.name
    assert policy.diff(**args).changes == "none"

    # Naming the same endpoint by id is a change of input, applied in place.
    assert policy.up(**{**args, "target": endpoint.endpoint_id}) == "update"
    assert policy_of(mlflow_backend, policy.id).target_value == endpoint.endpoint_id


def test_refresh_notices_an_endpoint_name_that_moved(mlflow_backend, deploy):
    store = mlflow_backend.tracking_store()
    first = create_gateway_endpoint(mlflow_backend.tracking_uri, UNREACHABLE_API_BASE)
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=50, window="daily", action="REJECT", scope="ENDPOINT", target=first.name)
    policy.up(**args)

    # The name now belongs to a new endpoint; MLflow's policy still points at the old one.
    store.update_gateway_endpoint(first.endpoint_id, name=f"{first.name}-old")
    second = create_gateway_endpoint(mlflow_backend.tracking_uri, UNREACHABLE_API_BASE, name=first.name)
    assert policy.refresh().outs["target"] == first.endpoint_id
    assert policy.up(**args) == "update"
    assert policy_of(mlflow_backend, policy.id).target_value == second.endpoint_id


def test_refresh_notices_a_deleted_endpoint(mlflow_backend, deploy):
    endpoint = create_gateway_endpoint(mlflow_backend.tracking_uri, UNREACHABLE_API_BASE)
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=50, window="daily", action="REJECT", scope="ENDPOINT", target=endpoint.endpoint_id)
    policy.up(**args)
    mlflow_backend.tracking_store().delete_gateway_endpoint(endpoint.endpoint_id)

    # MLflow keeps the policy, which can never match again: refresh shows it, up explains it.
    assert policy_of(mlflow_backend, policy.id).target_value == endpoint.endpoint_id
    assert policy.refresh().outs.get("target") is None
    with pytest.raises(ProviderError) as error:
        policy.up(**args)
    assert f"no AI Gateway endpoint named or with id {endpoint.endpoint_id!r}" in error.value.message


def test_unknown_endpoint_is_a_clear_error(mlflow_backend, deploy):
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    with pytest.raises(ProviderError) as error:
        policy.up(amount_usd=5, window="daily", action="REJECT", scope="ENDPOINT", target="no-such-endpoint")
    assert "no AI Gateway endpoint named or with id 'no-such-endpoint'" in error.value.message
    assert "Create the endpoint first or fix target." in error.value.message


def test_scope_change_updates_in_place_and_clears_the_target(mlflow_backend, deploy):
    endpoint = create_gateway_endpoint(mlflow_backend.tracking_uri, UNREACHABLE_API_BASE)
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    policy.up(amount_usd=100_000, window="daily", action="ALERT", scope="ENDPOINT", target=endpoint.name)
    assert policy.up(amount_usd=100_000, window="daily", action="ALERT", scope="GLOBAL") == "update"
    stored = policy_of(mlflow_backend, policy.id)
    assert (stored.target_scope.value, stored.target_value) == ("GLOBAL", None)
    assert policy.outputs.get("target") is None


def test_read_reports_drift_then_disappearance(mlflow_backend, deploy):
    from mlflow.entities.gateway_budget_policy import BudgetDuration, BudgetDurationUnit

    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=100_000, window="daily", action="ALERT")
    policy.up(**args)
    store = mlflow_backend.tracking_store()
    store.update_budget_policy(policy.id, budget_amount=123_456.0, duration=BudgetDuration(BudgetDurationUnit.HOURS, 3))

    read = policy.refresh()
    assert read.outs["amount_usd"] == 123_456.0
    assert read.outs["window"] == {"unit": "HOURS", "value": 3}
    assert read.inputs["amount_usd"] == 123_456.0
    assert policy.diff(**args).changes == "some"
    assert policy.up(**args) == "update"
    assert policy_of(mlflow_backend, policy.id).budget_amount == 100_000

    store.delete_budget_policy(policy.id)
    assert policy.refresh().id == ""
    assert policy.up(**args) == "create"  # the next `up` recreates it


def test_user_scope(mlflow_backend, deploy):
    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=100_000, window="daily", action="ALERT", scope="USER", target="alice")
    before = len(mlflow_backend.tracking_store().list_budget_policies(max_results=1000))
    if mlflow_backend.kind == "sqlite":
        # A database store has no users: refused at check (preview), before any request.
        outcome = policy.check(**args)
        assert outcome.failed_properties() == {"scope"}
        assert "USER scope needs an MLflow server with authentication" in dict(outcome.failures)["scope"]
    else:
        # The server runs without authentication (`--app-name basic-auth`): refused at create,
        # by us (the server's users API is absent) before the write.
        mark = mlflow_backend.server.mark()
        with pytest.raises(ProviderError) as error:
            policy.up(**args)
        assert "the server runs without authentication" in error.value.message
        assert "--app-name basic-auth" in error.value.message
        assert not [r for r in mlflow_backend.server.requests(mark) if "budgets/create" in r.path]
    assert len(mlflow_backend.tracking_store().list_budget_policies(max_results=1000)) == before


def test_a_different_tracking_server_replaces(mlflow_backend, deploy, provider_server_factory, sqlite_tracking_uri):
    from harness.mlflow_server import provider_env

    policy = deploy(mlflow_backend.provider, GatewayBudgetPolicy)
    args = dict(amount_usd=100_000, window="daily", action="ALERT")
    policy.up(**args)
    old_id = policy.id

    # The same program run with another mlflow:trackingUri (provider servers are per config).
    policy.provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    diff = policy.diff(**args)
    assert (diff.changes, diff.replaces) == ("some", ["tracking_uri"])
    assert policy.up(**args) == "replace"
    assert policy.outputs["tracking_uri"] == sqlite_tracking_uri
    # The old policy was deleted where it lived, the new one exists on the new store.
    assert (
        mlflow_backend.provider.read(
            policy.urn,
            old_id,
            {"tracking_uri": mlflow_backend.tracking_uri, "__provider": policy.outputs["__provider"]},
        ).id
        == ""
    )
    policy.destroy()


def test_concurrent_calls_on_a_fresh_provider_share_one_store(sqlite_tracking_uri, provider_server_factory):
    """The engine sends up to 4 RPCs at once; the first ones race to open (migrate) the store."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.tracking._tracking_service.utils import _get_store

    from harness.mlflow_server import provider_env

    provider = provider_server_factory(config={"mlflow:trackingUri": sqlite_tracking_uri}, env=provider_env())
    urn = provider.urn("pulumi-python:dynamic/mlbudgets:GatewayBudgetPolicy", "p")
    checked = check(provider, amount_usd=10, window="daily", action="ALERT").inputs
    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda _: provider.create(urn, checked), range(8)))
    ids = {policy_id for policy_id, _ in created}
    assert len(ids) == 8
    assert {p.budget_policy_id for p in _get_store(sqlite_tracking_uri).list_budget_policies()} == ids
