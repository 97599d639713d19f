"""MLflow's webhook signature (mlflow/webhooks/delivery.py, Standard Webhooks style).

``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>``,
``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-MLflow-Signature"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
VERSION = "v1"
TOLERANCE_SECONDS = 300


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def verification_failure(
    secret: str,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
) -> str | None:
    """Why the delivery must be refused, or None when it is authentic and fresh."""
    if not (delivery_id and timestamp and signature):
        return f"missing {DELIVERY_ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not a Unix timestamp"
    now = time.time() if now is None else now
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        return f"timestamp outside the {TOLERANCE_SECONDS // 60}-minute window"
    expected = sign(secret, delivery_id, timestamp, body)
    # Standard Webhooks allows several space-separated signatures (secret rotation).
    if not any(hmac.compare_digest(candidate, expected) for candidate in signature.split()):
        return "signature does not match"
    return None
