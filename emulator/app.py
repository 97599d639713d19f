"""The HTTP face of the emulator: a WSGI application speaking the Databricks account REST API.

Routes (exactly the paths databricks-sdk 0.156 calls; anything else is a loud 404
``ENDPOINT_NOT_FOUND`` naming the method and path, also written to stderr):

* ``GET  /.well-known/databricks-config``  host metadata the SDK fetches when a ``Config`` is built
* ``POST|GET /api/2.1/accounts/{account_id}/budget-policies``
* ``GET|PATCH|DELETE /api/2.1/accounts/{account_id}/budget-policies/{policy_id}``
* ``GET|PUT /api/2.0/preview/accounts/{account_id}/access-control/rule-sets``
* ``GET  /api/2.0/preview/accounts/{account_id}/access-control/assignable-roles``
* ``POST|GET /api/2.1/accounts/{account_id}/budgets``, ``GET|PUT|DELETE …/budgets/{budget_id}``
* ``GET  /api/2.1/accounts/{account_id}/budget-spend-statuses[/{budget_id}]``

Control endpoints for tests and benchmarks in other processes live under ``/_emulator/`` (see
``CONTROL_ROUTES`` below and emulator/README.md); they are neither logged nor subject to faults.

Every API request passes, in order: "before" faults -> ``before_next`` hooks -> the account
(:mod:`emulator.state`) -> "after" faults, and is appended to the request log.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from werkzeug.wrappers import Request, Response

from emulator import errors
from emulator.errors import ApiError
from emulator.faults import Fault, FaultInjector
from emulator.state import AccountState

logger = logging.getLogger("emulator")

_ACCOUNT = r"(?P<account_id>[^/]+)"
_ROUTES: list[tuple[re.Pattern, dict[str, str]]] = [
    (re.compile(r"^/\.well-known/databricks-config$"), {"GET": "host_metadata"}),
    (
        re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budget-policies$"),
        {"POST": "create_policy", "GET": "list_policies"},
    ),
    (
        re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budget-policies/(?P<policy_id>[^/]+)$"),
        {"GET": "get_policy", "PATCH": "update_policy", "DELETE": "delete_policy"},
    ),
    (
        re.compile(rf"^/api/2\.0/preview/accounts/{_ACCOUNT}/access-control/rule-sets$"),
        {"GET": "get_rule_set", "PUT": "update_rule_set"},
    ),
    (
        re.compile(rf"^/api/2\.0/preview/accounts/{_ACCOUNT}/access-control/assignable-roles$"),
        {"GET": "assignable_roles"},
    ),
    (re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budgets$"), {"POST": "create_budget", "GET": "list_budgets"}),
    (
        re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budgets/(?P<budget_id>[^/]+)$"),
        {"GET": "get_budget", "PUT": "update_budget", "DELETE": "delete_budget"},
    ),
    (re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budget-spend-statuses$"), {"GET": "list_spend_statuses"}),
    (
        re.compile(rf"^/api/2\.1/accounts/{_ACCOUNT}/budget-spend-statuses/(?P<budget_id>[^/]+)$"),
        {"GET": "get_spend_status"},
    ),
]

CONTROL_ROUTES: list[tuple[re.Pattern, dict[str, str]]] = [
    (re.compile(r"^/_emulator/health$"), {"GET": "health"}),
    (re.compile(r"^/_emulator/requests$"), {"GET": "get_requests", "DELETE": "clear_requests"}),
    (re.compile(r"^/_emulator/faults$"), {"GET": "get_faults", "POST": "add_fault", "DELETE": "clear_faults"}),
    (re.compile(r"^/_emulator/faults/(?P<fault_id>\d+)$"), {"DELETE": "remove_fault"}),
    (re.compile(r"^/_emulator/reset$"), {"POST": "reset"}),
    (re.compile(r"^/_emulator/state$"), {"GET": "get_state"}),
    (re.compile(r"^/_emulator/policies/(?P<policy_id>[^/]+)/grants$"), {"POST": "add_grant"}),
    (re.compile(r"^/_emulator/budgets/(?P<budget_id>[^/]+)/usage$"), {"POST": "add_budget_usage"}),
    (re.compile(r"^/_emulator/budgets/(?P<budget_id>[^/]+)/reorder$"), {"POST": "reorder_budget"}),
    (re.compile(r"^/_emulator/caller$"), {"POST": "set_caller"}),
]


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
        faults: Optional[FaultInjector] = None,
        *,
        max_log: int = 200_000,
        echo_unknown_routes: bool = True,
    ) -> None:
        self.state = state
        self.faults = faults if faults is not None else FaultInjector()
        self.max_log = max_log
        self.echo_unknown_routes = echo_unknown_routes
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._seq = 0
        self._hooks: list[_Hook] = []
        self._hooks_lock = threading.Lock()
        self.hook_errors: list[BaseException] = []
        self.unknown_routes: list[str] = []

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log in arrival order: dicts with seq, time, method, path, query,
        body (parsed JSON request body, if any), status (None while pending or when dropped),
        error_code, fault (e.g. ``"429/before"``), outcome (``pending``, ``ok``, ``error``,
        ``dropped``) and duration_ms."""
        with self._log_lock:
            return [dict(entry) for entry in self._log]

    def reset_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def count(self, method: Optional[str] = None, path_contains: str = "", *, status: Optional[int] = None) -> int:
        """How many logged requests match (``method`` None or ``"*"`` = any method)."""
        method = None if method in (None, "*") else method.upper()
        with self._log_lock:
            return sum(
                1
                for entry in self._log
                if (method is None or entry["method"] == method)
                and path_contains in entry["path"]
                and (status is None or entry["status"] == status)
            )

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)
            if len(self._log) > self.max_log:
                del self._log[: len(self._log) - self.max_log]

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
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": path,
            "query": _flat_args(request),
            "body": None,
            "status": None,
            "error_code": None,
            "fault": None,
            "outcome": "pending",
            "duration_ms": None,
        }
        self._record(entry)  # at arrival, so a request still being served is already counted
        try:
            entry["body"] = _try_json(request.get_data(cache=True))
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
            self._finish(entry, started, response.status_code, error_code, "error" if error_code else "ok")
            return response
        except _ConnectionDropped:
            self._finish(entry, started, None, None, "dropped")
            raise
        except Exception as exc:  # a bug in the emulator: answer 500 and say so
            logger.exception("emulator failure on %s %s", method, path)
            print(f"[databricks-emulator] internal error on {method} {path}: {exc!r}", file=sys.stderr, flush=True)
            self._finish(entry, started, 500, "INTERNAL_ERROR", "error")
            return self._error(ApiError(500, "INTERNAL_ERROR", f"emulator bug: {exc!r}"))

    def _finish(self, entry: dict[str, Any], started: float, status: Optional[int], error_code: Optional[str], outcome: str) -> None:
        with self._log_lock:
            entry["status"] = status
            entry["error_code"] = error_code
            entry["outcome"] = outcome
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000.0, 3)

    def _apply_fault(self, fault: Optional[Fault], environ: dict[str, Any], entry: dict[str, Any]) -> Optional[Response]:
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
                ApiError(int(fault.status), fault.error_code or "INTERNAL_ERROR", fault.message or "injected error")
            )
        if fault.kind == "drop":
            _drop_connection(environ)
        raise AssertionError(f"unhandled fault kind {fault.kind}")  # pragma: no cover

    # ------------------------------------------------------------------ API dispatch

    def _dispatch(self, request: Request, method: str, path: str) -> dict[str, Any]:
        handler_name, params = _route(_ROUTES, method, path)
        if handler_name is None:
            self._unknown_route(method, path)
        if handler_name != "host_metadata":
            if not request.headers.get("Authorization"):
                raise errors.unauthenticated(
                    "Credential was not sent or was of an unsupported type for this API. "
                    "Send 'Authorization: Bearer <token>'."
                )
            self.state.check_account(params["account_id"])
        return getattr(self, "_h_" + handler_name)(request, **{k: v for k, v in params.items() if k != "account_id"})

    def _unknown_route(self, method: str, path: str) -> None:
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
        body = _json_object(request)
        unknown = sorted(set(body) - {"policy", "request_id"})
        if unknown:
            raise errors.invalid(f"Unknown field(s) in the request body: {', '.join(unknown)}.")
        return self.state.create_policy(body.get("policy"), body.get("request_id"))

    def _h_list_policies(self, request: Request) -> dict[str, Any]:
        args = request.args
        return self.state.list_policies(
            page_size=_int_arg(args, "page_size"),
            page_token=args.get("page_token") or None,
            filter_policy_name=args.get("filter_by.policy_name"),
            filter_creator_user_id=_int_arg(args, "filter_by.creator_user_id"),
            filter_creator_user_name=args.get("filter_by.creator_user_name"),
            sort_field=args.get("sort_spec.field"),
            sort_descending=_bool_arg(args, "sort_spec.descending"),
        )

    def _h_get_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        return self.state.get_policy(policy_id)

    def _h_update_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        # The SDK sends policy.as_dict() as the whole body and the deprecated limit_config
        # (empty) as query parameters ``limit_config.*``, which carry nothing.
        return self.state.update_policy(policy_id, _json_object(request))

    def _h_delete_policy(self, request: Request, policy_id: str) -> dict[str, Any]:
        self.state.delete_policy(policy_id)
        return {}

    def _h_get_rule_set(self, request: Request) -> dict[str, Any]:
        return self.state.get_rule_set(request.args.get("name"), request.args.get("etag"))

    def _h_update_rule_set(self, request: Request) -> dict[str, Any]:
        body = _json_object(request)
        unknown = sorted(set(body) - {"name", "rule_set"})
        if unknown:
            raise errors.invalid(f"Unknown field(s) in the request body: {', '.join(unknown)}.")
        return self.state.update_rule_set(body.get("name"), body.get("rule_set"))

    def _h_assignable_roles(self, request: Request) -> dict[str, Any]:
        return self.state.assignable_roles(request.args.get("resource"))

    # Budgets (emulator/budgets.py): PUT replaces the whole budget.

    def _h_create_budget(self, request: Request) -> dict[str, Any]:
        return self.state.budgets.create(_json_object(request))

    def _h_list_budgets(self, request: Request) -> dict[str, Any]:
        return self.state.budgets.list(request.args.get("page_token") or None)

    def _h_get_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.get(budget_id)

    def _h_update_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.update(budget_id, _json_object(request))

    def _h_delete_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        self.state.budgets.delete(budget_id)
        return {}

    def _h_get_spend_status(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.spend_status(budget_id)

    def _h_list_spend_statuses(self, request: Request) -> dict[str, Any]:
        args = request.args
        return self.state.budgets.list_spend_statuses(
            args.get("filter"), _int_arg(args, "page_size"), args.get("page_token") or None
        )

    # ------------------------------------------------------------------ control endpoints

    def _control(self, request: Request) -> Response:
        method, path = request.method.upper(), request.path
        handler_name, params = _route(CONTROL_ROUTES, method, path)
        try:
            if handler_name is None:
                self._unknown_route(method, path)
            return self._json(getattr(self, "_c_" + handler_name)(request, **params))
        except ApiError as exc:
            return self._error(exc)
        except (ValueError, TypeError, KeyError) as exc:
            return self._error(errors.invalid(f"bad control request: {exc}"))

    def _c_health(self, request: Request) -> dict[str, Any]:
        return {"status": "ok", "account_id": self.state.account_id, "policies": len(self.state)}

    def _c_get_requests(self, request: Request) -> dict[str, Any]:
        return {"requests": self.requests}

    def _c_clear_requests(self, request: Request) -> dict[str, Any]:
        self.reset_requests()
        return {}

    def _c_get_faults(self, request: Request) -> dict[str, Any]:
        return {"faults": [f.to_json() for f in self.faults.list()], "history": list(self.faults.history)}

    def _c_add_fault(self, request: Request) -> dict[str, Any]:
        spec = _json_object(request)
        kind = spec.pop("kind")
        return {"fault": self.faults.inject(kind, **spec).to_json()}

    def _c_clear_faults(self, request: Request) -> dict[str, Any]:
        self.faults.clear()
        return {}

    def _c_remove_fault(self, request: Request, fault_id: str) -> dict[str, Any]:
        if not self.faults.remove(int(fault_id)):
            raise errors.not_found(f"no fault {fault_id}")
        return {}

    def _c_reset(self, request: Request) -> dict[str, Any]:
        what = _json_object(request) if request.get_data() else {}
        if what.get("state", True):
            self.state.reset()
        if what.get("faults", True):
            self.faults.clear()
            self.clear_hooks()
        if what.get("requests", True):
            self.reset_requests()
        return {}

    def _c_get_state(self, request: Request) -> dict[str, Any]:
        return self.state.snapshot()

    def _c_add_grant(self, request: Request, policy_id: str) -> dict[str, Any]:
        spec = _json_object(request)
        return {"etag": self.state.add_grant(policy_id, spec["role"], spec["principal"])}

    def _c_add_budget_usage(self, request: Request, budget_id: str) -> dict[str, Any]:
        spec = _json_object(request)
        return self.state.budgets.add_usage(
            budget_id, spec["usd"], principal_id=spec.get("principal_id"), external=bool(spec.get("external", False))
        )

    def _c_reorder_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.state.budgets.reorder(budget_id)

    def _c_set_caller(self, request: Request) -> dict[str, Any]:
        spec = _json_object(request)
        self.state.budgets.caller_group_ids = {int(g) for g in spec.get("group_ids") or []}
        return {"user_id": self.state.creator_user_id, "group_ids": sorted(self.state.budgets.caller_group_ids)}

    # ------------------------------------------------------------------ responses

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200, headers: Optional[dict[str, str]] = None) -> Response:
        return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers, mimetype="application/json")

    def _error(self, exc: ApiError) -> Response:
        return self._json(exc.body(), exc.status, exc.headers)


# ---------------------------------------------------------------------- helpers


def _route(table: list[tuple[re.Pattern, dict[str, str]]], method: str, path: str) -> tuple[Optional[str], dict[str, str]]:
    for pattern, methods in table:
        match = pattern.match(path)
        if match:
            handler = methods.get(method)
            return (handler, match.groupdict()) if handler else (None, {})
    return None, {}


def _drop_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise _ConnectionDropped("connection dropped by an injected fault")


def _json_object(request: Request) -> dict[str, Any]:
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        raise errors.malformed("Invalid JSON given in the body of the request - failed to parse.") from None
    if not isinstance(value, dict):
        raise errors.malformed("Invalid JSON given in the body of the request - expected a map.")
    return value


def _try_json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _flat_args(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    return out


def _int_arg(args: Any, name: str) -> Optional[int]:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid(f"{name} must be an integer, got {raw!r}.") from None


def _bool_arg(args: Any, name: str) -> bool:
    raw = args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise errors.invalid(f"{name} must be true or false, got {raw!r}.")


def _error_code_of(response: Response) -> Optional[str]:
    try:
        return json.loads(response.get_data()).get("error_code")
    except Exception:
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
