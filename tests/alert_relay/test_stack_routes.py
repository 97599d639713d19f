"""The IaC side of the relay: hard stops paired with an alert, and webhook URLs built from ids."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from alert_relay.config import parse_config
from components.gateway_budget import GatewayBudget, GatewayBudgetArgs, RelayRoute, WebhookArgs
from harness.provider_server import PROJECT_ROOT
from harness.pulumi_program import RecordingMocks, run_program, unwrap
from stack_config import StackConfigError, parse_stack_config

RELAY = RelayRoute(url="https://alert-relay.example.com/", route="search")


class PolicyIdMocks(RecordingMocks):
    """Gateway policies get ids derived from their name and a generation (a replace = a new id)."""

    def __init__(self, generation: int = 1) -> None:
        super().__init__()
        self.generation = generation

    def new_resource(self, args):
        resource_id, outputs = super().new_resource(args)
        if args.typ.endswith("GatewayBudgetPolicy"):
            outputs["budget_policy_id"] = f"bp-{args.name}-{self.generation}"
        return resource_id, outputs


def declared(args: GatewayBudgetArgs, mocks=None) -> dict:
    mocks = run_program(lambda: GatewayBudget("search-gateway", args), mocks or PolicyIdMocks())
    return {r.name: unwrap(r.inputs) for r in mocks.registrations if r.custom}


def webhook_query(resources: dict) -> tuple[str, dict]:
    url = resources["search-gateway-webhook"]["url"]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def test_a_hard_stop_is_paired_with_an_alert_at_the_same_amount_and_marked_in_the_relay_url():
    resources = declared(
        GatewayBudgetArgs(limit_usd=200, alert_thresholds=(50, 80), webhook=WebhookArgs(relay=RELAY, secret="whsec"))
    )
    stop, alert = resources["search-gateway-hard-stop"], resources["search-gateway-hard-stop-alert"]
    assert (stop["action"], stop["amount_usd"]) == ("REJECT", 200)
    assert (alert["action"], alert["amount_usd"]) == ("ALERT", 200)
    base, query = webhook_query(resources)
    assert base == "https://alert-relay.example.com/mlflow/search"
    assert query == {
        "policy": ["bp-search-gateway-alert-50pct-1", "bp-search-gateway-alert-80pct-1"],
        "hard_stop": ["bp-search-gateway-hard-stop-alert-1"],
    }
    assert resources["search-gateway-webhook"]["secret"] == "whsec"


def test_an_alert_tier_at_100_percent_is_the_hard_stops_announcement():
    resources = declared(
        GatewayBudgetArgs(limit_usd=10, alert_thresholds=(50, 100), webhook=WebhookArgs(relay=RELAY, secret="whsec"))
    )
    assert "search-gateway-hard-stop-alert" not in resources
    assert webhook_query(resources)[1] == {
        "policy": ["bp-search-gateway-alert-50pct-1"],
        "hard_stop": ["bp-search-gateway-alert-100pct-1"],
    }


def test_recreated_policies_update_the_webhook_url_by_themselves():
    args = GatewayBudgetArgs(limit_usd=10, alert_thresholds=(50,), webhook=WebhookArgs(relay=RELAY, secret="k"))
    before = webhook_query(declared(args, PolicyIdMocks(generation=1)))[1]
    after = webhook_query(declared(args, PolicyIdMocks(generation=2)))[1]
    assert before["policy"] == ["bp-search-gateway-alert-50pct-1"]
    assert after["policy"] == ["bp-search-gateway-alert-50pct-2"]


def test_without_a_hard_stop_nothing_is_marked():
    resources = declared(
        GatewayBudgetArgs(
            limit_usd=10, alert_thresholds=(80,), hard_stop=False, webhook=WebhookArgs(relay=RELAY, secret="k")
        )
    )
    assert webhook_query(resources)[1] == {"policy": ["bp-search-gateway-alert-80pct-1"]}


@pytest.mark.parametrize(
    "webhook, relay, expected",
    [
        ({"route": "search"}, None, "ml-budgets:teams[0].gateway.webhook.route: needs ml-budgets:alertRelay.url"),
        (
            {"route": "search"},
            {"url": "https://relay.example.com"},
            "ml-budgets:teams[0].gateway.webhook.secret: is required with `route`",
        ),
        (
            {"route": "search", "url": "https://x.example.com/h", "secret": "k"},
            {"url": "https://relay.example.com"},
            "ml-budgets:teams[0].gateway.webhook.route: set either `route`",
        ),
        ({"route": "no spaces", "secret": "k"}, {"url": "https://relay.example.com"}, "must be a relay route name"),
        (
            {"route": "search", "secret": "k"},
            {"url": "ftp://relay.example.com"},
            "ml-budgets:alertRelay.url: scheme must be https",
        ),
    ],
)
def test_relay_route_config_errors_name_the_path(webhook, relay, expected):
    teams = [{"name": "search", "gateway": {"limitUsd": 5, "webhook": webhook}}]
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(teams, None, relay)
    assert expected in str(error.value)


def test_a_hard_stop_no_webhook_hears_is_a_config_error():
    teams = [{"name": "search", "gateway": {"limitUsd": 5, "alertThresholds": [], "hardStop": True}}]
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(teams, None)
    assert "ml-budgets:teams[0].gateway.webhook: is required: hardStop announces itself" in str(error.value)


def test_relay_routes_hear_only_their_own_budget_so_each_alerting_budget_needs_one():
    relay = {"url": "https://relay.example.com"}
    teams = [
        {"name": "search", "gateway": {"limitUsd": 5, "webhook": {"route": "search", "secret": "k"}}},
        {"name": "recsys", "gateway": {"limitUsd": 5, "alertThresholds": [80]}},
    ]
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(teams, None, relay)
    assert "ml-budgets:teams[1].gateway.webhook: is required" in str(error.value)


def test_the_local_stack_and_its_relay_config_agree_on_routes():
    stack = yaml.safe_load((PROJECT_ROOT / "Pulumi.local.yaml").read_text())["config"]
    parsed = parse_stack_config(
        stack["ml-budgets:teams"], stack["ml-budgets:gatewayBudgets"], stack["ml-budgets:alertRelay"]
    )
    webhooks = [t.gateway.webhook for t in parsed.teams if t.gateway] + [
        g.webhook for g in parsed.gateway_budgets.values()
    ]
    relay = parse_config(
        yaml.safe_load((PROJECT_ROOT / "alert-relay.local.yaml").read_text()),
        PROJECT_ROOT,
        env={"SEARCH_WEBHOOK_SECRET": "local-only-search-key", "PLATFORM_WEBHOOK_SECRET": "local-only-platform-key"},
    )
    assert {w.relay.route: w.secret for w in webhooks} == {name: r.secret for name, r in relay.routes.items()}
    assert all(w.relay.url == "http://127.0.0.1:8486" for w in webhooks)


def test_the_local_relay_configs_commented_destinations_parse_once_uncommented():
    text = (PROJECT_ROOT / "alert-relay.local.yaml").read_text()
    optional = ("# slack:", "# pagerduty:", "#   routing_key:")
    uncommented = "\n".join(
        line.replace("# ", "", 1) if line.lstrip().startswith(optional) else line for line in text.splitlines()
    )
    assert uncommented != text
    env = {
        "SEARCH_WEBHOOK_SECRET": "local-only-search-key",
        "PLATFORM_WEBHOOK_SECRET": "local-only-platform-key",
        "SEARCH_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
        "SEARCH_PD_KEY": "r" * 32,
    }
    search = parse_config(yaml.safe_load(uncommented), PROJECT_ROOT, env=env).routes["search"]
    assert set(search.destinations()) == {"slack", "pagerduty", "webhook"}
    assert search.pagerduty is not None and search.pagerduty.routing_key == "r" * 32


def test_the_prod_relay_example_serves_every_route_of_the_prod_stack():
    stack = yaml.safe_load((PROJECT_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    routes = {t["gateway"]["webhook"]["route"] for t in stack["ml-budgets:teams"] if "gateway" in t}
    routes |= {g["webhook"]["route"] for g in stack["ml-budgets:gatewayBudgets"]}
    example = yaml.safe_load((PROJECT_ROOT / "alert_relay" / "relay.example.yaml").read_text())
    env = {
        name: "https://hooks.slack.com/services/T/B/x" if name.endswith("_URL") else "x" * 32
        for name in _env_names(example)
    }
    relay = parse_config(example, PROJECT_ROOT, env=env)
    assert set(relay.routes) == routes


def _env_names(value) -> set[str]:
    import re

    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", yaml.safe_dump(value)))


def test_a_relay_url_mlflow_could_not_store_is_refused_at_preview():
    relay = {"url": "https://alert-relay.internal.example.com"}

    def gateway(thresholds):
        return [
            {
                "name": "search",
                "gateway": {
                    "limitUsd": 5,
                    "alertThresholds": thresholds,
                    "webhook": {"route": "search", "secret": "k"},
                },
            }
        ]

    assert parse_stack_config(gateway([10, 20, 30, 40, 50, 60, 70, 80, 90]), None, relay)  # 487 characters
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(gateway([5, 10, 20, 30, 40, 50, 60, 70, 80, 90]), None, relay)
    assert "ml-budgets:teams[0].gateway.alertThresholds: has too many tiers for one relay webhook" in str(error.value)
    assert "would be 530 characters, MLflow stores at most 500" in str(error.value)


def test_the_webhook_resource_refuses_a_url_longer_than_mlflow_stores():
    from providers._base import Failures
    from providers.budget_alert_webhook import validate_url

    failures = Failures()
    validate_url("https://relay.example.com/mlflow/search?" + "policy=bp-x&" * 40, failures)
    assert [f.reason for f in failures.items] == ["must be at most 500 characters (MLflow's limit), got 520"]
