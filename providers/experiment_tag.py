"""ExperimentTag: one tag (key, value) on an MLflow experiment.

The experiment is given by id or by name (``/Users/me@corp.com/evals``); the tag lives on the
experiment the name resolved to when it was set.  ``ExperimentPolicyTag``
(providers/experiment_policy_tag.py) is this resource for the budget-policy tag, with the value
called ``policy_id``: a provider subclass names the value field (``value_field``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from contracts import BUDGET_POLICY_TAG
from providers._base import (
    DynamicResource,
    Failures,
    api_error,
    control_character_failure,
    gone,
    quoted,
)
from providers._mlflow import (
    MlflowProvider,
    MlflowProviderError,
    TrackingServer,
    comparable_tracking_uri,
    error_code,
    is_not_found,
    raise_mlflow_error,
    tracking_store,
)
from providers.schema import Field, Schema

if TYPE_CHECKING:
    from mlflow.entities import Experiment
    from mlflow.store.tracking.abstract_store import AbstractStore as TrackingStore

# --- constants -----------------------------------------------------------------------------------


MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 20_000
# MLflow's tag names: alphanumerics, '_', '-', '.', ' ', ':' and '/', and no path tricks.
TAG_KEY = re.compile(r"[/\w.\- :]+")
# MLflow keeps its own state in `mlflow.*` experiment tags (mlflow.note.content is the
# experiment's description): only the ones these resources exist to set may be written.
RESERVED_KEY_PREFIX = "mlflow."
OWNED_MLFLOW_KEYS = (BUDGET_POLICY_TAG,)


# --- field validators ----------------------------------------------------------------------------


def validate_key(key: Any, failures: Failures, prop: str = "key") -> Any:
    if reason := _key_problem(key):
        failures.add(prop, reason)
    return key


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "must be a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"must be at most {MAX_KEY_LENGTH} characters (got {len(key)})"
    if not TAG_KEY.fullmatch(key):
        return "may only contain letters, digits, '_', '-', '.', ' ', ':' and '/'"
    if key.startswith(RESERVED_KEY_PREFIX) and key not in OWNED_MLFLOW_KEYS:
        return (
            f"{quoted(key)} is reserved by MLflow (its 'mlflow.' tags hold the experiment's own "
            f"state, e.g. mlflow.note.content is its description); use {BUDGET_POLICY_TAG} or a key of your own"
        )
    normalized = posixpath.normpath(key)
    if normalized != key or normalized == "." or normalized.startswith(("..", "/")):
        return f"must be a plain relative path (it would resolve to {quoted(normalized)})"
    return None


def validate_value(value: Any, failures: Failures, prop: str = "value") -> Any:
    if not isinstance(value, str):
        failures.add(prop, f"must be a string (got {type(value).__name__})")
    elif len(value) > MAX_VALUE_LENGTH:
        failures.add(prop, f"must be at most {MAX_VALUE_LENGTH} characters (got {len(value)})")
    return value


def validate_experiment(experiment: Any, failures: Failures, prop: str = "experiment") -> Any:
    experiment = experiment.strip() if isinstance(experiment, str) else experiment
    if not isinstance(experiment, str) or not experiment:
        failures.add(prop, "must be an experiment id or name, e.g. '/Users/me@corp.com/evals'")
    elif reason := control_character_failure(experiment):
        failures.add(prop, f"{quoted(experiment)} {reason}")
    return experiment


def tracking_uri_field(thing: str) -> Field:
    return Field(
        "tracking_uri",
        "str",
        f"the MLflow tracking server the {thing} lives in (credentials removed)",
        computed_input=True,
        replaces=True,
        compare=lambda uri: comparable_tracking_uri("tracking_uri", uri),
    )


EXPERIMENT = Field(
    "experiment",
    "str",
    "id or name, e.g. `/Users/me@corp.com/evals`",
    validate_experiment,
    required=True,
    replaces=True,
)
EXPERIMENT_ID = Field("experiment_id", "str", "the experiment's id", output=True)
SCHEMA = Schema(
    "ExperimentTag",
    "A tag (``key`` = ``value``) on an MLflow experiment, given by id or name.",
    [
        EXPERIMENT,
        Field(
            "key",
            "str",
            "`mlflow.*` keys other than `mlflow.workload_creation_policy_id` are MLflow's own (e.g. "
            "`mlflow.note.content` is the description) and are refused",
            validate_key,
            required=True,
            replaces=True,
        ),
        Field("value", "str", "a string, ≤ 20,000 characters", validate_value, required=True),
        EXPERIMENT_ID,
        tracking_uri_field("tag"),
    ],
)


# --- wire conversion (MLflow calls) --------------------------------------------------------------


def find_experiment(store: TrackingStore, experiment: str) -> Experiment | None:
    """The experiment named by ``experiment`` (an id, else a name), or None."""
    found: Experiment | None  # the store's lookups are unannotated in mlflow
    if experiment.isdigit():
        try:
            found = store.get_experiment(experiment)
            return found
        except Exception as error:  # noqa: BLE001
            if not is_not_found(error):
                raise
    found = store.get_experiment_by_name(experiment)
    return found


def require_active_experiment(store: TrackingStore, server: TrackingServer, experiment: str) -> Experiment:
    try:
        found = find_experiment(store, experiment)
    except Exception as error:  # noqa: BLE001
        raise_mlflow_error("look up", "experiment", experiment, server, error)
    where = f"on {server.public_uri}"
    if found is None:
        raise api_error(
            "find",
            "experiment",
            experiment,
            f"no experiment with id or name {quoted(experiment)}",
            "Create it first or fix the name.",
            where,
            MlflowProviderError,
        )
    if found.lifecycle_stage != "active":
        raise api_error(
            "use",
            "experiment",
            experiment,
            "it is deleted",
            "Restore it or choose another experiment.",
            where,
            MlflowProviderError,
        )
    return found


def get_active_experiment(store: TrackingStore, server: TrackingServer, experiment_id: str) -> Experiment | None:
    """The experiment if it exists and is not deleted, else None."""
    try:
        experiment = store.get_experiment(experiment_id)
    except Exception as error:  # noqa: BLE001
        if is_not_found(error):
            return None
        raise_mlflow_error("read", "experiment", experiment_id, server, error)
    return experiment if experiment.lifecycle_stage == "active" else None


def set_tag(store: TrackingStore, server: TrackingServer, experiment_id: str, key: str, value: str) -> None:
    from mlflow.entities import ExperimentTag

    try:
        store.set_experiment_tag(experiment_id, ExperimentTag(key, value))
    except Exception as error:  # noqa: BLE001
        raise_mlflow_error("set", "experiment tag", tag_id(experiment_id, key), server, error)


def is_inactive_experiment(error: BaseException) -> bool:
    """MLflow's answer to a write on a deleted experiment (INVALID_PARAMETER_VALUE, by message)."""
    return error_code(error) == "INVALID_PARAMETER_VALUE" and "must be in the 'active' state" in str(error)


def try_set_tag(store: TrackingStore, server: TrackingServer, experiment_id: str, key: str, value: str) -> bool:
    """Set the tag; False if the experiment does not exist or is deleted."""
    from mlflow.entities import ExperimentTag

    try:
        store.set_experiment_tag(experiment_id, ExperimentTag(key, value))
    except Exception as error:  # noqa: BLE001
        if is_not_found(error) or is_inactive_experiment(error):
            return False
        raise_mlflow_error("set", "experiment tag", tag_id(experiment_id, key), server, error)
    return True


def tag_id(experiment_id: str, key: str) -> str:
    return f"{experiment_id}/{key}"


def parse_tag_id(id_: str) -> tuple[str, str]:
    experiment_id, _, key = id_.partition("/")
    return experiment_id, key


def outputs_of(
    declared: Mapping[str, Any], experiment_id: str, value: str, server: TrackingServer, value_field: str
) -> dict[str, Any]:
    return {
        "experiment": declared.get("experiment") or experiment_id,
        value_field: value,
        "key": declared["key"],
        "experiment_id": experiment_id,
        "tracking_uri": server.public_uri,
    }


# --- provider ------------------------------------------------------------------------------------


class ExperimentTagProvider(MlflowProvider):
    value_field = "value"
    schema = SCHEMA

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = self.schema.check(news)
        self.record_tracking_uri(inputs, failures)
        return failures.result(inputs)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = self.schema.diff(self._upgraded(olds), news)
        # Old and new may be the same tag (an experiment renamed to its id, a server alias):
        # removing the old one after setting the new one would remove the new one too.
        result.delete_before_replace = bool(result.replaces)
        return result

    def create(self, props: dict[str, Any]) -> CreateResult:
        server = self.configured_server()
        store = tracking_store(server)
        experiment = props["experiment"]
        # An id needs no lookup: MLflow refuses a tag on a missing or deleted experiment, and only
        # then do we look it up, to say which of the two it is.
        if not (experiment.isdigit() and try_set_tag(store, server, experiment, props["key"], props[self.value_field])):
            experiment = require_active_experiment(store, server, experiment).experiment_id
            set_tag(store, server, experiment, props["key"], props[self.value_field])
        outs = outputs_of(props, experiment, props[self.value_field], server, self.value_field)
        return CreateResult(tag_id(experiment, props["key"]), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        server = self.server_for(props.get("tracking_uri"))
        experiment_id, key = parse_tag_id(id_)
        experiment_id = props.get("experiment_id") or experiment_id
        key = props.get("key") or key
        experiment = get_active_experiment(tracking_store(server), server, experiment_id)
        value = experiment.tags.get(key) if experiment is not None else None
        if value is None:
            return gone()
        outs = outputs_of(dict(props, key=key), experiment_id, value, server, self.value_field)
        inputs = {name: outs[name] for name in ("experiment", self.value_field, "key", "tracking_uri")}
        return ReadResult(tag_id(experiment_id, key), outs, inputs=inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        server = self.server_for(olds.get("tracking_uri"))
        store = tracking_store(server)
        experiment_id = olds.get("experiment_id") or parse_tag_id(id_)[0]
        if not try_set_tag(store, server, experiment_id, news["key"], news[self.value_field]):
            raise api_error(
                "set",
                "experiment tag",
                id_,
                "its experiment no longer exists or is deleted",
                "Run `pulumi refresh`.",
                f"on {server.public_uri}",
                MlflowProviderError,
            )
        return UpdateResult(outputs_of(news, experiment_id, news[self.value_field], server, self.value_field))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        server = self.server_for(props.get("tracking_uri"))
        store = tracking_store(server)
        experiment_id = props.get("experiment_id") or parse_tag_id(id_)[0]
        key = props.get("key") or parse_tag_id(id_)[1]
        try:
            store.delete_experiment_tag(experiment_id, key)
        except Exception as error:  # noqa: BLE001
            # Gone already: the tag, the experiment, or a deleted experiment (which takes its tags).
            if not (is_not_found(error) or is_inactive_experiment(error)):
                raise_mlflow_error("delete", "experiment tag", tag_id(experiment_id, key), server, error)

    def _upgraded(self, olds: Mapping[str, Any]) -> Mapping[str, Any]:
        # A tag recorded by ExperimentPolicyTag (value in policy_id) and now declared as an
        # ExperimentTag (EvaluationBudget's tags were such tags before): same value, no change.
        if self.value_field in olds or "policy_id" not in olds:
            return olds
        return {**olds, self.value_field: olds["policy_id"]}


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class ExperimentTag(DynamicResource, module="mlbudgets", name="ExperimentTag"):
    """A tag (``key`` = ``value``) on an MLflow experiment, given by id or name."""

    experiment: pulumi.Output[str]
    key: pulumi.Output[str]
    value: pulumi.Output[str]
    experiment_id: pulumi.Output[str]
    tracking_uri: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        experiment: pulumi.Input[str],
        key: pulumi.Input[str],
        value: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param experiment: id or name, e.g. `/Users/me@corp.com/evals`
        :param key: `mlflow.*` keys other than `mlflow.workload_creation_policy_id` are MLflow's own (e.g.
            `mlflow.note.content` is the description) and are refused
        :param value: a string, ≤ 20,000 characters
        """
        props = SCHEMA.props({"experiment": experiment, "key": key, "value": value})
        DynamicResource.__init__(self, ExperimentTagProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
