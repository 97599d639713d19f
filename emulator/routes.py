"""Every route the emulator serves, in one place: the Databricks API paths (exactly those
databricks-sdk 0.156 calls) and the ``/_emulator/`` control plane.  Each maps a path pattern to
the handler name per HTTP method."""

from __future__ import annotations

import re

RouteTable = list[tuple[re.Pattern, dict[str, str]]]

_ACCOUNT = r"(?P<account_id>[^/]+)"
API_ROUTES: RouteTable = [
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

CONTROL_ROUTES: RouteTable = [
    (re.compile(r"^/_emulator/?$"), {"GET": "index"}),
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


def readable(pattern: re.Pattern) -> str:
    """``/_emulator/faults/{fault_id}`` for the route pattern ``^/_emulator/faults/(?P<fault_id>\\d+)$``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern).strip("^$").replace("\\", "")


def route(table: RouteTable, method: str, path: str) -> tuple[str | None, dict[str, str]]:
    for pattern, methods in table:
        match = pattern.match(path)
        if match:
            handler = methods.get(method)
            return (handler, match.groupdict()) if handler else (None, {})
    return None, {}
