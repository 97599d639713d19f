"""What a stack manages, read from its outputs, and where its servers are, from its config.

The outputs (``pulumi stack output --json``, piped or saved to a file) are the only input from
Pulumi: a machine without the Pulumi CLI can run the status.  They say which budgets belong to
which team (``teams.<team>``: ``gateway_alert_policy_ids``, ``gateway_hard_stop_policy_id``,
``gateway_hard_stop_alert_policy_id``, ``budget_id``, ``databricks_gateway_budget_id``;
``gateway_budgets.<name>``: budgets of no team).

Servers and credentials are resolved as the providers resolve them: stack config
(``Pulumi.<stack>.yaml``: ``mlflow:trackingUri``, ``databricks:host``, ``databricks:accountId``,
…), then the environment (``MLFLOW_TRACKING_URI``, MLflow's and the databricks-sdk's own
variables and profiles).  Encrypted config values (``secure:``) cannot be read without Pulumi:
give those credentials through the environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_TEAM = "(no team)"
GATEWAY = "mlflow-gateway"
ACCOUNT = "databricks-budget"
ACCOUNT_GATEWAY = "databricks-ai-gateway"
# Team export keys that hold Databricks account budget ids, and what kind each is.
ACCOUNT_BUDGET_KEYS = {"budget_id": ACCOUNT, "databricks_gateway_budget_id": ACCOUNT_GATEWAY}
_PERCENT_LABEL = re.compile(r"(\d+(?:_\d+)?)pct")
MAX_ID_LENGTH = 200  # budget policy ids are 35 characters, budget ids 36


class OutputsError(ValueError):
    """The outputs are not what ``pulumi stack output --json`` gives for this project."""


@dataclass(frozen=True)
class BudgetRef:
    """One budget the stack manages: whose it is and where it lives."""

    team: str
    budget: str  # the component (``search-gateway``) or standalone budget name
    tier: str  # "alert 50%", "hard stop", "account budget", "AI Gateway budget"
    kind: str  # GATEWAY | ACCOUNT | ACCOUNT_GATEWAY
    id: str


def decode_outputs(data: bytes) -> str:
    """The outputs file's text: UTF-8, or UTF-16/32 as JSON allows (PowerShell 5's ``>`` writes
    UTF-16 with a byte order mark), told apart by the BOM or the pattern of NUL bytes."""
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise OutputsError(
            f"stack outputs are not valid {encoding.upper().removesuffix('-SIG')} (byte {error.start}); "
            "save them with `pulumi stack output --json > outputs.json`"
        ) from None


def load_outputs(text: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputsError(f"stack outputs are not JSON ({error}); use `pulumi stack output --json`") from None
    except RecursionError:
        raise OutputsError("stack outputs are nested too deeply to be `pulumi stack output --json`") from None
    if not isinstance(outputs, dict):
        raise OutputsError("stack outputs must be a JSON object, as `pulumi stack output --json` prints")
    return outputs


def budgets_of(outputs: Mapping[str, Any]) -> list[BudgetRef]:
    """Every budget in the outputs, teams first (in their order), then budgets of no team.

    Anything of the wrong shape is an ``OutputsError`` naming where it is; outputs naming no
    budget at all are one too (an empty status would read as an all-clear)."""
    teams = _object(outputs.get("teams"), "teams")
    standalone = _object(outputs.get("gateway_budgets"), "gateway_budgets")
    if not teams and not standalone:
        raise OutputsError("the outputs hold no `teams` and no `gateway_budgets`: is this an ml-budgets stack?")
    refs: list[BudgetRef] = []
    for team, exports in teams.items():
        where = f"teams.{_label(team)}"
        exports = _object(exports, where)
        refs += _gateway_refs(
            team,
            f"{team}-gateway",
            where,
            exports,
            ("gateway_alert_policy_ids", "gateway_hard_stop_policy_id", "gateway_hard_stop_alert_policy_id"),
        )
        for key, kind in ACCOUNT_BUDGET_KEYS.items():
            budget_id = _id(exports.get(key), f"{where}.{key}")
            if budget_id:
                tier = "account budget" if kind == ACCOUNT else "AI Gateway budget"
                name = f"{team}-{'serverless' if kind == ACCOUNT else 'databricks-gateway'}"
                refs.append(BudgetRef(team, name, tier, kind, budget_id))
    for name, exports in standalone.items():
        where = f"gateway_budgets.{_label(name)}"
        refs += _gateway_refs(
            NO_TEAM,
            name,
            where,
            _object(exports, where),
            ("alert_policy_ids", "hard_stop_policy_id", "hard_stop_alert_policy_id"),
        )
    if not refs:
        raise OutputsError(
            "the outputs name no budget id (teams.<team>: gateway_alert_policy_ids, gateway_hard_stop_policy_id, "
            "budget_id, databricks_gateway_budget_id; gateway_budgets.<name>: alert_policy_ids, "
            "hard_stop_policy_id): nothing to check"
        )
    return refs


def _gateway_refs(
    team: str, budget: str, where: str, exports: Mapping[str, Any], keys: tuple[str, str, str]
) -> list[BudgetRef]:
    alerts_key, hard_stop_key, hard_stop_alert_key = keys
    alert_ids = _object(exports.get(alerts_key), f"{where}.{alerts_key}")
    refs = []
    for label, value in sorted(alert_ids.items(), key=lambda item: _percent(item[0])):
        policy_id = _id(value, f"{where}.{alerts_key}.{_label(label)}")
        if policy_id:
            refs.append(BudgetRef(team, budget, f"alert {_percent(label):g}%", GATEWAY, policy_id))
    hard_stop_id = _id(exports.get(hard_stop_key), f"{where}.{hard_stop_key}")
    hard_stop_alert_id = _id(exports.get(hard_stop_alert_key), f"{where}.{hard_stop_alert_key}")
    # The hard stop's announcing ALERT is an alert tier of its own unless a 100 % tier serves.
    if hard_stop_alert_id and hard_stop_alert_id not in {ref.id for ref in refs}:
        refs.append(BudgetRef(team, budget, "hard stop alert", GATEWAY, hard_stop_alert_id))
    if hard_stop_id:
        refs.append(BudgetRef(team, budget, "hard stop", GATEWAY, hard_stop_id))
    return refs


def _percent(label: str) -> float:
    match = _PERCENT_LABEL.fullmatch(str(label))
    return float(match.group(1).replace("_", ".")) if match else 0.0


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OutputsError(f"outputs `{where}` must be an object, not {_kind(value)} (see the README)")
    return value


def _id(value: Any, where: str) -> str | None:
    """An id, or None where the output is absent or hidden.

    `pulumi stack output --json` prints "[secret]" for secrets; ids are never secret here."""
    if value is None or value == "[secret]":
        return None
    if not isinstance(value, str) or not value.strip():
        raise OutputsError(f"outputs `{where}` must be an id (a non-empty string), not {_kind(value)}")
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise OutputsError(f"outputs `{where}` is not an id: {_shown(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {_shown(value)}"
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _label(value: Any) -> str:
    """A key or value from the outputs, bounded and without control characters, for messages."""
    text = str(value)
    return "".join(ch if ch.isprintable() else "?" for ch in text[:60]) + ("…" if len(text) > 60 else "")


def _shown(value: Any) -> str:
    return f"'{_label(value)}'"


# --- provider config: stack config file, then environment --------------------------------------


class StackConfigFile:
    """The plain values of ``Pulumi.<stack>.yaml`` (``config.get(key)`` as Pulumi config has it)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    @classmethod
    def load(cls, path: Path | None) -> StackConfigFile:
        if path is None:
            return cls({})
        import yaml

        try:
            document = yaml.safe_load(path.read_bytes()) or {}  # bytes: YAML reads UTF-8/16 by their BOM
        except OSError as error:
            raise OutputsError(f"cannot read stack config {path}: {error.strerror or error}") from None
        except yaml.MarkedYAMLError as error:
            # Not str(error): it quotes the offending line, which may hold a credential.
            mark = error.problem_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise OutputsError(f"stack config {path} is not valid YAML: {error.problem}{where}") from None
        except (yaml.YAMLError, ValueError) as error:  # ValueError: not UTF-8/16 (UnicodeDecodeError)
            raise OutputsError(f"stack config {path} is not readable YAML: {type(error).__name__}") from None
        config = (document.get("config") or {}) if isinstance(document, dict) else None
        if not isinstance(config, dict):
            raise OutputsError(f"stack config {path}: `config:` must be a mapping, as in Pulumi.<stack>.yaml files")
        # Encrypted values ({secure: …}) need the Pulumi CLI: leave them to env vars.
        return cls({str(key): value for key, value in config.items() if isinstance(value, (str, int, float, bool))})

    def get(self, key: str) -> str | None:
        value = self._values.get(key)
        return None if value is None else str(value)


def stack_config_path(stack: str | None, project_dir: Path, explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if stack is None:
        return None
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise OutputsError(f"no stack config {path}; pass --config FILE or leave --stack out to use env vars")
    return path
