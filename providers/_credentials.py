"""Credentials found by meaning, not only by name: what to keep out of state and messages.

One path for every provider and server.  ``public_uri`` strips a URI of user info and of every
credential it carries, however deep: a ``password=`` query parameter, but also an ODBC connection
string percent-encoded inside ``odbc_connect=`` (``…%3BPWD%3D<secret>``), a URL with user info
inside a parameter, a JSON value.  ``mask_secrets`` masks a server's or proxy's answer before it
reaches the user: the secrets the caller knows, in their plain, percent-encoded and Basic-auth
forms, and whatever reads as a credential (``Authorization: Bearer …``, ``"password": "…"``,
``PWD=…;``, ``scheme://user:password@``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"

# A name that says its value is a credential: password, PWD, sslpassword, access_token, api_key,
# client_secret, AccountKey, SharedAccessSignature, X-Amz-Credential, sig, session, cookie, …
CREDENTIAL_NAME = re.compile(r"pass|pwd|token|secret|key|auth|cred|sig|session|cookie", re.IGNORECASE)
_NAME = r"[A-Za-z0-9_.\-]*(?:pass|pwd|token|secret|key|auth|cred|sig|session|cookie)[A-Za-z0-9_.\-]*"

# ``Authorization: Bearer <token>`` (a header quoted in an error or a request log), any scheme.
_AUTHORIZATION = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?P<scheme>[A-Za-z-]+)\s+)?(?P<value>[^\s\"',;}]+)",
    re.IGNORECASE,
)
# A bare ``Bearer <token>`` / ``Basic <base64 of user:password>`` without its header name.
_BEARER = re.compile(r"\b(?P<scheme>bearer)\s+(?P<value>[A-Za-z0-9._~+/=\-]{6,})", re.IGNORECASE)
_BASIC = re.compile(r"\b(?P<scheme>basic)\s+(?P<value>[A-Za-z0-9+/_\-]{6,}={0,2})", re.IGNORECASE)
# ``name=value`` / ``name: value`` / ``"name": "value"`` where the name says credential.  The value
# ends where a connection string's, a query's or a JSON object's next item begins; an ODBC value
# may be braced ({…}) to hold those separators.
_ASSIGNMENT = re.compile(
    rf"(?P<name>[\"']?\b{_NAME}[\"']?)(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\{[^}]*\}|\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s;&,\"'}]+)",
    re.IGNORECASE,
)
# A Databricks personal access token, wherever it stands.
_DATABRICKS_TOKEN = re.compile(r"\bdapi[0-9a-zA-Z-]{8,}")
# ``scheme://user:password@`` or ``scheme://token@`` anywhere in a text.
_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/@?#\"']+)@")

MIN_SECRET_LENGTH = 2
MIN_LONE_USER_SECRET_LENGTH = 12


def public_uri(uri: str) -> tuple[str, set[str]]:
    """``uri`` without user info or credentials anywhere, and the secrets taken out of it.

    Query parameters named as credentials go; any other parameter's value (percent-decoded) loses
    the credentials inside it and is re-encoded, so ``odbc_connect`` keeps its server and
    database and loses its ``PWD``.  The path loses ``;password=…`` items (JDBC style).
    """
    secrets: set[str] = set()
    parts = urlsplit(uri)
    if not parts.netloc:  # sqlite:///path, mssql+pyodbc:///?odbc_connect=…, databricks: no unsplit
        base, mark, query = uri.partition("?")
        base = _strip_text(base, secrets) if ";" in base else base
        query = public_query(query, secrets)
        return (f"{base}?{query}" if query else base) if mark else base, secrets
    netloc = parts.netloc
    if "@" in netloc:
        user_info, _, netloc = netloc.rpartition("@")
        secrets |= _user_info_secrets(user_info)
    netloc, path = (_strip_text(part, secrets) if ";" in part else part for part in (netloc, parts.path))
    query = public_query(parts.query, secrets)
    fragment = _public_value(parts.fragment, secrets)
    return urlunsplit((parts.scheme, netloc, path, query, fragment)), secrets


def public_query(query: str, secrets: set[str]) -> str:
    """``query`` without credential parameters, and with none inside the others' values."""
    kept = []
    for item in query.split("&") if query else []:
        name, has_value, value = item.partition("=")
        if CREDENTIAL_NAME.search(unquote_plus(name)):
            if value:
                secrets |= {value, unquote_plus(value)}
            continue
        kept.append(f"{name}={_public_value(value, secrets)}" if has_value else name)
    return "&".join(kept)


def _public_value(value: str, secrets: set[str]) -> str:
    decoded = _fully_decoded(value)
    stripped = _strip_text(decoded, secrets)
    return value if stripped == decoded else quote_plus(stripped, safe="")


def _fully_decoded(value: str, rounds: int = 3) -> str:
    """Percent-decoded until stable (a value may be encoded twice to pass through a URI)."""
    for _ in range(rounds):
        decoded = unquote_plus(value)
        if decoded == value:
            break
        value = decoded
    return value


def _strip_text(text: str, secrets: set[str]) -> str:
    """``text`` (a connection string, JSON, a URL) without credential items or user info."""

    def drop_assignment(match: re.Match[str]) -> str:
        secrets.add(_unwrapped(match["value"]))
        return ""

    def drop_user_info(match: re.Match[str]) -> str:
        secrets.update(_user_info_secrets(match["userinfo"]))
        return match["scheme"]

    text = _USER_INFO.sub(drop_user_info, text)
    text = _ASSIGNMENT.sub(drop_assignment, text)
    return re.sub(r";{2,}", ";", text)


def _user_info_secrets(user_info: str) -> set[str]:
    user, has_password, password = user_info.partition(":")
    if has_password:
        user, password = unquote(user), unquote(password)
        return {password, *basic_auth_forms(user, password)} if password else set()
    user = unquote(user)  # a lone user info is often a token (https://<token>@host); a short one
    return {user} if len(user) >= MIN_LONE_USER_SECRET_LENGTH else set()  # is a name: masking it would maim words


def _unwrapped(value: str) -> str:
    if len(value) >= 2 and (value[0], value[-1]) in (("{", "}"), ('"', '"'), ("'", "'")):
        return value[1:-1]
    return value


def basic_auth_forms(username: str, password: str) -> list[str]:
    """``user:password`` as it appears in a Basic ``Authorization`` header (and url-safe base64)."""
    raw = f"{username}:{password}".encode()
    return [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]


def mask_secrets(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with the ``known`` secrets masked in their plain and percent-encoded forms, and
    with whatever reads as a credential masked too (a header, an assignment, user info).
    Mask before cutting a message short: a cut secret would no longer match."""
    forms = {form for secret in known if secret for form in _encoded_forms(secret)}
    for secret in sorted(forms, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    text = _AUTHORIZATION.sub(lambda m: f"{m['head']}{m['scheme'] + ' ' if m['scheme'] else ''}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)
    text = _DATABRICKS_TOKEN.sub(MASK, text)
    text = _BASIC.sub(lambda m: f"{m['scheme']} {MASK}" if _is_basic_credential(m["value"]) else m[0], text)
    text = _ASSIGNMENT.sub(_masked_assignment, text)
    return _USER_INFO.sub(_masked_user_info, text)


def _masked_user_info(match: re.Match[str]) -> str:
    """``scheme://user:***@`` (the user name helps and is no secret) or ``scheme://***@``."""
    user, has_password, _ = match["userinfo"].partition(":")
    return f"{match['scheme']}{user + ':' if has_password else ''}{MASK}@"


def _masked_assignment(match: re.Match[str]) -> str:
    name = match["name"].strip("\"'")
    if match["value"].strip("\"'") == MASK or name.lower().endswith("authorization"):
        return match[0]  # masked already (or by the header rule, which keeps the scheme)
    if ":" in match["sep"] and name == match["name"] and _ERROR_CODE.fullmatch(name):
        return match[0]  # "UNAUTHENTICATED: rejected …" is an error code and its message
    return f"{match['name']}{match['sep']}{MASK}"


_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def _is_basic_credential(value: str) -> bool:
    try:
        padded = value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4)
        decoded = base64.b64decode(padded, altchars=b"-_" if "-" in value or "_" in value else None)
    except ValueError:
        return False
    return b":" in decoded


def _encoded_forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), unquote(secret), unquote_plus(secret)} - {""}
