"""The stack config of ml-budgets: parsed, validated and turned into component arguments.

Everything lives under the project namespace ``ml-budgets``:

* ``ml-budgets:teams``: a list of teams, each with an optional ``serverless`` budget (Databricks),
  an optional ``gateway`` budget (MLflow AI Gateway) and an optional ``evaluation`` token budget
  (tags read by ``evaluation.TokenBudgetEvaluator.from_experiment``);
* ``ml-budgets:gatewayBudgets``: gateway budgets that belong to no team (a global cap, say).

Every problem is reported at once, each naming its config path (``ml-budgets:teams[1].gateway
.limitUsd``) and what would be valid, before any resource is declared.  Field values are checked
by the providers' own field validators (the ones their ``check()`` runs), collected in the
providers' ``Failures``, so config and preview never disagree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi

from components.evaluation_budget import EvaluationBudgetArgs
from components.gateway_budget import GatewayBudgetArgs, WebhookArgs
from contracts import ON_EXCEED_MODES, RAISE
from components.serverless_budget import ServerlessBudgetArgs
from providers._base import Failures

NAMESPACE = "ml-budgets"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class StackConfigError(pulumi.RunError):
    """Stack config is invalid; the message lists every problem with its config path."""


@dataclass
class TeamConfig:
    name: str
    serverless: Optional[ServerlessBudgetArgs] = None
    gateway: Optional[GatewayBudgetArgs] = None
    evaluation: Optional[EvaluationBudgetArgs] = None


@dataclass
class StackConfig:
    teams: list[TeamConfig] = field(default_factory=list)
    gateway_budgets: dict[str, GatewayBudgetArgs] = field(default_factory=dict)


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

    def get(self, key: str, kind: type | tuple, default: Any = None, required: bool = False, what: str = "") -> Any:
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


def _kind_name(kind: type | tuple) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# ---- teams --------------------------------------------------------------------------------

SERVERLESS_FIELDS = (
    "policyName", "customTags", "workspaceIds", "users", "managers",
    "authoritativeGrants", "experiments",
    "evalTokenBudget",  # deprecated: evaluation.maxTokens
)
EVALUATION_FIELDS = ("experiments", "maxTokens", "onExceed", "pricePer1kTokens")
GATEWAY_FIELDS = ("limitUsd", "window", "scope", "target", "alertThresholds", "hardStop", "webhook")
WEBHOOK_FIELDS = ("url", "secret", "events", "description", "active")


def _serverless(team: str, value: Any, path: str, problems: Failures) -> tuple[ServerlessBudgetArgs, Optional[int]]:
    """The serverless budget, and the token ceiling of the deprecated ``evalTokenBudget`` if set."""
    from providers import budget_policy_grants as grants
    from providers import experiment_policy_tag as tag
    from providers import serverless_budget_policy as policy

    reader = _Reader(value, path, problems, SERVERLESS_FIELDS)
    custom_tags = reader.get("customTags", dict, {}, what='an object of tag key to value, e.g. {"cost-center": "1234"}')
    policy_name = policy.validate_policy_name(reader.get("policyName", str, team), problems, reader.at("policyName"))
    custom_tags = policy.validate_custom_tags({"team": team, **custom_tags}, problems, reader.at("customTags"))
    workspace_ids = policy.validate_workspace_ids(reader.get("workspaceIds", list, []), problems, reader.at("workspaceIds"))
    users = grants.validate_principals(reader.get("users", list, []), problems, reader.at("users"))
    managers = grants.validate_principals(reader.get("managers", list, []), problems, reader.at("managers"))
    authoritative = reader.get("authoritativeGrants", bool, False)
    experiments = reader.get("experiments", list, [], what="a list of experiment ids or names")
    experiments = [
        tag.validate_experiment(experiment, problems, f"{reader.at('experiments')}[{i}]")
        for i, experiment in enumerate(experiments)
    ]
    token_budget = _max_tokens(reader, "evalTokenBudget", problems)
    if token_budget is not None and not experiments:
        problems.add(reader.at("evalTokenBudget"), "needs `experiments`: the token budget is set as a tag on them")
    return ServerlessBudgetArgs(
        policy_name=policy_name,
        custom_tags=custom_tags or {},
        workspace_ids=workspace_ids or [],
        users=users or [],
        managers=managers or [],
        authoritative_grants=authoritative,
        experiments=[e for e in experiments if isinstance(e, str) and e],
    ), token_budget


def _max_tokens(reader: "_Reader", key: str, problems: Failures, required: bool = False) -> Optional[int]:
    what = "a whole number of tokens > 0"
    tokens = reader.get(key, int, None, required=required, what=what)
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
            problems.add(reader.at("experiments"), "is required (the team's serverless budget lists no experiments): "
                         "the token budget is set as tags on them")
    experiments = [
        tag.validate_experiment(experiment, problems, f"{reader.at('experiments')}[{i}]")
        for i, experiment in enumerate(experiments)
    ]
    on_exceed = reader.get("onExceed", str, RAISE, what=" or ".join(repr(m) for m in ON_EXCEED_MODES))
    if on_exceed not in ON_EXCEED_MODES:
        problems.add(reader.at("onExceed"), f"must be {' or '.join(repr(m) for m in ON_EXCEED_MODES)}, got {on_exceed!r}")
    price = reader.get("pricePer1kTokens", float, None, what="US dollars per 1,000 tokens, zero or more")
    if price is not None and not (math.isfinite(price) and price >= 0):
        problems.add(reader.at("pricePer1kTokens"), f"must be US dollars per 1,000 tokens, zero or more, got {price!r}")
    return EvaluationBudgetArgs(
        experiments=[e for e in experiments if isinstance(e, str) and e],
        max_tokens=_max_tokens(reader, "maxTokens", problems, required=True) or 0,
        on_exceed=on_exceed,
        price_per_1k_tokens=price,
    )


def _webhook(value: Any, path: str, problems: Failures) -> WebhookArgs:
    from providers import budget_alert_webhook as hook

    reader = _Reader(value, path, problems, WEBHOOK_FIELDS)
    url = reader.get("url", str, None, required=True, what="the receiver's https URL, e.g. a Slack incoming webhook")
    if url is not None:
        hook.validate_url(url, problems, reader.at("url"))
    events = reader.get("events", list, None)
    if events is not None:
        events = hook.validate_events(events, problems, reader.at("events"))
    return WebhookArgs(
        url=url,
        secret=hook.validate_secret(reader.get("secret", str, None), problems, reader.at("secret")),
        events=events,
        description=reader.get("description", str, None),
        active=reader.get("active", bool, True),
    )


def _gateway(value: Any, path: str, problems: Failures) -> GatewayBudgetArgs:
    from providers import gateway_budget_policy

    reader = _Reader(value, path, problems, GATEWAY_FIELDS)
    limit = reader.get("limitUsd", float, None, required=True, what="the cap in US dollars, a number > 0")
    window = reader.get("window", (str, dict), "monthly", what='"daily", "weekly", "monthly" or {unit, value}')
    thresholds = reader.get("alertThresholds", list, [50, 80], what="a list of percentages of limitUsd")
    hard_stop = reader.get("hardStop", bool, True)
    for i, pct in enumerate(thresholds):
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 < pct <= 100:
            problems.add(f"{reader.at('alertThresholds')}[{i}]", f"must be a percentage in (0, 100], got {pct!r}")
    if len(set(thresholds)) != len(thresholds):
        problems.add(reader.at("alertThresholds"), "lists the same percentage twice")
    webhook = _webhook(reader.value["webhook"], reader.at("webhook"), problems) if "webhook" in reader.value else None
    if not thresholds and not hard_stop:
        problems.add(path, "declares nothing: set alertThresholds, hardStop: true, or both")
    if limit is not None:
        gateway_budget_policy.validate_amount(limit, problems, reader.at("limitUsd"))
    window = gateway_budget_policy.validate_window(window, problems, reader.at("window"))
    scope = gateway_budget_policy.validate_scope(reader.get("scope", str, "GLOBAL"), problems, reader.at("scope"))
    target = gateway_budget_policy.validate_target(reader.get("target", str, None), problems, reader.at("target"), scope)
    return GatewayBudgetArgs(
        limit_usd=limit or 0.0,
        window=window,
        scope=scope,
        target=target,
        alert_thresholds=[float(p) for p in thresholds if isinstance(p, (int, float)) and not isinstance(p, bool)],
        hard_stop=hard_stop,
        webhook=webhook,
    )


def _name(value: Any, path: str, problems: Failures, seen: set[str]) -> Optional[str]:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        problems.add(path, f"must be 1-40 lowercase letters, digits or '-', starting with a letter or digit; got {value!r}")
        return None
    if value in seen:
        problems.add(path, f"{value!r} is already taken (names must be unique; a team's gateway budget is `<team>-gateway`)")
    seen.add(value)
    return value


def parse_stack_config(teams: Any, gateway_budgets: Any) -> StackConfig:
    """Validate raw config values (as ``pulumi.Config.get_object`` returns them)."""
    problems = Failures()
    config = StackConfig()
    if not isinstance(teams or [], list):
        problems.add(f"{NAMESPACE}:teams", "must be a list of teams")
        teams = []
    team_names: set[str] = set()
    for i, raw in enumerate(teams or []):
        config.teams.append(_team(i, raw, problems, team_names))

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
        config.gateway_budgets[name or f"gateway-{i}"] = _gateway(raw_fields, path, problems)
    _check_alerts_have_a_webhook(config, problems)
    _check_teams_do_not_share(config, problems)
    _raise_if_any(problems)
    return config


def _check_alerts_have_a_webhook(config: StackConfig, problems: Failures) -> None:
    # MLflow sends every budget alert to every subscribed webhook, so one webhook anywhere in the
    # stack receives them all; alerts with none at all would fire into the void.
    gateways = [(f"{NAMESPACE}:teams[{i}].gateway", t.gateway) for i, t in enumerate(config.teams) if t.gateway]
    gateways += [(f"{NAMESPACE}:gatewayBudgets[{i}]", g) for i, g in enumerate(config.gateway_budgets.values())]
    if any(g.webhook for _, g in gateways):
        return
    for path, gateway in gateways:
        if gateway.alert_thresholds:
            problems.add(f"{path}.webhook", "is required: alertThresholds fire alerts, and no gateway budget "
                         "in this stack declares a webhook to receive them")


def _check_teams_do_not_share(config: StackConfig, problems: Failures) -> None:
    """Two resources must not manage one object: a policy name or an experiment's tags."""
    policy_names: dict[str, int] = {}
    experiments: dict[str, int] = {}
    for i, team in enumerate(config.teams):
        if not team.serverless:
            continue
        path = f"{NAMESPACE}:teams[{i}].serverless"
        name = team.serverless.policy_name
        if name in policy_names:
            problems.add(f"{path}.policyName", f"{name!r} is also the policy of teams[{policy_names[name]}]; policy names are unique in an account")
        policy_names.setdefault(name, i)
        for j, experiment in enumerate(team.serverless.experiments):
            if experiment in experiments:
                owner = experiments[experiment]
                where = "this team" if owner == i else f"teams[{owner}]"
                problems.add(f"{path}.experiments[{j}]", f"{experiment!r} is already listed by {where}; an experiment has one budget policy")
            experiments.setdefault(experiment, i)
    _check_one_evaluation_budget_per_experiment(config, problems)


def _check_one_evaluation_budget_per_experiment(config: StackConfig, problems: Failures) -> None:
    owners: dict[str, int] = {}
    for i, team in enumerate(config.teams):
        for j, experiment in enumerate(team.evaluation.experiments if team.evaluation else []):
            if experiment in owners:
                where = "this team" if owners[experiment] == i else f"teams[{owners[experiment]}]"
                problems.add(f"{NAMESPACE}:teams[{i}].evaluation.experiments[{j}]",
                             f"{experiment!r} already has a token budget from {where}; an experiment has one")
            owners.setdefault(experiment, i)


def _team(index: int, raw: Any, problems: Failures, seen: set[str]) -> TeamConfig:
    path = f"{NAMESPACE}:teams[{index}]"
    reader = _Reader(raw, path, problems, ("name", "serverless", "gateway", "evaluation"))
    name = _name(reader.value.get("name"), reader.at("name"), problems, seen)
    if not any(reader.value.get(part) is not None for part in ("serverless", "gateway", "evaluation")):
        problems.add(path, "declares none of `serverless`, `gateway`, `evaluation`")
    team = TeamConfig(name=name or f"team-{index}")
    legacy_tokens = None
    if reader.value.get("serverless") is not None:
        team.serverless, legacy_tokens = _serverless(team.name, reader.value["serverless"], reader.at("serverless"), problems)
    if reader.value.get("gateway") is not None:
        team.gateway = _gateway(reader.value["gateway"], reader.at("gateway"), problems)
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


def load_stack_config(config: Optional[pulumi.Config] = None) -> StackConfig:
    config = config or pulumi.Config(NAMESPACE)
    return parse_stack_config(config.get_object("teams"), config.get_object("gatewayBudgets"))
