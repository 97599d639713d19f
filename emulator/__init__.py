"""A local emulator of the Databricks account API that the real databricks-sdk talks to.

It serves budget policies (``/api/2.1/accounts/{id}/budget-policies``), their access-control
rule sets (``/api/2.0/preview/accounts/{id}/access-control/rule-sets``) and account budgets with
their spend statuses (``/api/2.1/accounts/{id}/budgets``, ``…/budget-spend-statuses``) with
Databricks' validation, error codes and etag semantics, plus fault injection, a request log and a
JSON state file.  See emulator/README.md.

* :mod:`emulator.state`        the account: its stores, their lock and journal (pure Python, thread-safe)
* :mod:`emulator.budget_policies`  budget policies and request ids (a store of the account)
* :mod:`emulator.rule_sets`    budget-policy rule sets, etags and permissions checks (a store)
* :mod:`emulator.budgets`      account budgets and spend statuses (a store)
* :mod:`emulator.budget_validation`, :mod:`emulator.budget_spend`  what a budget must be; spend statuses
* :mod:`emulator.back_doors`   test back doors: read the account, play another writer
* :mod:`emulator.journal`      the lock and journal the stores share
* :mod:`emulator.validation`   what Databricks accepts (limits, names, principals)
* :mod:`emulator.paging`       list paging (page tokens)
* :mod:`emulator.persistence`  the state file: snapshot + journal
* :mod:`emulator.app`          the WSGI app: the request pipeline and API handlers
* :mod:`emulator.routes`       every route (API and control plane) in one table
* :mod:`emulator.control`      the ``/_emulator/`` control plane
* :mod:`emulator.request_log`  the request log
* :mod:`emulator.wire`         request bodies and query parameters
* :mod:`emulator.errors`       Databricks' error shapes
* :mod:`emulator.faults`       fault rules (429, 503, dropped connection, slow, any error)
* :mod:`emulator.server`  run it in a thread; real ``AccountClient`` for it
* :mod:`emulator.process` run it as ``python -m emulator``; HTTP control client
"""

from emulator.errors import ApiError
from emulator.faults import Fault, FaultInjector
from emulator.state import BUDGET_POLICY_ROLES, ROLE_MANAGER, ROLE_USER, AccountState, rule_set_name

__all__ = [
    "ApiError",
    "AccountState",
    "BUDGET_POLICY_ROLES",
    "EmulatorApp",
    "EmulatorProcess",
    "EmulatorServer",
    "Fault",
    "FaultInjector",
    "RemoteControl",
    "ROLE_MANAGER",
    "ROLE_USER",
    "rule_set_name",
]


def __getattr__(name):
    # The HTTP pieces import werkzeug/requests; load them only when asked for.
    if name == "EmulatorApp":
        from emulator.app import EmulatorApp

        return EmulatorApp
    if name == "EmulatorServer":
        from emulator.server import EmulatorServer

        return EmulatorServer
    if name in ("EmulatorProcess", "RemoteControl"):
        from emulator import process

        return getattr(process, name)
    raise AttributeError(name)
