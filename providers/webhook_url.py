"""Webhook URLs carry tokens (Slack, PagerDuty): what MLflow accepts, what to mask in messages,
and what a deleted webhook's URL becomes.  Nothing here quotes a URL's path, query, user info or
host name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# The SQL store's webhooks.url column is String(500): PostgreSQL and MySQL refuse (or cut) more.
MAX_URL_LENGTH = 500
# MLflow's own settings (mlflow.environment_variables): webhook URLs must be https and resolve to
# public addresses unless the process that writes the webhook allows more.
ALLOWED_SCHEMES_ENV = "MLFLOW_WEBHOOK_ALLOWED_SCHEMES"
ALLOW_PRIVATE_IPS_ENV = "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"
LOCAL_RECEIVER_HINT = (
    f"To deliver to a local or http:// receiver, run the MLflow server with "
    f"{ALLOWED_SCHEMES_ENV}=http,https and {ALLOW_PRIVATE_IPS_ENV}=true (or use a public https:// URL)."
)
# What a deleted webhook's URL path becomes: the token in the old path must not stay in the row.
INERT_PATH = "/deleted-by-pulumi"
# What a deleted webhook's host name becomes: IANA's reserved example domain, which resolves to
# public addresses (MLflow checks that a webhook's host does, unless private ones are allowed).
INERT_HOST = "example.com"


def url_problem(url: Any) -> str | None:
    """Why MLflow would refuse ``url``; never quotes the URL (it may carry a token)."""
    if not isinstance(url, str) or not url.strip():
        return "must be an http(s) URL"
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters (MLflow's limit), got {len(url)}"
    if url != url.strip() or any(c.isspace() for c in url):
        return "must not contain whitespace"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"scheme must be https (or http where the server allows it), got {parts.scheme!r}"
    if not hostname:
        return "must include a host name"
    if _looks_like_ip(hostname):
        try:
            ipaddress.ip_address(hostname)
        except ValueError:
            return "host is not a canonical IP address"
    return None


def url_parts(url: str) -> list[str]:
    """The URL and the parts of it that may carry a token, to mask in messages.

    A host name may carry one too; an IP address or localhost does not, and stays readable
    ("'127.0.0.1' resolves to 127.0.0.1" says what is wrong).
    """
    try:
        parts = urlsplit(url)
        user_info, _, host_port = parts.netloc.rpartition("@")
        pieces = [user_info, parts.path, parts.query, parts.fragment, parts.password]
        if not _is_readable_host(parts.hostname or ""):
            pieces += [host_port, parts.hostname]
    except ValueError:
        pieces = []
    # Longest first, so that a part inside another is masked after the whole.
    return sorted({p for p in [url, *pieces] if p and len(p) > 1}, key=len, reverse=True)


def local_receiver_failure(url: Any, environ: Mapping[str, str]) -> str | None:
    """Why MLflow, under ``environ``, would refuse ``url`` for its scheme or a private host, else None.

    Only what is known without DNS: an http:// URL, ``localhost`` or a non-public IP literal.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except (TypeError, ValueError, AttributeError):
        return None
    reasons = []
    schemes = [s.strip() for s in environ.get(ALLOWED_SCHEMES_ENV, "https").split(",") if s.strip()]
    if parts.scheme not in schemes:
        reasons.append(f"scheme {parts.scheme!r} is not allowed: {ALLOWED_SCHEMES_ENV} is {','.join(schemes)!r}")
    allow_private = environ.get(ALLOW_PRIVATE_IPS_ENV, "").strip().lower() in ("true", "1")
    if not allow_private and _is_private_host(host):
        reasons.append(f"host {host!r} is not a public address and {ALLOW_PRIVATE_IPS_ENV} is not true")
    return "; ".join(reasons) or None


def _is_readable_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost"


def _is_private_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: only DNS knows


def inert_url(url: str | None) -> str | None:
    """``url`` with its token gone: same scheme (MLflow validates it), no user info, path, query or
    fragment; an IP address or localhost host is kept (it carries no token), a host name, which
    may (``https://<token>.hooks.example/…``), becomes ``INERT_HOST``."""
    try:
        parts = urlsplit(url or "")
        hostname = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not hostname:
        return None
    if not _is_readable_host(hostname):
        return f"{parts.scheme}://{INERT_HOST}{INERT_PATH}"
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{INERT_PATH}"


def _looks_like_ip(hostname: str) -> bool:
    # MLflow rejects numeric hosts such as 127.1 or 0177.0.0.1 that are not canonical literals.
    return ":" in hostname or hostname.replace(".", "").isdigit()
