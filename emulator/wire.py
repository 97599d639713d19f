"""Reading what a request carries: its JSON body and its query parameters, with the errors
Databricks answers for malformed ones."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request

from emulator import errors


def json_object(request: Request) -> dict[str, Any]:
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


def try_json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def flat_args(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    return out


def int_arg(args: Any, name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid(f"{name} must be an integer, got {raw!r}.") from None


def bool_arg(args: Any, name: str) -> bool:
    raw = args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise errors.invalid(f"{name} must be true or false, got {raw!r}.")
