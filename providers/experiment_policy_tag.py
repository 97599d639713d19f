"""ExperimentPolicyTag: the experiment tag that picks the budget policy paying for its work.

On Databricks, ``mlflow.workload_creation_policy_id`` on an experiment names the serverless
budget policy billed for its scorers, synthetic evaluation data and agent evaluation.  It is an
``ExperimentTag`` (providers/experiment_tag.py) whose value is called ``policy_id`` and whose key
defaults to that tag.  Existing stacks keep working: the type token and this module's provider
class are the ones their state names.
"""

from __future__ import annotations

from typing import Any

import pulumi

from contracts import BUDGET_POLICY_TAG
from providers._base import DynamicResource, Failures, control_character_failure, quoted
from providers.experiment_tag import (
    EXPERIMENT,
    EXPERIMENT_ID,
    ExperimentTag,
    ExperimentTagProvider,
    tracking_uri_field,
    validate_key,
)
from providers.schema import Field, Schema

# --- constants -----------------------------------------------------------------------------------

DEFAULT_KEY = BUDGET_POLICY_TAG
MAX_POLICY_ID_LENGTH = 20_000  # MLflow's limit on a tag value


# --- field validators ----------------------------------------------------------------------------


def validate_policy_id(policy_id: Any, failures: Failures, prop: str = "policy_id") -> Any:
    policy_id = policy_id.strip() if isinstance(policy_id, str) else policy_id
    if not isinstance(policy_id, str) or not policy_id:
        failures.add(prop, "must be a non-empty budget policy id")
    elif len(policy_id) > MAX_POLICY_ID_LENGTH:
        failures.add(prop, f"must be at most {MAX_POLICY_ID_LENGTH} characters")
    elif reason := control_character_failure(policy_id):
        failures.add(prop, f"{quoted(policy_id)} {reason}")
    return policy_id


def validate_policy_key(key: Any, failures: Failures, prop: str = "key") -> Any:
    return DEFAULT_KEY if key is None else validate_key(key, failures, prop)


# --- provider ------------------------------------------------------------------------------------


SCHEMA = Schema(
    "ExperimentPolicyTag",
    "Tag an MLflow experiment with the budget policy that pays for its serverless work.",
    [
        EXPERIMENT,
        Field("policy_id", "str", "the serverless budget policy's id", validate_policy_id, required=True),
        Field(
            "key",
            "str",
            "the tag's key",
            validate_policy_key,
            default=DEFAULT_KEY,
            replaces=True,
        ),
        EXPERIMENT_ID,
        tracking_uri_field("tag"),
    ],
    base="ExperimentTag",
)


class ExperimentPolicyTagProvider(ExperimentTagProvider):
    value_field = "policy_id"
    schema = SCHEMA


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class ExperimentPolicyTag(ExperimentTag, module="mlbudgets", name="ExperimentPolicyTag"):
    """Tag an MLflow experiment with the budget policy that pays for its serverless work."""

    experiment: pulumi.Output[str]
    policy_id: pulumi.Output[str]
    key: pulumi.Output[str]
    experiment_id: pulumi.Output[str]
    tracking_uri: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        experiment: pulumi.Input[str],
        policy_id: pulumi.Input[str],
        key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param experiment: id or name, e.g. `/Users/me@corp.com/evals`
        :param policy_id: the serverless budget policy's id
        :param key: the tag's key
        """
        props = SCHEMA.props({"experiment": experiment, "policy_id": policy_id, "key": key})
        DynamicResource.__init__(self, ExperimentPolicyTagProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
