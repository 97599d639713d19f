"""The keys of the stack config (``ml-budgets:*``), declared once: ``stack_config.py`` accepts
exactly these (an unknown key is reported with the valid ones), and ``python -m providers.codegen``
writes ``stack-config.schema.json`` from them, the JSON Schema editors use to complete and check
``Pulumi.<stack>.yaml`` (``# yaml-language-server: $schema=./stack-config.schema.json``).

The values' rules live with the code that checks them (the providers' validators, read by
``stack_config.py``); the JSON Schema carries the types and the simple bounds.
"""

from __future__ import annotations

from typing import Any

from providers.schema import Field, Schema

NAMESPACE = "ml-budgets"

_USD = {"type": "number", "exclusiveMinimum": 0}
_EMAILS = {"type": "array", "items": {"type": "string", "format": "email"}}
_PERCENTAGES = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}}
_WORKSPACE_IDS = {"type": "array", "items": {"type": ["integer", "string"]}}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_FLAG = {"type": "boolean"}
_PRICE = {"type": "number", "minimum": 0}
_SCOPES = ("GLOBAL", "WORKSPACE", "ENDPOINT", "USER")
# Set with `pulumi config set --secret --path ...`, the stack file holds {secure: <ciphertext>}.
_SECRET_STRING = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"]},
    ]
}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}
_WINDOW = {
    "oneOf": [
        {"enum": ["daily", "weekly", "monthly"]},
        {
            "type": "object",
            "properties": {
                "unit": {"enum": ["MINUTES", "HOURS", "DAYS", "WEEKS", "MONTHS"]},
                "value": {"type": "integer", "minimum": 1},
            },
            "required": ["unit", "value"],
            "additionalProperties": False,
        },
    ]
}


def _key(name: str, annotation: str, doc: str, json_schema: dict[str, Any], **kw: Any) -> Field:
    return Field(name, annotation, doc, json_schema=json_schema, config_key=name, **kw)


SERVERLESS = Schema(
    "serverless",
    "a Databricks serverless budget policy, optionally with a monthly dollar limit (an account budget)",
    [
        _key("policyName", "str", "default: the team name", {"type": "string"}),
        _key("customTags", "dict", "tag -> value; `team: <name>` is added unless set here", {"type": "object"}),
        _key("workspaceIds", "list", "workspaces the policy is bound to (default: none)", _WORKSPACE_IDS),
        _key("users", "list", "User role: may use the policy", _STRINGS),
        _key("managers", "list", "Manager role: may also edit it and its grants", _STRINGS),
        _key("authoritativeGrants", "bool", "true: the rule set is exactly users + managers", _FLAG, default=False),
        _key("experiments", "list", "MLflow experiments (ids or names) whose evaluations it pays for", _STRINGS),
        _key("evalTokenBudget", "int", "deprecated: evaluation.maxTokens", {"type": "integer", "minimum": 1}),
        _key("monthlyLimitUsd", "float", "an account budget over the usage carrying this policy's tags", _USD),
        _key("alertThresholds", "list", "% of monthlyLimitUsd; at most 4", _PERCENTAGES, default=[50, 80, 100]),
        _key("notify", "list", "who gets the alert emails (required with monthlyLimitUsd)", _EMAILS),
    ],
)
DATABRICKS_GATEWAY = Schema(
    "databricksGateway",
    "a Databricks AI Gateway budget (an account budget of resource type AI_GATEWAY)",
    [
        _key("monthlyLimitUsd", "float", "the team's monthly cap", _USD, required=True),
        _key("alertThresholds", "list", "% of the cap (100: the cap alert); 3 more", _PERCENTAGES, default=[50, 80]),
        _key("hardStop", "bool", "block AI Gateway usage at the cap", _FLAG, default=True),
        _key("notify", "list", "emailed at every threshold and at the cap", _EMAILS),
        _key("perUserLimitUsd", "float", "each user's own monthly limit", _USD),
        _key("perUserHardStop", "bool", "block a user at their limit", _FLAG, default=True),
        _key(
            "overrides",
            "dict",
            "account principal id -> its per-user limit in US dollars",
            {"type": "object", "additionalProperties": _USD},
        ),
        _key("tags", "dict", "usage tags to count; `team: [<name>]` is always added", {"type": "object"}),
        _key("workspaceIds", "list", "default: all workspaces", _WORKSPACE_IDS),
        _key("includeExternalSpend", "bool", "count third-party spend too; fixed at creation", _FLAG, default=False),
        _key("displayName", "str", 'default: "<team> AI Gateway"', {"type": "string"}),
    ],
)
WEBHOOK = Schema(
    "webhook",
    "where a gateway budget's alerts go: a relay route, or a receiver URL",
    [
        _key("url", "str", "a receiver that hears every alert of the server", _SECRET_STRING),
        _key("route", "str", "a route of the alert relay: only this budget's alerts", {"type": "string"}),
        _key("secret", "str", "HMAC key for X-MLflow-Signature (required with route)", _SECRET_STRING),
        _key("events", "list", "default [budget_policy.exceeded]", _STRINGS),
        _key("description", "str", "the webhook's description", {"type": "string"}),
        _key("active", "bool", "default true", _FLAG, default=True),
    ],
)
GATEWAY = Schema(
    "gateway",
    "an MLflow AI Gateway spend limit",
    [
        _key("limitUsd", "float", "$0.01 to $10^9 (each alert threshold too)", _USD, required=True),
        _key("window", "str", "daily | weekly | monthly | {unit, value}, at most a year", _WINDOW, default="monthly"),
        _key(
            "scope",
            "str",
            "GLOBAL | WORKSPACE | ENDPOINT | USER",
            {"enum": ["GLOBAL", "WORKSPACE", "ENDPOINT", "USER"]},
        ),
        _key("target", "str", "ENDPOINT: endpoint name or id; USER: a username", {"type": "string"}),
        _key("alertThresholds", "list", "ALERT policies at % of limitUsd", _PERCENTAGES, default=[50, 80]),
        _key("hardStop", "bool", "a REJECT policy at 100 % (HTTP 429)", _FLAG, default=True),
        _key("webhook", "dict", WEBHOOK.doc, {"$ref": "#/$defs/webhook"}),
        _key("allowUntracked", "bool", "accept an ENDPOINT budget MLflow cannot count", _FLAG, default=False),
    ],
)
EVALUATION = Schema(
    "evaluation",
    "a token budget for mlflow.genai.evaluate() runs",
    [
        _key("experiments", "list", "default: serverless.experiments", _STRINGS),
        _key("maxTokens", "int", "the ceiling per evaluation run", {"type": "integer", "minimum": 1}, required=True),
        _key("onExceed", "str", "raise: stop at the ceiling | warn: log and go on", {"enum": ["raise", "warn"]}),
        _key("pricePer1kTokens", "float", "US dollars per 1,000 tokens, to report cost", _PRICE),
    ],
)
TEAM = Schema(
    "team",
    "a team's budgets",
    [
        _key("name", "str", "1-40 of a-z 0-9 -; names the team's resources", _NAME, required=True),
        _key("serverless", "dict", SERVERLESS.doc, {"$ref": "#/$defs/serverless"}),
        _key("gateway", "dict", GATEWAY.doc, {"$ref": "#/$defs/gateway"}),
        _key("databricksGateway", "dict", DATABRICKS_GATEWAY.doc, {"$ref": "#/$defs/databricksGateway"}),
        _key("evaluation", "dict", EVALUATION.doc, {"$ref": "#/$defs/evaluation"}),
    ],
)
ALERT_RELAY = Schema(
    "alertRelay",
    "the alert relay, for webhook routes",
    [_key("url", "str", "the relay's base URL", {"type": "string"})],
)
MLFLOW_SERVER = Schema(
    "mlflowServer",
    "how the MLflow server tracks gateway budgets",
    [
        _key("workers", "int", "the server's workers (MLflow's default 4)", {"type": "integer", "minimum": 1}),
        _key("budgetTracker", "str", "how workers share spend", {"enum": ["in-memory", "redis"]}),
        _key(
            "budgetRefreshIntervalSeconds",
            "int",
            "MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL (600 s default)",
            {"type": "integer", "minimum": 1},
        ),
    ],
)
SECTIONS = (SERVERLESS, DATABRICKS_GATEWAY, WEBHOOK, GATEWAY, EVALUATION, TEAM, ALERT_RELAY, MLFLOW_SERVER)


def keys(section: Schema) -> tuple[str, ...]:
    """The config keys of a section, in declaration order."""
    return tuple(f.name for f in section.fields)


def _object(section: Schema, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in section.fields:
        prop = dict(f.json_schema)
        prop["description"] = f.doc
        if f.default is not None:
            prop["default"] = f.default
        properties[f.name] = prop
    properties.update(extra or {})
    required = [f.name for f in section.fields if f.required]
    schema: dict[str, Any] = {"type": "object", "description": section.doc, "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``Pulumi.<stack>.yaml`` file: ``config`` with the ml-budgets keys
    (other namespaces, e.g. ``databricks:*`` and ``mlflow:*``, are left to their providers)."""
    gateway_budget = _object(GATEWAY, {"name": {**_NAME, "description": "same rules as a team name"}})
    gateway_budget["required"] = ["name", *gateway_budget.get("required", [])]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ml-budgets stack config (Pulumi.<stack>.yaml)",
        "description": "Generated from stack_config_schema.py by `python -m providers.codegen`: do not edit.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {
                    f"{NAMESPACE}:teams": {"type": "array", "items": {"$ref": "#/$defs/team"}},
                    f"{NAMESPACE}:gatewayBudgets": {"type": "array", "items": gateway_budget},
                    f"{NAMESPACE}:alertRelay": {"$ref": "#/$defs/alertRelay"},
                    f"{NAMESPACE}:mlflowServer": {"$ref": "#/$defs/mlflowServer"},
                },
                # Any other ml-budgets key is a typo (other namespaces belong to their providers).
                "patternProperties": {f"^{NAMESPACE}:(?!(teams|gatewayBudgets|alertRelay|mlflowServer)$)": False},
            }
        },
        "$defs": {section.resource: _object(section) for section in SECTIONS},
    }


def key_path(section: Schema, path: str, key: str) -> str:
    """The config path of ``key`` of the ``section`` object at ``path``; a key the section does
    not declare is a bug in the caller, not in the config."""
    if key not in keys(section):
        raise KeyError(f"{section.resource} declares no config key {key!r}")
    return f"{path}.{key}"
