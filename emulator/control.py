"""The emulator's control plane (``/_emulator/...``, see routes.CONTROL_ROUTES): what tests and
benchmarks in other processes use to read the request log and state, inject faults and reset.
It is neither logged nor subject to faults."""

from __future__ import annotations

from typing import Any, Protocol

from werkzeug.wrappers import Request

from emulator import errors
from emulator.faults import FaultInjector
from emulator.routes import CONTROL_ROUTES, readable
from emulator.state import AccountState
from emulator.wire import json_object


class Controlled(Protocol):
    """What the control plane reads and resets (an :class:`emulator.app.EmulatorApp`)."""

    state: AccountState
    faults: FaultInjector

    @property
    def requests(self) -> list[dict[str, Any]]: ...

    def reset_requests(self) -> None: ...

    def clear_hooks(self) -> None: ...


class ControlPlane:
    def __init__(self, app: Controlled) -> None:
        self.app = app

    def index(self, request: Request) -> dict[str, Any]:
        return {
            "emulator": "Databricks account API",
            "account_id": self.app.state.account_id,
            "control_endpoints": [
                f"{method} {readable(pattern)}" for pattern, methods in CONTROL_ROUTES[1:] for method in methods
            ],
        }

    def health(self, request: Request) -> dict[str, Any]:
        return {"status": "ok", "account_id": self.app.state.account_id, "policies": len(self.app.state)}

    def get_requests(self, request: Request) -> dict[str, Any]:
        return {"requests": self.app.requests}

    def clear_requests(self, request: Request) -> dict[str, Any]:
        self.app.reset_requests()
        return {}

    def get_faults(self, request: Request) -> dict[str, Any]:
        return {"faults": [f.to_json() for f in self.app.faults.list()], "history": list(self.app.faults.history)}

    def add_fault(self, request: Request) -> dict[str, Any]:
        spec = json_object(request)
        kind = spec.pop("kind")
        return {"fault": self.app.faults.inject(kind, **spec).to_json()}

    def clear_faults(self, request: Request) -> dict[str, Any]:
        self.app.faults.clear()
        return {}

    def remove_fault(self, request: Request, fault_id: str) -> dict[str, Any]:
        if not self.app.faults.remove(int(fault_id)):
            raise errors.not_found(f"no fault {fault_id}")
        return {}

    def reset(self, request: Request) -> dict[str, Any]:
        what = json_object(request) if request.get_data() else {}
        if what.get("state", True):
            self.app.state.reset()
        if what.get("faults", True):
            self.app.faults.clear()
            self.app.clear_hooks()
        if what.get("requests", True):
            self.app.reset_requests()
        return {}

    def get_state(self, request: Request) -> dict[str, Any]:
        return self.app.state.snapshot()

    def add_grant(self, request: Request, policy_id: str) -> dict[str, Any]:
        spec = json_object(request)
        return {"etag": self.app.state.add_grant(policy_id, spec["role"], spec["principal"])}

    def add_budget_usage(self, request: Request, budget_id: str) -> dict[str, Any]:
        spec = json_object(request)
        return self.app.state.budgets.add_usage(
            budget_id, spec["usd"], principal_id=spec.get("principal_id"), external=bool(spec.get("external", False))
        )

    def reorder_budget(self, request: Request, budget_id: str) -> dict[str, Any]:
        return self.app.state.budgets.reorder(budget_id)

    def set_caller(self, request: Request) -> dict[str, Any]:
        spec = json_object(request)
        self.app.state.budgets.caller_group_ids = {int(g) for g in spec.get("group_ids") or []}
        return {"user_id": self.app.state.creator_user_id, "group_ids": sorted(self.app.state.budgets.caller_group_ids)}
