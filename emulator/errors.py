"""Databricks REST errors as the emulator raises and serves them.

The databricks-sdk turns an error response into an exception class by ``error_code`` first and
HTTP status second (``databricks/sdk/errors/mapper.py``, ``platform.py``), so every error here
carries both, exactly as Databricks sends them: ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

from typing import Any, Optional


class ApiError(Exception):
    """An API error with the HTTP status and Databricks ``error_code`` it is served with."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: Optional[dict[str, str]] = None,
        details: Optional[list[dict[str, Any]]] = None,
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


def invalid(message: str) -> ApiError:
    """400 INVALID_PARAMETER_VALUE -> ``databricks.sdk.errors.InvalidParameterValue``."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def malformed(message: str) -> ApiError:
    """400 MALFORMED_REQUEST (unparseable body) -> ``databricks.sdk.errors.BadRequest``."""
    return ApiError(400, "MALFORMED_REQUEST", message)


def not_found(message: str) -> ApiError:
    """404 RESOURCE_DOES_NOT_EXIST -> ``databricks.sdk.errors.ResourceDoesNotExist`` (a NotFound)."""
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> ApiError:
    """409 RESOURCE_ALREADY_EXISTS -> ``databricks.sdk.errors.ResourceAlreadyExists``."""
    return ApiError(409, "RESOURCE_ALREADY_EXISTS", message)


def conflict(message: str) -> ApiError:
    """409 RESOURCE_CONFLICT -> ``databricks.sdk.errors.ResourceConflict`` (not retried by the SDK)."""
    return ApiError(409, "RESOURCE_CONFLICT", message)


def permission_denied(message: str) -> ApiError:
    """403 PERMISSION_DENIED -> ``databricks.sdk.errors.PermissionDenied``."""
    return ApiError(403, "PERMISSION_DENIED", message)


def unauthenticated(message: str) -> ApiError:
    """401 UNAUTHENTICATED -> ``databricks.sdk.errors.Unauthenticated``."""
    return ApiError(401, "UNAUTHENTICATED", message)


def not_implemented(message: str) -> ApiError:
    """501 NOT_IMPLEMENTED -> ``databricks.sdk.errors.NotImplemented``: outside what is emulated."""
    return ApiError(501, "NOT_IMPLEMENTED", message)


def endpoint_not_found(method: str, path: str) -> ApiError:
    """404 ENDPOINT_NOT_FOUND: no such API (Databricks' own wording: "No API found for ...")."""
    return ApiError(
        404,
        "ENDPOINT_NOT_FOUND",
        f"No API found for '{method} {path}' (the Databricks account emulator does not serve this route)",
    )


def too_many_requests(retry_after: int, message: Optional[str] = None) -> ApiError:
    """429 with ``Retry-After``: the SDK sleeps that many seconds and retries, for every method."""
    return ApiError(
        429,
        "REQUEST_LIMIT_EXCEEDED",
        message or "Too many requests. Please wait a moment and try again.",
        headers={"Retry-After": str(int(retry_after))},
    )


def temporarily_unavailable(retry_after: Optional[int] = None, message: Optional[str] = None) -> ApiError:
    """503: the SDK retries it (after ``Retry-After`` seconds, 1 s when the header is absent)."""
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    return ApiError(
        503,
        "TEMPORARILY_UNAVAILABLE",
        message or "The service is temporarily unavailable. Please try again later.",
        headers=headers,
    )
