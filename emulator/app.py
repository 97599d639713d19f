"""The HTTP face of the emulator: a WSGI application speaking the Databricks account REST API.

It serves exactly the paths databricks-sdk 0.156 calls (emulator/routes.py); anything else is a
loud 404 ``ENDPOINT_NOT_FOUND`` naming the method and path, also written to stderr.  The control
plane for tests and benchmarks in other processes lives under ``/_emulator/``
(emulator/control.py); it is neither logged nor subject to faults.

This module keeps the request pipeline.  Every API request passes, in order: the request log
(emulator/request_log.py) -> "before" faults -> ``before_next`` hooks -> the account
(emulator/state.py) -> "after" faults.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from werkzeug.wrappers import Request, Response

from emulator import errors
from emulator.control import ControlPlane
from emulator.errors import ApiError
from emulator.faults import Fault, FaultInjector
from emulator.request_log import RequestLog
from emulator.routes import API_ROUTES, CONTROL_ROUTES, route
from emulator.state import AccountState
from emulator.wire import bool_arg, flat_args, int_arg, json_object, try_json

logger = logging.getLogger("emulator")

# Account budgets are managed by billing admins only (spend statuses answer for the caller).
_BILLING_ADMIN_ONLY = frozenset({"create_budget", "list_budgets", "get_budget", "update_budget", "delete_budget"})


class _ConnectionDropped(ConnectionAbortedError):
    """Raised out of the WSGI app after the socket was shut down: werkzeug treats a
    ``ConnectionError`` from the app as a dropped connection and writes nothing."""


@dataclass
class _Hook:
    method: str
    path_contains: str
    callback: Callable[..., Any]


class EmulatorApp:
    """WSGI app over an :class:`AccountState`, a :class:`FaultInjector` and a request log."""

    def __init__(
        self,
        state: AccountState,
        faults: FaultInjector | None = None,
        *,
        max_log: int = 200_000,
        echo_unknown_routes: bool = True,
    ) -> None:
        self.state = state
        self.faults = faults if faults is not None else FaultInjector()
        self.log = RequestLog(max_log)
        self.control = ControlPlane(self)
        self.echo_unknown_routes = echo_unknown_routes
        self._hooks: list[_Hook] = []
        self._hooks_lock = threading.Lock()
        self.hook_errors: list[BaseException] = []
        self.unknown_routes: list[str] = []

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (see ``RequestLog.entries``)."""
        return self.log.entries()

    def reset_requests(self) -> None:
        self.log.clear()

    def count(self, method: str | None = None, path_contains: str = "", *, status: int | None = None) -> int:
        """How many logged requests match (``method`` None or ``"*"`` = any method)."""
        return self.log.count(method, path_contains, status=status)

    # ------------------------------------------------------------------ hooks

    def before_next(self, method: str, path_contains: str, callback: Callable[..., Any]) -> None:
        """Run ``callback`` once, right before the next request matching ``method`` (``"*"`` = any)
        and ``path_contains`` reaches the account (after any "before" fault let it through).

        The callback gets the :class:`AccountState` if it takes an argument, so it can play
        another writer, e.g. ``lambda state: state.add_grant(pid, ROLE_USER, "users/x@y.z")``.
        """
        with self._hooks_lock:
            self._hooks.append(_Hook((method or "*").upper(), path_contains, callback))

    def pending_hooks(self) -> int:
        with self._hooks_lock:
            return len(self._hooks)

    def clear_hooks(self) -> None:
        with self._hooks_lock:
            self._hooks.clear()

    def _run_hooks(self, method: str, path: str) -> None:
        with self._hooks_lock:
            due = [h for h in self._hooks if (h.method in ("*", method)) and h.path_contains in path]
            for hook in due:
                self._hooks.remove(hook)
        for hook in due:
            try:
                if _takes_argument(hook.callback):
                    hook.callback(self.state)
                else:
                    hook.callback()
            except BaseException as exc:  # surfaced to the test by the fixture
                self.hook_errors.append(exc)
                print(f"[databricks-emulator] before_next callback failed: {exc!r}", file=sys.stderr, flush=True)
                raise ApiError(500, "INTERNAL_ERROR", f"emulator before_next callback failed: {exc!r}") from exc

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        request = Request(environ)
        if request.path.startswith("/_emulator/") or request.path == "/_emulator":
            return self._control(request)(environ, start_response)
        return self._api(request, environ)(environ, start_response)

    def _api(self, request: Request, environ: dict[str, Any]) -> Response:
        started = time.perf_counter()
        method, path = request.method.upper(), request.path
        entry = self.log.arrived(method, path, flat_args(request))
        try:
            entry["body"] = try_json(request.get_data(cache=True))
            response = self._apply_fault(self.faults.take(method, path, "before"), environ, entry)
            if response is None:
                try:
                    self._run_hooks(method, path)
                    response = self._json(self._dispatch(request, method, path))
                except ApiError as exc:
                    response = self._error(exc)
                after = self._apply_fault(self.faults.take(method, path, "after"), environ, entry)
                if after is not None:
                    response = after
            error_code = _error_code_of(response) if response.status_code >= 400 else None
            self.log.finish(entry, started, response.status_code, error_code, "error" if error_code else "ok")
            return response
        except _ConnectionDropped:
            self.log.finish(entry, started, None, None, "dropped")
            raise
        except Exception as exc:  # a bug in the emulator: answer 500 and say so
            logger.exception("emulator failure on %s %s", method, path)
            print(f"[databricks-emulator] internal error on {method} {path}: {exc!r}", file=sys.stderr, flush=True)
            self.log.finish(entry, started, 500, "INTERNAL_ERROR", "error")
            return self._error(ApiError(500, "INTERNAL_ERROR", f"emulator bug: {exc!r}"))

    def _apply_fault(self, fault: Fault | None, environ: dict[str, Any], entry: dict[str, Any]) -> Response | None:
        if fault is None:
            return None
        entry["fault"] = f"{fault.kind}/{fault.phase}"
        if fault.kind == "slow":
            time.sleep(fault.seconds)
            return None
        if fault.kind == "429":
            return self._error(errors.too_many_requests(fault.retry_after or 0, fault.message))
        if fault.kind == "503":
            return self._error(errors.temporarily_unavailable(fault.retry_after, fault.message))
        if fault.kind == "error":
            return self._error(
                ApiError(
                    int(fault.status or 500), fault.error_code or "INTERNAL_ERROR", fault.message or "injected error"
                )
            )
        if fault.kind == "drop":
            _drop_connection(environ)
        raise AssertionError(f"unhandled fault kind {fault.kind}")  # pragma: no cover

    # ------------------------------------------------------------------ API dispatch

    def _dispatch(self, request: Request, method: str, path: str) -> dict[str, Any]:
        handler_name, params = route(API_ROUTES, method, path)
        if handler_name is None:
            self._unknown_route(method, path)
        if handler_name != "host_metadata":
            if not request.headers.get("Authorization"):
                raise errors.unauthenticated(
                    "Credential was not sent or was of an unsupported type for this API. "
                    "Send 'Authorization: Bearer <token>'."
                )
            self.state.check_account(params["account_id"])
        # Who calls: the bearer token's principal (emulator/permissions.py).
        request.environ["emulator.caller"] = self.state.permissions.principal_of(request.headers.get("Authorization"))
        if handler_name in _BILLING_ADMIN_ONLY:
            self.state.permissions.require(request.environ["emulator.caller"], ())
        return getattr(self, "_h_" + handler_name)(request, **{k: v for k, v in params.items() if k != "account_id"})

    def _unknown_route(self, method: str, path: str) -> NoReturn:
        self.unknown_routes.append(f"{method} {path}")
        if self.echo_unknown_routes:
            print(
                f"[databricks-emulator] ENDPOINT_NOT_FOUND: no emulated API for {method} {path}",
                file=sys.stderr,
                flush=True,
            )
        logger.error("ENDPOINT_NOT_FOUND: %s %s", method, path)
        raise errors.endpoint_not_found(method, path)

    def _h_host_metadata(self, request: Request) -> dict[str, Any]:
        # What an account console host publishes: the OIDC root (with the {account_id}
        # placeholder the SDK substitutes) and the account id; no workspace_id (account host).
        base = request.host_url.rstrip("/")
        return {"oidc_endpoint": f"{base}/oidc/accounts/{{account_id}}", "account_id": self.state.account_id}

    def _h_create_policy(self, request: Request) -> dict[str, Any]:
        body = json_object(request)
        unknown = sorted(set(body) - {"policy", "request_id"})
        if unknown:
            raise errors.invalid(f"Unknown field(s) in the request body: {', '.join(unknown)}.")
        return self.state.create_policy(body.get("policy"), body.get("request_id"), caller=_caller(request))

    def _h_list_policies(self, request: Request) -> dict[str, Any]:
        args = request.args
        return self.state.list_policies(
            page_size=int_arg(args, "page_size"),
            page_token=args.get("page_token") or None,
            filter_policy_name=args.get("filter_by.policy_name"),
            filter_creator_user_id=int_arg(args, "filter_by.creator_user_id"),
            filter_creator_user_name=args.get("filter_by.creator_user_name"),
            sort_field=args.get("sort_spec.field"),
            sort_descending=bool_arg(args, "sort_spec.descending"),
            caller=_caller(request),
        )

    def _h_get_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        return self.state.get_policy(policy_id, caller=_caller(request))

    def _h_update_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        # The SDK sends policy.as_dict() as the whole body and the deprecated limit_config
        # (empty) as query parameters ``limit_config.*``, which carry nothing.
        return self.state.update_policy(policy_id, json_object(request), caller=_caller(request))

    def _h_delete_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        self.state.delete_policy(policy_id, caller=_caller(request))
        return {}

    def _h_get_rule_set(self, request: Request) -> dict[str, Any]:
        return self.state.get_rule_set(request.args.get("name"), request.args.get("etag"), caller=_caller(request))

    def _h_update_rule_set(self, request: Request) -> dict[str, Any]:
        body = json_object(request)
        unknown = sorted(set(body) - {"name", "rule_set"})
        if unknown:
            raise errors.invalid(f"Unknown field(s) in the request body: {', '.join(unknown)}.")
        return self.state.update_rule_set(body.get("name"), body.get("rule_set"), caller=_caller(request))

    def _h_assignable_roles(self, request: Request) -> dict[str, Any]:
        return self.state.assignable_roles(request.args.get("resource"))

    # Budgets (emulator/budgets.py): PUT replaces the whole budget.

    def _h_create_budget(self, request: Request) -> dict[str, Any]:
        return self.state.budgets.create(json_object(request))

    def _h_list_budgets(self, request: Request) -> dict[str, Any]:
        return self.state.budgets.list(request.args.get("page_token") or None)

    def _h_get_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.get(budget_id)

    def _h_update_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.update(budget_id, json_object(request))

    def _h_delete_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        self.state.budgets.delete(budget_id)
        return {}

    def _h_get_spend_status(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.spend_status(budget_id)

    def _h_list_spend_statuses(self, request: Request) -> dict[str, Any]:
        args = request.args
        return self.state.budgets.list_spend_statuses(
            args.get("filter"), int_arg(args, "page_size"), args.get("page_token") or None
        )

    # ------------------------------------------------------------------ responses

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body, separators=(",", ":")), status=status, headers=headers, mimetype="application/json"
        )

    def _control(self, request: Request) -> Response:
        method, path = request.method.upper(), request.path
        handler_name, params = route(CONTROL_ROUTES, method, path)
        try:
            if handler_name is None:
                self._unknown_route(method, path)
            return self._json(getattr(self.control, handler_name)(request, **params))
        except ApiError as exc:
            return self._error(exc)
        except (ValueError, TypeError, KeyError) as exc:
            return self._error(errors.invalid(f"bad control request: {exc}"))

    def _error(self, exc: ApiError) -> Response:
        return self._json(exc.body(), exc.status, exc.headers)


# ---------------------------------------------------------------------- helpers


def _caller(request: Request) -> str | None:
    return request.environ.get("emulator.caller")


def _drop_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise _ConnectionDropped("connection dropped by an injected fault")


def _error_code_of(response: Response) -> str | None:
    try:
        return json.loads(response.get_data()).get("error_code")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return None


def _takes_argument(callback: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    for param in signature.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.VAR_POSITIONAL):
            return True
    return False
