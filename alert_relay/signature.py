"""MLflow's webhook signature (mlflow/webhooks/delivery.py, Standard Webhooks style).

``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>``,
``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix seconds).

Every header is checked for shape before it is used: whatever a request holds, verification ends
in a reason to refuse it (never an exception).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-MLflow-Signature"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
VERSION = "v1"
TOLERANCE_SECONDS = 300
# MLflow's delivery ids are UUIDs; anything far from that shape is refused before it is used.
DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Unix seconds, ASCII digits only: int() would also take "١٢٣", "1_000" and 400-digit numbers.
TIMESTAMP = re.compile(r"[0-9]{1,12}")
# v1,<base64 of 32 bytes> is 47 characters; a few rotated secrets fit in this bound.
MAX_SIGNATURE_HEADER = 1024


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
    if not DELIVERY_ID.fullmatch(delivery_id):
        return f"{DELIVERY_ID_HEADER} is not a delivery id"
    if not TIMESTAMP.fullmatch(timestamp):
        return f"{TIMESTAMP_HEADER} is not a Unix timestamp"
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return f"timestamp outside the {TOLERANCE_SECONDS // 60}-minute window"
    if len(signature) > MAX_SIGNATURE_HEADER or not signature.isascii():
        return "signature does not match"
    expected = sign(secret, delivery_id, timestamp, body).encode()
    # Standard Webhooks allows several space-separated signatures (secret rotation).
    if not any(hmac.compare_digest(candidate.encode(), expected) for candidate in signature.split()):
        return "signature does not match"
    return None
