"""The stack config of ml-budgets: parsed, validated and turned into component arguments.

Everything lives under the project namespace ``ml-budgets``:

* ``ml-budgets:teams``: a list of teams, each with an optional ``serverless`` budget (Databricks
  serverless usage policy, optionally with a monthly dollar limit), an optional ``gateway`` budget
  (MLflow AI Gateway), an optional ``databricksGateway`` budget (Databricks AI Gateway) and an
  optional ``evaluation`` token budget (tags read by ``evaluation.TokenBudgetEvaluator.from_experiment``);
* ``ml-budgets:gatewayBudgets``: gateway budgets that belong to no team (a global cap, say);
* ``ml-budgets:alertRelay``: ``{url}`` of the alert relay, for webhooks given as a relay ``route``;
* ``ml-budgets:mlflowServer``: how the MLflow server tracks gateway budgets (``workers``,
  ``budgetTracker``, ``budgetRefreshIntervalSeconds``): when every worker enforces a cap, and a
  warning at preview for a multi-worker server without Redis (each worker counts its own spend).

Every problem is reported at once, each naming its config path (``ml-budgets:teams[1].gateway
.limitUsd``) and what would be valid, before any resource is declared.  Field values are checked
by the providers' own field validators (the ones their ``check()`` runs), collected in the
providers' ``Failures``, so config and preview never disagree.  This module maps YAML to the
components' Args; each Args checks what it will declare itself (``validate(path, failures)``,
config keys from ``stack_config_schema``), and the checks across budgets live with the components.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

import stack_config_schema as config_schema
from components import alert_tiers
from components.databricks_gateway_budget import DatabricksGatewayBudgetArgs
from components.evaluation_budget import EvaluationBudgetArgs
from components.gateway_budget import (
    GatewayBudgetArgs,
    MlflowServerTracking,
    WebhookArgs,
    check_alerts_reach_a_webhook,
    relay_route,
)
from components.serverless_budget import ServerlessBudgetArgs
from components.team_budget import TeamBudgetArgs, check_teams_do_not_share
from contracts import ON_EXCEED_MODES, RAISE
from providers.core import Failures
from stack_config_schema import keys

NAMESPACE = "ml-budgets"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class StackConfigError(pulumi.RunError):
    """Stack config is invalid; the message lists every problem with its config path."""


@dataclass
class TeamConfig(TeamBudgetArgs):
    name: str = ""


@dataclass
class StackConfig:
    teams: list[TeamConfig] = field(default_factory=list)
    gateway_budgets: dict[str, GatewayBudgetArgs] = field(default_factory=dict)
    mlflow_server: MlflowServerTracking | None = None


def _raise_if_any(problems: Failures) -> None:
    if problems:
        lines = [f"{failure.property}: {failure.reason}" for failure in problems.items]
        raise StackConfigError(
            "invalid stack config (see the README's stack config reference):\n  - " + "\n  - ".join(lines)
        )


class _Reader:
    """Typed access to one config object, recording problems under its path."""

    def __init__(self, value: Any, path: str, problems: Failures, known: tuple[str, ...]) -> None:
        self.path = path
        self.problems = problems
        self.value = value if isinstance(value, Mapping) else {}
        if not isinstance(value, Mapping):
            problems.add(path, f"must be an object with fields {', '.join(known)}")
        for key in self.value:
            if key not in known:
                problems.add(f"{path}.{key}", f"unknown field; valid fields: {', '.join(known)}")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False, what: str = ""
    ) -> Any:
        if key not in self.value or self.value[key] is None:
            if required:
                self.problems.add(self.at(key), f"is required ({what})" if what else "is required")
            return default
        value = self.value[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            self.problems.add(self.at(key), f"must be {what or _kind_name(kind)}, got {value!r}")
            return default
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "an object",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# ---- teams --------------------------------------------------------------------------------

SERVERLESS_FIELDS = keys(config_schema.SERVERLESS)
DATABRICKS_GATEWAY_FIELDS = keys(config_schema.DATABRICKS_GATEWAY)
EVALUATION_FIELDS = keys(config_schema.EVALUATION)
GATEWAY_FIELDS = keys(config_schema.GATEWAY)
WEBHOOK_FIELDS = keys(config_schema.WEBHOOK)
RELAY_FIELDS = keys(config_schema.ALERT_RELAY)
MLFLOW_SERVER_FIELDS = keys(config_schema.MLFLOW_SERVER)
TEAM_FIELDS = keys(config_schema.TEAM)


def _serverless(team: str, value: Any, path: str, problems: Failures) -> tuple[ServerlessBudgetArgs, int | None]:
    """The serverless budget, and the token ceiling of the deprecated ``evalTokenBudget`` if set."""
    reader = _Reader(value, path, problems, SERVERLESS_FIELDS)
    custom_tags = reader.get("customTags", dict, {}, what='an object of tag key to value, e.g. {"cost-center": "1234"}')
    experiments = reader.get("experiments", list, [], what="a list of experiment ids or names")
    token_budget = _max_tokens(reader, "evalTokenBudget", problems)
    if token_budget is not None and not experiments:
        problems.add(reader.at("evalTokenBudget"), "needs `experiments`: the token budget is set as a tag on them")
    limit, thresholds, notify = _dollar_budget(reader, problems)
    args = ServerlessBudgetArgs(
        policy_name=reader.get("policyName", str, team),
        monthly_limit_usd=limit,
        alert_thresholds=thresholds,
        notify=notify,
        custom_tags={"team": team, **custom_tags},
        workspace_ids=reader.get("workspaceIds", list, []),
        users=reader.get("users", list, []),
        managers=reader.get("managers", list, []),
        authoritative_grants=reader.get("authoritativeGrants", bool, False),
        experiments=experiments,
    )
    args.validate(path, problems)
    return args, token_budget


def _max_tokens(reader: _Reader, key: str, problems: Failures, required: bool = False) -> int | None:
    what = "a whole number of tokens > 0"
    tokens: int | None = reader.get(key, int, None, required=required, what=what)
    if tokens is not None and tokens <= 0:
        problems.add(reader.at(key), f"must be {what}, got {tokens}")
        return None
    return tokens


def _evaluation(value: Any, path: str, problems: Failures, team_experiments: list[str]) -> EvaluationBudgetArgs:
    from providers import experiment_tag as tag

    reader = _Reader(value, path, problems, EVALUATION_FIELDS)
    experiments = reader.get("experiments", list, None, what="a list of experiment ids or names")
    if experiments is None:
        experiments = list(team_experiments)
        if not experiments:
            problems.add(
                reader.at("experiments"),
                "is required (the team's serverless budget lists no experiments): "
                "the token budget is set as tags on them",
            )
    experiments = [
        tag.validate_experiment(experiment, problems, f"{reader.at('experiments')}[{i}]")
        for i, experiment in enumerate(experiments)
    ]
    args = EvaluationBudgetArgs(
        experiments=[e for e in experiments if isinstance(e, str) and e],
        max_tokens=_max_tokens(reader, "maxTokens", problems, required=True) or 0,
        on_exceed=reader.get("onExceed", str, RAISE, what=" or ".join(repr(m) for m in ON_EXCEED_MODES)),
        price_per_1k_tokens=reader.get(
            "pricePer1kTokens", float, None, what="US dollars per 1,000 tokens, zero or more"
        ),
    )
    args.validate(path, problems)
    return args


def _percentages(reader: _Reader, default: list[float]) -> list[float]:
    thresholds = reader.get("alertThresholds", list, default, what="a list of percentages of the monthly limit")
    return alert_tiers.validate_percentages(thresholds, reader.problems, reader.at("alertThresholds"))


def _limit(reader: _Reader, key: str, required: bool = False) -> float | None:
    limit: float | None = reader.get(
        key, float, None, required=required, what="monthly list-price US dollars, a number > 0"
    )
    if limit is not None and limit <= 0:
        reader.problems.add(reader.at(key), f"must be monthly list-price US dollars, a number > 0, got {limit!r}")
        return None
    return limit


def _dollar_budget(reader: _Reader, problems: Failures) -> tuple[float | None, list[float], list[str]]:
    """A serverless budget's monthly dollar limit, alert thresholds and addresses."""
    limit = _limit(reader, "monthlyLimitUsd")
    thresholds = _percentages(reader, [50, 80, 100])
    notify = reader.get("notify", list, [], what="a list of email addresses")
    if "monthlyLimitUsd" not in reader.value:
        for key in ("alertThresholds", "notify"):
            if key in reader.value:
                problems.add(
                    reader.at(key), "needs `monthlyLimitUsd`: alerts are percentages of the monthly dollar limit"
                )
    return limit, thresholds, notify


def _databricks_gateway(team: str, value: Any, path: str, problems: Failures) -> DatabricksGatewayBudgetArgs:
    reader = _Reader(value, path, problems, DATABRICKS_GATEWAY_FIELDS)
    overrides = reader.get("overrides", dict, {}, what="an object of account principal id to dollars")
    tags = reader.get("tags", dict, {}, what='an object of tag key to a list of values, e.g. {"env": ["prod"]}')
    display_name: str = reader.get("displayName", str, None) or f"{team} AI Gateway"
    args = DatabricksGatewayBudgetArgs(
        monthly_limit_usd=_limit(reader, "monthlyLimitUsd", required=True) or 1.0,
        notify=reader.get("notify", list, [], what="a list of email addresses"),
        alert_thresholds=_percentages(reader, [50, 80]),
        hard_stop=reader.get("hardStop", bool, True),
        per_user_limit_usd=_limit(reader, "perUserLimitUsd"),
        per_user_hard_stop=reader.get("perUserHardStop", bool, True),
        overrides={str(k): v for k, v in overrides.items()},
        tags={"team": [team], **tags},
        workspace_ids=reader.get("workspaceIds", list, []),
        include_external_spend=reader.get("includeExternalSpend", bool, False),
        display_name=display_name,
    )
    args.validate(path, problems)
    return args


def _webhook(value: Any, path: str, problems: Failures, relay_url: str | None = None) -> WebhookArgs:
    reader = _Reader(value, path, problems, WEBHOOK_FIELDS)
    route = reader.get("route", str, None, what="a route name of the alert relay's config")
    url = reader.get(
        "url",
        str,
        None,
        required=route is None,
        what="the alert relay `route`, or a receiver's https URL that hears every alert",
    )
    webhook = WebhookArgs(
        url=url,
        secret=reader.get("secret", str, None),
        events=reader.get("events", list, None),
        description=reader.get("description", str, None),
        active=reader.get("active", bool, True),
    )
    webhook.validate(path, problems)
    if route is not None:
        webhook.relay = relay_route(route, relay_url, webhook, path, problems)
    return webhook


def _alert_relay(value: Any, problems: Failures) -> str | None:
    from providers import budget_alert_webhook as hook

    if value is None:
        return None
    reader = _Reader(value, f"{NAMESPACE}:alertRelay", problems, RELAY_FIELDS)
    url = reader.get(
        "url", str, None, required=True, what="the relay's base URL, e.g. https://alert-relay.internal.example.com"
    )
    if url is None:
        return None
    errors = len(problems.items)
    hook.validate_url(url, problems, reader.at("url"))
    return url.rstrip("/") if len(problems.items) == errors else None


def _mlflow_server(value: Any, problems: Failures) -> MlflowServerTracking | None:
    from providers import gateway_enforcement as enforcement

    if value is None:
        return None
    reader = _Reader(value, f"{NAMESPACE}:mlflowServer", problems, MLFLOW_SERVER_FIELDS)
    raw = reader.value
    return MlflowServerTracking(
        workers=enforcement.validate_workers(raw.get("workers"), problems, reader.at("workers")),
        budget_tracker=enforcement.validate_tracker(raw.get("budgetTracker"), problems, reader.at("budgetTracker")),
        refresh_interval_seconds=enforcement.validate_refresh_interval(
            raw.get("budgetRefreshIntervalSeconds"), problems, reader.at("budgetRefreshIntervalSeconds")
        ),
    )


def _gateway(value: Any, path: str, problems: Failures, relay_url: str | None = None) -> GatewayBudgetArgs:
    from providers import gateway_budget_policy

    reader = _Reader(value, path, problems, GATEWAY_FIELDS)
    limit = reader.get("limitUsd", float, None, required=True, what="the cap in US dollars, a number > 0")
    window = reader.get("window", (str, dict), "monthly", what='"daily", "weekly", "monthly" or {unit, value}')
    raw_thresholds = reader.get("alertThresholds", list, [50, 80], what="a list of percentages of limitUsd")
    hard_stop = reader.get("hardStop", bool, True)
    allow_untracked = reader.get("allowUntracked", bool, False)
    thresholds = alert_tiers.validate_percentages(raw_thresholds, problems, reader.at("alertThresholds"))
    if limit is not None and limit > 0:
        # Each alert tier is a policy of its own: its amount has the same bounds.
        for percent in thresholds:
            if reason := alert_tiers.tier_failure(limit, percent):
                i = next(i for i, p in enumerate(raw_thresholds) if p == percent)
                problems.add(f"{reader.at('alertThresholds')}[{i}]", f"{percent:g}% of limitUsd {reason}")
    webhook = (
        _webhook(reader.value["webhook"], reader.at("webhook"), problems, relay_url)
        if "webhook" in reader.value
        else None
    )
    if limit is not None:
        gateway_budget_policy.validate_amount(limit, problems, reader.at("limitUsd"))
    args = GatewayBudgetArgs(
        limit_usd=limit or 0.0,
        window=window,
        scope=reader.get("scope", str, "GLOBAL"),
        target=reader.get("target", str, None),
        alert_thresholds=thresholds,
        hard_stop=hard_stop,
        webhook=webhook,
        allow_untracked=allow_untracked,
        declared_at=path,
    )
    args.validate(path, problems)
    return args


def _name(value: Any, path: str, problems: Failures, seen: set[str]) -> str | None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        problems.add(
            path, f"must be 1-40 lowercase letters, digits or '-', starting with a letter or digit; got {value!r}"
        )
        return None
    if value in seen:
        problems.add(
            path, f"{value!r} is already taken (names must be unique; a team's gateway budget is `<team>-gateway`)"
        )
    seen.add(value)
    return value


def parse_stack_config(
    teams: Any,
    gateway_budgets: Any,
    alert_relay: Any = None,
    mlflow_server: Any = None,
    tracking_uri: str | None = None,
) -> StackConfig:
    """Validate raw config values (as ``pulumi.Config.get_object`` returns them)."""
    problems = Failures()
    config = StackConfig(mlflow_server=_mlflow_server(mlflow_server, problems))
    relay_url = _alert_relay(alert_relay, problems)
    if not isinstance(teams or [], list):
        problems.add(f"{NAMESPACE}:teams", "must be a list of teams")
        teams = []
    team_names: set[str] = set()
    for i, raw in enumerate(teams or []):
        config.teams.append(_team(i, raw, problems, team_names, relay_url))

    if not isinstance(gateway_budgets or [], list):
        problems.add(f"{NAMESPACE}:gatewayBudgets", "must be a list of gateway budgets")
        gateway_budgets = []
    # A team's gateway budget is the component `<team>-gateway`: a standalone one may not take that name.
    budget_names = {f"{team}-gateway" for team in team_names}
    for i, raw in enumerate(gateway_budgets or []):
        path = f"{NAMESPACE}:gatewayBudgets[{i}]"
        raw_fields = dict(raw) if isinstance(raw, Mapping) else raw
        raw_name = raw_fields.pop("name", None) if isinstance(raw_fields, dict) else None
        name = _name(raw_name, f"{path}.name", problems, budget_names)
        config.gateway_budgets[name or f"gateway-{i}"] = _gateway(raw_fields, path, problems, relay_url)
    gateway_paths = [(f"{NAMESPACE}:teams[{i}].gateway", t.gateway) for i, t in enumerate(config.teams) if t.gateway]
    gateway_paths += [(f"{NAMESPACE}:gatewayBudgets[{i}]", g) for i, g in enumerate(config.gateway_budgets.values())]
    check_alerts_reach_a_webhook(gateway_paths, problems)
    check_teams_do_not_share(config.teams, f"{NAMESPACE}:teams", problems)
    _raise_if_any(problems)
    for gateway in [t.gateway for t in config.teams if t.gateway] + list(config.gateway_budgets.values()):
        gateway.server = config.mlflow_server
    gateways = [t.gateway for t in config.teams if t.gateway] + list(config.gateway_budgets.values())
    server = config.mlflow_server or MlflowServerTracking()
    server.say_when_caps_are_enforced(gateways, tracking_uri, f"{NAMESPACE}:mlflowServer")
    return config


def _team(index: int, raw: Any, problems: Failures, seen: set[str], relay_url: str | None = None) -> TeamConfig:
    path = f"{NAMESPACE}:teams[{index}]"
    parts = tuple(key for key in TEAM_FIELDS if key != "name")
    reader = _Reader(raw, path, problems, TEAM_FIELDS)
    name = _name(reader.value.get("name"), reader.at("name"), problems, seen)
    if not any(reader.value.get(part) is not None for part in parts):
        problems.add(path, "declares none of `serverless`, `gateway`, `databricksGateway`, `evaluation`")
    team = TeamConfig(name=name or f"team-{index}")
    legacy_tokens = None
    if reader.value.get("serverless") is not None:
        team.serverless, legacy_tokens = _serverless(
            team.name, reader.value["serverless"], reader.at("serverless"), problems
        )
    if reader.value.get("gateway") is not None:
        team.gateway = _gateway(reader.value["gateway"], reader.at("gateway"), problems, relay_url)
    if reader.value.get("databricksGateway") is not None:
        team.databricks_gateway = _databricks_gateway(
            team.name, reader.value["databricksGateway"], reader.at("databricksGateway"), problems
        )
    experiments = list(team.serverless.experiments) if team.serverless else []
    if reader.value.get("evaluation") is not None:
        team.evaluation = _evaluation(reader.value["evaluation"], reader.at("evaluation"), problems, experiments)
    if legacy_tokens is not None:
        old, new = f"{reader.at('serverless')}.evalTokenBudget", f"{reader.at('evaluation')}.maxTokens"
        if team.evaluation is not None:
            problems.add(old, f"is replaced by {new}: remove it")
        else:
            pulumi.log.warn(f"{old} is deprecated and will be removed: set {new} instead (same value)")
            team.evaluation = EvaluationBudgetArgs(experiments=experiments, max_tokens=legacy_tokens)
    return team


def load_stack_config(config: pulumi.Config | None = None) -> StackConfig:
    config = config or pulumi.Config(NAMESPACE)
    return parse_stack_config(
        config.get_object("teams"),
        config.get_object("gatewayBudgets"),
        config.get_object("alertRelay"),
        config.get_object("mlflowServer"),
        pulumi.Config("mlflow").get("trackingUri") or os.environ.get("MLFLOW_TRACKING_URI"),
    )
