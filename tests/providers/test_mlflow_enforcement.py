"""Budgets enforced end to end: our provider configures a running mlflow server whose AI Gateway
endpoint calls a local OpenAI-compatible fake.

Each fake call reports 1,000,000 prompt and 100,000 completion tokens, which ``gpt-4o-mini``'s
bundled prices make $0.21 a call: a $0.50 cap is spent after three calls.
"""

from __future__ import annotations

import pytest
import requests

from harness.mlflow_server import create_gateway_endpoint, provider_env
from harness.provider_server import ProviderServer
from harness.webhook_receiver import signature_is_valid
from providers import BudgetAlertWebhook, GatewayBudgetPolicy

COST_PER_CALL_USD = 0.21


@pytest.fixture(scope="module")
def provider(mlflow_server):
    server = ProviderServer(config={"mlflow:trackingUri": mlflow_server.tracking_uri}, env=provider_env())
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_foreign_server_wide_cap(mlflow_server):
    """The server is shared by the session: a leftover GLOBAL/WORKSPACE REJECT would skew us."""
    from mlflow.tracking._tracking_service.utils import _get_store

    caps = [
        p.budget_policy_id
        for p in _get_store(mlflow_server.tracking_uri).list_budget_policies(max_results=1000)
        if p.budget_action.value == "REJECT" and p.target_scope.value in ("GLOBAL", "WORKSPACE")
    ]
    assert not caps, f"another test left server-wide REJECT policies on the shared server: {caps}"


def invoke(mlflow_server, endpoint_name: str) -> requests.Response:
    return requests.post(
        f"{mlflow_server.url}/gateway/{endpoint_name}/mlflow/invocations",
        json={"messages": [{"role": "user", "content": "How much is left?"}]},
        timeout=30,
    )


def test_reject_policy_answers_429_until_the_amount_is_raised(mlflow_server, provider, deploy, openai_fake):
    endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, openai_fake.url)
    policy = deploy(provider, GatewayBudgetPolicy)
    args = dict(window="daily", action="REJECT", scope="ENDPOINT", target=endpoint.name)
    policy.up(amount_usd=0.50, **args)

    statuses = [invoke(mlflow_server, endpoint.name).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # spend 0.21, 0.42, 0.63 ≥ 0.50: rejected
    assert len(openai_fake.requests) == 3
    rejected = invoke(mlflow_server, endpoint.name)
    assert "Budget limit exceeded" in rejected.json()["detail"]

    assert policy.up(amount_usd=100, **args) == "update"
    assert invoke(mlflow_server, endpoint.name).status_code == 200
    assert len(openai_fake.requests) == 4


class AlertMarkers:
    """Fresh ALERT policies, each on a fresh endpoint and exceeded by one call: the delivery of
    a marker proves the server has fired everything triggered before it, without sleeping.
    (A fresh endpoint each time: spend already in the window would count as exceeded at load,
    and an exceeded-at-load window never fires.)"""

    def __init__(self, mlflow_server, provider, deploy, openai_fake, receiver) -> None:
        self.mlflow_server, self.provider, self.deploy, self.receiver = mlflow_server, provider, deploy, receiver
        self.openai_fake = openai_fake

    def send(self, timeout: float = 5.0) -> bool:
        """Exceed a new marker policy; True once its delivery arrived (False at timeout)."""
        endpoint = create_gateway_endpoint(self.mlflow_server.tracking_uri, self.openai_fake.url)
        marker = self.deploy(self.provider, GatewayBudgetPolicy)
        marker.up(amount_usd=0.01, window="daily", action="ALERT", scope="ENDPOINT", target=endpoint.name)
        assert invoke(self.mlflow_server, endpoint.name).status_code == 200
        arrived = self.receiver.wait_for(
            lambda d: d.json.get("data", {}).get("budget_policy_id") == marker.id, timeout=timeout
        )
        return len(arrived) == 1

    def until_delivered(self, attempts: int = 10) -> None:
        """Send markers until one arrives: the server's webhook cache now lists the receiver."""
        assert any(self.send() for _ in range(attempts)), "the server never delivered to the receiver"


def test_alert_policy_delivers_one_signed_webhook_per_window(
    mlflow_server, provider, deploy, openai_fake, webhook_receiver
):
    secret = "whsec-test-only-signing-key"
    endpoint = create_gateway_endpoint(mlflow_server.tracking_uri, openai_fake.url)
    hook = deploy(provider, BudgetAlertWebhook)
    hook.up(webhook_name=f"alerts-{endpoint.name}", url=webhook_receiver.url, secret=secret)
    markers = AlertMarkers(mlflow_server, provider, deploy, openai_fake, webhook_receiver)
    # The server caches its list of webhooks (MLFLOW_WEBHOOK_CACHE_TTL): wait until it lists ours.
    markers.until_delivered()
    policy = deploy(provider, GatewayBudgetPolicy)
    policy.up(amount_usd=0.30, window="daily", action="ALERT", scope="ENDPOINT", target=endpoint.name)

    statuses = [invoke(mlflow_server, endpoint.name).status_code for _ in range(5)]
    assert statuses == [200] * 5  # ALERT lets traffic flow

    def ours(delivery):
        return delivery.json.get("data", {}).get("budget_policy_id") == policy.id

    assert len(webhook_receiver.wait_for(ours, count=1)) == 1
    # More spend in the same window, then a marker sent after it: once the marker has arrived,
    # a second delivery for our window would have been fired before it.
    assert invoke(mlflow_server, endpoint.name).status_code == 200
    assert markers.send(), "the marker after the extra spend was not delivered"
    deliveries = webhook_receiver.matching(ours)
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery.event == "budget_policy.exceeded"
    assert delivery.json["data"]["target_value"] == endpoint.endpoint_id
    assert delivery.json["data"]["current_spend"] >= 0.30
    assert signature_is_valid(delivery, secret)
    assert not signature_is_valid(delivery, "another-secret")
