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


def load_outputs(text: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputsError(f"stack outputs are not JSON ({error}); use `pulumi stack output --json`") from None
    if not isinstance(outputs, dict):
        raise OutputsError("stack outputs must be a JSON object, as `pulumi stack output --json` prints")
    return outputs


def budgets_of(outputs: Mapping[str, Any]) -> list[BudgetRef]:
    """Every budget in the outputs, teams first (in their order), then budgets of no team."""
    teams = outputs.get("teams") or {}
    standalone = outputs.get("gateway_budgets") or {}
    if not isinstance(teams, Mapping) or not isinstance(standalone, Mapping):
        raise OutputsError("outputs `teams` and `gateway_budgets` must be objects (see the README)")
    if not teams and not standalone:
        raise OutputsError("the outputs hold no `teams` and no `gateway_budgets`: is this an ml-budgets stack?")
    refs: list[BudgetRef] = []
    for team, exports in teams.items():
        exports = exports or {}
        refs += _gateway_refs(
            team,
            f"{team}-gateway",
            exports.get("gateway_alert_policy_ids"),
            exports.get("gateway_hard_stop_policy_id"),
            exports.get("gateway_hard_stop_alert_policy_id"),
        )
        for key, kind in ACCOUNT_BUDGET_KEYS.items():
            if _is_id(exports.get(key)):
                tier = "account budget" if kind == ACCOUNT else "AI Gateway budget"
                refs.append(
                    BudgetRef(
                        team,
                        f"{team}-{'serverless' if kind == ACCOUNT else 'databricks-gateway'}",
                        tier,
                        kind,
                        exports[key],
                    )
                )
    for name, exports in standalone.items():
        exports = exports or {}
        refs += _gateway_refs(
            NO_TEAM,
            name,
            exports.get("alert_policy_ids"),
            exports.get("hard_stop_policy_id"),
            exports.get("hard_stop_alert_policy_id"),
        )
    return refs


def _gateway_refs(
    team: str, budget: str, alert_ids: Any, hard_stop_id: Any, hard_stop_alert_id: Any
) -> list[BudgetRef]:
    refs = []
    for label, policy_id in sorted((alert_ids or {}).items(), key=lambda item: _percent(item[0])):
        if _is_id(policy_id):
            refs.append(BudgetRef(team, budget, f"alert {_percent(label):g}%", GATEWAY, policy_id))
    # The hard stop's announcing ALERT is an alert tier of its own unless a 100 % tier serves.
    if _is_id(hard_stop_alert_id) and hard_stop_alert_id not in {ref.id for ref in refs}:
        refs.append(BudgetRef(team, budget, "hard stop alert", GATEWAY, hard_stop_alert_id))
    if _is_id(hard_stop_id):
        refs.append(BudgetRef(team, budget, "hard stop", GATEWAY, hard_stop_id))
    return refs


def _percent(label: str) -> float:
    match = _PERCENT_LABEL.fullmatch(str(label))
    return float(match.group(1).replace("_", ".")) if match else 0.0


def _is_id(value: Any) -> bool:
    # `pulumi stack output --json` prints "[secret]" for secrets; ids are never secret.
    return isinstance(value, str) and bool(value) and value != "[secret]"


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
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise OutputsError(f"cannot read stack config {path}: {error}") from None
        config = document.get("config") or {}
        # Encrypted values ({secure: …}) need the Pulumi CLI: leave them to env vars.
        return cls({key: value for key, value in config.items() if isinstance(value, (str, int, float, bool))})

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
