"""Databricks REST errors as the emulator raises and serves them.

The databricks-sdk turns an error response into an exception class by ``error_code`` first and
HTTP status second (``databricks/sdk/errors/mapper.py``, ``platform.py``), so every error here
carries both, exactly as Databricks sends them: ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ApiError(Exception):
    """An API error with the HTTP status and Databricks ``error_code`` it is served with."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def _answer(status: int, error_code: str) -> Callable[[str], ApiError]:
    def error(message: str) -> ApiError:
        return ApiError(status, error_code, message)

    error.__doc__ = f"{status} {error_code}"
    return error


# Each answer and the databricks.sdk.errors class the SDK raises for it.
invalid = _answer(400, "INVALID_PARAMETER_VALUE")  # InvalidParameterValue
malformed = _answer(400, "MALFORMED_REQUEST")  # BadRequest (an unparseable body)
not_found = _answer(404, "RESOURCE_DOES_NOT_EXIST")  # ResourceDoesNotExist (a NotFound)
already_exists = _answer(409, "RESOURCE_ALREADY_EXISTS")  # ResourceAlreadyExists
conflict = _answer(409, "RESOURCE_CONFLICT")  # ResourceConflict (not retried by the SDK)
permission_denied = _answer(403, "PERMISSION_DENIED")  # PermissionDenied
unauthenticated = _answer(401, "UNAUTHENTICATED")  # Unauthenticated
not_implemented = _answer(501, "NOT_IMPLEMENTED")  # NotImplemented: outside what is emulated


def endpoint_not_found(method: str, path: str) -> ApiError:
    """404 ENDPOINT_NOT_FOUND: no such API (Databricks' own wording: "No API found for ...")."""
    return ApiError(
        404,
        "ENDPOINT_NOT_FOUND",
        f"No API found for '{method} {path}' (the Databricks account emulator does not serve this route)",
    )


def too_many_requests(retry_after: int, message: str | None = None) -> ApiError:
    """429 with ``Retry-After``: the SDK sleeps that many seconds and retries, for every method."""
    return ApiError(
        429,
        "REQUEST_LIMIT_EXCEEDED",
        message or "Too many requests. Please wait a moment and try again.",
        headers={"Retry-After": str(int(retry_after))},
    )


def temporarily_unavailable(retry_after: int | None = None, message: str | None = None) -> ApiError:
    """503: the SDK retries it (after ``Retry-After`` seconds, 1 s when the header is absent)."""
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    return ApiError(
        503,
        "TEMPORARILY_UNAVAILABLE",
        message or "The service is temporarily unavailable. Please try again later.",
        headers=headers,
    )
