"""Adopting an object that already exists: the ``adopt_id`` input, taken over by ``create()``.

The engine cannot import a dynamic resource: its import step calls the provider's Read with the id
only, no inputs and no state (pkg/resource/deploy/step.go, ``ImportStep.Apply``), so the dynamic
provider server finds no ``__provider`` to call (pulumi/pulumi#16175). Create is where the engine
passes the inputs, so that is where an existing object is taken over: read it, update what differs
from the declaration, keep its id.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, ResourceProvider

from providers._base import Failures, api_error, control_character_failure, quoted
from providers.schema import Field

ADOPT_KEY = "adopt_id"


def validate_adopt_id(value: Any, failures: Failures, prop: str = ADOPT_KEY) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        failures.add(prop, f"must be the id of an existing object to adopt (a string), not {quoted(value)}")
        return None
    if reason := control_character_failure(value):
        failures.add(prop, f"{quoted(value)} {reason}")
    return value.strip()


def adopt_field(thing: str) -> Field:
    """The ``adopt_id`` field of a resource's schema: an input only Create reads (never compared,
    not kept in the outputs)."""
    return Field(
        ADOPT_KEY,
        "str",
        f"the id of an existing {thing} that the first `pulumi up` takes over (updated to the declared "
        "inputs) instead of creating one; ignored once the resource is in the stack's state",
        validate_adopt_id,
        compared=False,
        echoed=False,
    )


def adopt_existing(provider: ResourceProvider, thing: str, props: dict[str, Any]) -> CreateResult:
    """``create()`` of a resource declared with ``adopt_id``: read that object, update what differs
    from the declared inputs, and take its id. Refuses if it does not exist, or if a field that
    cannot change in place differs (adopting must not replace someone's object)."""
    adopt_id = props[ADOPT_KEY]
    found = provider.read(adopt_id, {})
    if not found.id:
        raise api_error(
            "adopt",
            thing,
            adopt_id,
            f"no {thing} has this id",
            "Give the id of an existing one, or remove adopt_id to create a new one.",
        )
    outs = dict(found.outs or {})
    diff = provider.diff(found.id, outs, props)
    if diff.replaces:
        fields = ", ".join(diff.replaces)
        raise api_error(
            "adopt",
            thing,
            adopt_id,
            f"its {fields} differ from what is declared and cannot change in place",
            f"Declare {fields} as the existing {thing} has it, or remove adopt_id to create a new one.",
        )
    if diff.changes is not False:  # None: the provider could not tell
        outs = dict(provider.update(found.id, outs, props).outs or {})
    return CreateResult(found.id, outs)
