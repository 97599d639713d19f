"""BudgetAlertWebhook's MLflow calls: event and status values, the secret encryption key a store
needs, reading and finding webhooks, removing a twin a lost answer made, and scrubbing a webhook's
URL token and secret before MLflow's soft delete."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from providers._base import (
    api_error,
)
from providers._mlflow import (
    MlflowProviderError,
    TrackingServer,
    error_code,
    is_not_found,
    raise_mlflow_error,
)
from providers.webhook_url import (
    inert_url,
)

if TYPE_CHECKING:
    from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookEventStr, WebhookStatus
    from mlflow.store.model_registry.abstract_store import AbstractStore as RegistryStore


ENCRYPTION_KEY_ENV = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"


def webhook_events(events: Sequence[str]) -> list[WebhookEvent]:
    from mlflow.entities.webhook import WebhookEvent

    # check() validated the names; from_str parses any string (its Literal parameter is for literals).
    return [WebhookEvent.from_str(cast("WebhookEventStr", event)) for event in events]


def webhook_status(active: bool) -> WebhookStatus:
    from mlflow.entities.webhook import WebhookStatus

    return WebhookStatus.ACTIVE if active else WebhookStatus.DISABLED


def missing_encryption_key(server: TrackingServer, secret: str | None) -> str | None:
    """What to do when a SQL store would encrypt the webhook secret with no key, else None.

    A SQL store encrypts webhook secrets in this process with the key from the env.  Without the
    key MLflow silently uses a throwaway one: the MLflow server could never decrypt the secret to
    sign deliveries, and the next read here would fail.
    """
    if secret and not server.is_http and not os.environ.get(ENCRYPTION_KEY_ENV):
        return (
            f"Set {ENCRYPTION_KEY_ENV} to the Fernet key of the MLflow server that "
            f"serves {server.public_uri}, so that the stored secret can be decrypted."
        )
    return None


def require_encryption_key(server: TrackingServer, webhook: str, secret: str | None) -> None:
    if hint := missing_encryption_key(server, secret):
        raise api_error(
            "store",
            "secret of webhook",
            webhook,
            f"{ENCRYPTION_KEY_ENV} is not set",
            hint,
            f"on {server.public_uri}",
            MlflowProviderError,
        )


def scrub(store: RegistryStore, webhook_id: str, url: str | None) -> None:
    """Overwrite the URL's token and the secret, and disable the webhook, before a (soft) delete.

    If MLflow refuses the inert URL (its host no longer passes MLflow's checks), the secret is
    still overwritten.
    """
    disabled = webhook_status(False)
    inert = inert_url(url)
    if inert:
        try:
            store.update_webhook(webhook_id, url=inert, secret="", status=disabled)
            return
        except Exception as error:  # noqa: BLE001
            if error_code(error) != "INVALID_PARAMETER_VALUE":
                raise
    store.update_webhook(webhook_id, secret="", status=disabled)


def refused_url(error: BaseException) -> bool:
    text = str(getattr(error, "message", None) or error)
    return "URL scheme" in text or "non-public IP" in text or "Cannot resolve Webhook URL" in text


def get_webhook(store: RegistryStore, server: TrackingServer, webhook_id: str) -> Webhook | None:
    try:
        return store.get_webhook(webhook_id)
    except Exception as error:  # noqa: BLE001
        if is_not_found(error):
            return None
        raise_mlflow_error("read", "webhook", webhook_id, server, error, _decrypt_hint(error))


def _decrypt_hint(error: BaseException) -> str:
    if type(error).__name__ == "InvalidToken":
        return f"Its secret cannot be decrypted: set {ENCRYPTION_KEY_ENV} to the server's key."
    return ""


def webhooks_named(store: RegistryStore, server: TrackingServer, name: str) -> list[Webhook]:
    found: list[Webhook] = []
    page_token: str | None = None
    try:
        while True:
            page = store.list_webhooks(max_results=1000, page_token=page_token)
            found.extend(w for w in page if w.name == name)
            page_token = page.token
            if not page_token:
                return found
    except Exception as error:  # noqa: BLE001
        raise_mlflow_error("list", "webhooks named", name, server, error)


def webhook_ids_named(store: RegistryStore, server: TrackingServer, name: str) -> set[str]:
    return {w.webhook_id for w in webhooks_named(store, server, name)}


def remove_twins(store: RegistryStore, server: TrackingServer, created: Webhook, before: set[str]) -> None:
    """Delete webhooks a retried create made besides ``created``: same settings, new since ``before``."""

    def settings(webhook: Webhook) -> tuple[str, str, list[str], str, WebhookStatus]:
        return (webhook.name, webhook.url, sorted(map(str, webhook.events)), webhook.description or "", webhook.status)

    for webhook in webhooks_named(store, server, created.name):
        if webhook.webhook_id not in before | {created.webhook_id} and settings(webhook) == settings(created):
            try:
                store.delete_webhook(webhook.webhook_id)
            except Exception as error:  # noqa: BLE001
                if not is_not_found(error):
                    raise_mlflow_error(
                        "delete",
                        "webhook",
                        webhook.webhook_id,
                        server,
                        error,
                        hint=f"It is a twin of webhook {created.webhook_id} left by a retried create; "
                        "delete it by hand.",
                    )


def outputs_of(webhook: Webhook, hash_: str | None, server: TrackingServer) -> dict[str, Any]:
    return {
        "webhook_name": webhook.name,
        "url": webhook.url,
        "events": sorted(str(event) for event in webhook.events),
        "description": webhook.description or "",
        "active": webhook.status.value == "ACTIVE",
        "secret_hash": hash_,
        "webhook_id": webhook.webhook_id,
        "tracking_uri": server.public_uri,
    }
