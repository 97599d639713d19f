"""A component's account budget checked before it is declared: ``AccountBudget``'s own check runs
on the inputs the component will give it, and each failure is reported once, at the stack-config
path the input comes from (``alerts[2].notify`` -> ``paths["alerts.notify"]``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from providers.core import Failures


def report_account_budget_failures(
    props: dict[str, Any], paths: Mapping[str, str], failures: Failures
) -> dict[str, Any]:
    """The normalized inputs; a failure in ``failures`` for each one ``check`` would refuse."""
    from providers import account_budget

    normalized, found = account_budget.check_inputs(props)
    seen = {(f.property, f.reason) for f in failures.items}
    for failure in found.items:
        where = config_path(failure.property, paths)
        if (where, failure.reason) not in seen:  # one alert problem repeated for every threshold
            seen.add((where, failure.reason))
            failures.add(where, failure.reason)
    return normalized


def config_path(prop: str, paths: Mapping[str, str]) -> str:
    """The config path of a resource property: its nearest listed parent's, indexes dropped."""
    key = re.sub(r"\[\d+\]", "", prop)
    while key:
        if key in paths:
            return paths[key]
        key = key.rpartition(".")[0]
    return prop
