"""BudgetAlertWebhook: an MLflow webhook that posts ``budget_policy.exceeded`` to a receiver.

Slack and PagerDuty URLs carry tokens and the signing ``secret`` is a credential, so:

* ``secret`` is made a Pulumi secret by the resource and never appears in outputs.  MLflow never
  returns it either, so to notice a changed secret the outputs keep ``secret_hash``, a salted
  PBKDF2-SHA256 of it (itself a Pulumi secret): diff recomputes it from the new secret.
* ``url`` is always a Pulumi secret (input and output), even when given as a plain string, and no
  error message quotes its path, query, user info or host name.
* MLflow deletes a webhook softly: the row keeps its URL and encrypted secret.  Delete first
  overwrites both with inert values (and disables the webhook), then deletes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers._base import (
    DynamicResource,
    Failures,
    control_character_failure,
    gone,
    is_unknown,
    quoted,
)
from providers._mlflow import (
    MlflowProvider,
    comparable_tracking_uri,
    is_not_found,
    raise_mlflow_error,
    registry_store,
)
from providers.adoption import ADOPT_KEY, adopt_existing, adopt_field
from providers.schema import Field, Schema
from providers.webhook_mlflow import (
    ENCRYPTION_KEY_ENV,
    get_webhook,
    missing_encryption_key,
    outputs_of,
    refused_url,
    remove_twins,
    require_encryption_key,
    scrub,
    webhook_events,
    webhook_ids_named,
    webhook_status,
    webhooks_named,
)
from providers.webhook_secret import secret_changed, secret_hash, secret_matches
from providers.webhook_url import (
    ALLOW_PRIVATE_IPS_ENV,
    ALLOWED_SCHEMES_ENV,
    LOCAL_RECEIVER_HINT,
    MAX_URL_LENGTH,
    inert_url,
    local_receiver_failure,
    url_parts,
    url_problem,
)

if TYPE_CHECKING:
    pass

# --- constants -----------------------------------------------------------------------------------


DEFAULT_EVENTS = ("budget_policy.exceeded",)
# mlflow.entities.webhook.WebhookEventStr of mlflow 3.17 (a test keeps the two in step).
KNOWN_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
    "prompt.created",
    "prompt_version.created",
    "prompt_tag.set",
    "prompt_tag.deleted",
    "prompt_version_tag.set",
    "prompt_version_tag.deleted",
    "prompt_alias.created",
    "prompt_alias.deleted",
    "budget_policy.exceeded",
)
WEBHOOK_NAME = re.compile(r"(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
# The SQL store keeps the Fernet-encrypted secret in a 1000-character column.
MAX_SECRET_LENGTH = 512

# Kept importable from here: tests, the stack config and older code use these names.
__all__ = [
    "ENCRYPTION_KEY_ENV",
    "MAX_URL_LENGTH",
    "get_webhook",
    "scrub",
    "webhooks_named",
    "BudgetAlertWebhook",
    "BudgetAlertWebhookProvider",
    "inert_url",
    "local_receiver_failure",
    "secret_changed",
    "secret_hash",
    "secret_matches",
    "url_parts",
]


# --- field validators ----------------------------------------------------------------------------


def validate_webhook_name(name: Any, failures: Failures, prop: str = "webhook_name") -> Any:
    if isinstance(name, str) and WEBHOOK_NAME.fullmatch(name):
        return name
    if isinstance(name, str) and (reason := control_character_failure(name)):
        failures.add(prop, f"{quoted(name)} {reason}")
    else:
        failures.add(
            prop,
            "must be 1-63 characters: letters, digits, '.', '_' or '-', "
            f"starting and ending with a letter or digit (got {quoted(name)})",
        )
    return name


def validate_url(url: Any, failures: Failures, prop: str = "url") -> Any:
    if reason := url_problem(url):
        failures.add(prop, reason)
    return url


def validate_events(events: Any, failures: Failures, prop: str = "events") -> Any:
    if events is None:
        return list(DEFAULT_EVENTS)
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        failures.add(prop, "must be a non-empty list of events such as 'budget_policy.exceeded'")
        return events
    unknown = [e for e in events if e not in KNOWN_EVENTS]
    if unknown:
        failures.add(prop, f"unknown events {unknown}; valid: {', '.join(KNOWN_EVENTS)}")
        return events
    return sorted(set(events))


def validate_description(value: Any, failures: Failures, prop: str = "description") -> Any:
    return _optional(value, str, "", "must be a string", failures, prop)


def validate_active(value: Any, failures: Failures, prop: str = "active") -> Any:
    return _optional(value, bool, True, "must be true or false", failures, prop)


def validate_secret(value: Any, failures: Failures, prop: str = "secret") -> Any:
    secret = _optional(value, str, None, "must be a string", failures, prop)
    if not isinstance(secret, str):
        return secret
    if len(secret) > MAX_SECRET_LENGTH:
        failures.add(prop, f"must be at most {MAX_SECRET_LENGTH} characters")
    return secret or None


def _optional(value: Any, kind: type, default: Any, reason: str, failures: Failures, prop: str) -> Any:
    if value is None:
        return default
    if not isinstance(value, kind):
        failures.add(prop, f"{reason} (got {type(value).__name__})")
    return value


SCHEMA = Schema(
    "BudgetAlertWebhook",
    "An MLflow webhook for budget alerts (by default on ``budget_policy.exceeded``).",
    [
        Field("webhook_name", "str", "1–63 of `A-Za-z0-9._-`", validate_webhook_name, required=True),
        Field(
            "url",
            "str",
            "https; http and private hosts only where MLflow allows them (see below)",
            validate_url,
            required=True,
            secret=True,  # Slack and PagerDuty URLs are credentials
        ),
        Field(
            "secret",
            "str",
            "the signing key of `X-MLflow-Signature`; a change updates in place (diff compares its fingerprint)",
            validate_secret,
            secret=True,
            compared=False,  # MLflow never returns it: diff compares secret_hash (secret_changed)
            echoed=False,
        ),
        Field(
            "events",
            "list[str]",
            '`["budget_policy.exceeded"]` when absent',
            validate_events,
            input_annotation="Sequence[pulumi.Input[str]]",
        ),
        Field("description", "str", "free text", validate_description),
        Field("active", "bool", "false: MLflow keeps the webhook but sends nothing", validate_active, default=True),
        adopt_field("webhook (its signing secret is set to `secret`: MLflow never returns the one it holds)"),
        Field(
            "secret_hash",
            "str | None",
            "salted PBKDF2 of the secret, so a changed secret is updated although MLflow never returns it",
            output=True,
            secret=True,
        ),
        Field("webhook_id", "str", "MLflow's id of the webhook", output=True),
        Field(
            "tracking_uri",
            "str",
            "the MLflow tracking server the webhook lives in (credentials removed)",
            computed_input=True,
            replaces=True,
            compare=lambda uri: comparable_tracking_uri("tracking_uri", uri),
        ),
    ],
)


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], Failures]:
    return SCHEMA.check(news)


# --- provider ------------------------------------------------------------------------------------


class BudgetAlertWebhookProvider(MlflowProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = check_inputs(news)
        self.record_tracking_uri(inputs, failures)
        self._check_url_can_be_stored(inputs, failures)
        self._check_secret_can_be_stored(inputs, failures)
        return failures.result(inputs)

    def _check_url_can_be_stored(self, inputs: dict[str, Any], failures: Failures) -> None:
        """A SQL store validates the URL in this process, under this process's MLflow settings,
        so preview can say what `pulumi up` would meet; a server decides for itself at create."""
        url = inputs.get("url")
        if inputs.get("tracking_uri") is None or is_unknown(url) or url_problem(url):
            return
        if not self.configured_server().is_http and (reason := local_receiver_failure(url, os.environ)):
            failures.add(
                "url",
                f"MLflow would refuse it here ({reason}). To deliver to a local or http:// receiver, set "
                f"{ALLOWED_SCHEMES_ENV}=http,https and {ALLOW_PRIVATE_IPS_ENV}=true in the environment of "
                "`pulumi up` and of the MLflow server that sends the alerts (or use a public https:// URL).",
            )

    def _check_secret_can_be_stored(self, inputs: dict[str, Any], failures: Failures) -> None:
        secret = inputs.get("secret")
        if inputs.get("tracking_uri") is None or is_unknown(secret):
            return
        if hint := missing_encryption_key(self.configured_server(), secret):
            failures.add("secret", hint)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = SCHEMA.diff(olds, news)
        if not result.replaces and secret_changed(olds, news):
            result.changes = True
        return result

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get(ADOPT_KEY):
            return adopt_existing(self, "webhook", props)
        server = self.configured_server()
        secret = props.get("secret")
        require_encryption_key(server, props["webhook_name"], secret)
        store = registry_store(server)
        # MLflow's HTTP client re-sends a create whose answer was lost: the twin it leaves has our
        # name and settings and was not there before (MLflow has no idempotency key for webhooks).
        before = webhook_ids_named(store, server, props["webhook_name"]) if server.is_http else set()
        try:
            webhook = store.create_webhook(
                name=props["webhook_name"],
                url=props["url"],
                events=webhook_events(props["events"]),
                description=props.get("description") or None,
                secret=secret,
                status=webhook_status(props.get("active", True)),
            )
        except Exception as error:  # noqa: BLE001
            redact = (*url_parts(props["url"]), secret)
            hint = LOCAL_RECEIVER_HINT if refused_url(error) else ""
            raise_mlflow_error("create", "webhook", props["webhook_name"], server, error, hint, redact=redact)
        if server.is_http:
            remove_twins(store, server, webhook, before)
        return CreateResult(webhook.webhook_id, outputs_of(webhook, secret_hash(secret), server))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        server = self.server_for(props.get("tracking_uri"))
        webhook = get_webhook(registry_store(server), server, id_)
        if webhook is None:
            return gone()
        outs = outputs_of(webhook, props.get("secret_hash"), server)
        return ReadResult(webhook.webhook_id, outs, inputs=SCHEMA.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        server = self.server_for(olds.get("tracking_uri"))
        new_secret = news.get("secret")
        changed_secret = secret_changed(olds, news)
        if changed_secret:
            require_encryption_key(server, news["webhook_name"], new_secret)
        try:
            webhook = registry_store(server).update_webhook(
                id_,
                name=news["webhook_name"],
                url=news["url"],
                events=webhook_events(news["events"]),
                description=news.get("description") or "",
                # "" removes the secret; None leaves the stored one alone.
                secret=(new_secret or "") if changed_secret else None,
                status=webhook_status(news.get("active", True)),
            )
        except Exception as error:  # noqa: BLE001
            redact = (*url_parts(news["url"]), new_secret)
            raise_mlflow_error("update", "webhook", id_, server, error, redact=redact)
        hash_ = secret_hash(new_secret) if changed_secret else olds.get("secret_hash")
        return UpdateResult(outputs_of(webhook, hash_, server))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        server = self.server_for(props.get("tracking_uri"))
        store = registry_store(server)
        try:
            scrub(store, id_, props.get("url"))
            store.delete_webhook(id_)
        except Exception as error:  # noqa: BLE001
            if not is_not_found(error):  # not found: gone already
                redact = url_parts(props.get("url") or "")
                raise_mlflow_error("delete", "webhook", id_, server, error, redact=redact)


# --- resource ------------------------------------------------------------------------------------


# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---


class BudgetAlertWebhook(DynamicResource, module="mlbudgets", name="BudgetAlertWebhook"):
    """An MLflow webhook for budget alerts (by default on ``budget_policy.exceeded``)."""

    webhook_name: pulumi.Output[str]
    url: pulumi.Output[str]
    events: pulumi.Output[list[str]]
    description: pulumi.Output[str]
    active: pulumi.Output[bool]
    secret_hash: pulumi.Output[str | None]
    webhook_id: pulumi.Output[str]
    tracking_uri: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        webhook_name: pulumi.Input[str],
        url: pulumi.Input[str],
        secret: pulumi.Input[str] | None = None,
        events: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        description: pulumi.Input[str] | None = None,
        active: pulumi.Input[bool] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """:param webhook_name: 1–63 of `A-Za-z0-9._-`
        :param url: https; http and private hosts only where MLflow allows them (see below)
        :param secret: the signing key of `X-MLflow-Signature`; a change updates in place (diff compares its
            fingerprint)
        :param events: `["budget_policy.exceeded"]` when absent
        :param description: free text
        :param active: false: MLflow keeps the webhook but sends nothing
        :param adopt_id: the id of an existing webhook (its signing secret is set to `secret`: MLflow never
            returns the one it holds) that the first `pulumi up` takes over (updated to the declared inputs)
            instead of creating one; ignored once the resource is in the stack's state
        """
        props = SCHEMA.props(
            {
                "webhook_name": webhook_name,
                "url": pulumi.Output.secret(url),
                "secret": pulumi.Output.secret(secret) if secret is not None else None,
                "events": events,
                "description": description,
                "active": active,
                "adopt_id": adopt_id,
            }
        )
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["url", "secret", "secret_hash"])
        )
        DynamicResource.__init__(self, BudgetAlertWebhookProvider(), resource_name, props, opts)


# --- END generated from SCHEMA ---
