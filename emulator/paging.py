"""Paging of list answers: an opaque ``page_token`` holding the last key of the page and the
query it belongs to, so pages stay consistent while policies come and go between calls."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from emulator import errors

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:32]


def encode_page_token(after: tuple[str, str], query_key: str) -> str:
    raw = json.dumps({"a": list(after), "q": query_key}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str, query_key: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
        after = data["a"]
        if not (isinstance(after, list) and len(after) == 2 and all(isinstance(v, str) for v in after)):
            raise ValueError(after)
        token_query = data["q"]
    except (ValueError, KeyError, TypeError):  # not base64, not JSON, not our shape
        raise errors.invalid(f"Invalid page_token {token!r}.") from None
    if token_query != query_key:
        raise errors.invalid(
            "page_token was issued for a different filter_by / sort_spec: all other parameters must match "
            "the call that provided the page token."
        )
    return after[0], after[1]


def encode_id_token(after: str, query_key: str) -> str:
    """A page token of a list paged by one id (budgets, spend statuses)."""
    raw = json.dumps({"a": after, "q": query_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def decode_id_token(token: str, query_key: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode("ascii")))
        after, token_query = data["a"], data["q"]
        if not isinstance(after, str):
            raise ValueError(after)
    except (ValueError, KeyError, TypeError):  # not base64, not JSON, not our shape
        raise errors.invalid(f"Invalid page_token {token!r}.") from None
    if token_query != query_key:
        raise errors.invalid("page_token was issued for a different filter: all other parameters must match.")
    return after
