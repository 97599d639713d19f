"""A stock ``pulumi.dynamic.Resource`` with a trivial provider: the anchor of bench.program_scale.

It lives in an importable module, so dill pickles the provider by reference exactly as it pickles
ours (a provider defined in ``__main__`` would be pickled by value, which costs more).  It takes
the same properties as ``ServerlessBudgetPolicy``, so only the dynamic-resource machinery differs.
"""

from __future__ import annotations

from typing import Any

import pulumi.dynamic as dyn


class TrivialProvider(dyn.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult("id", props)


class StockResource(dyn.Resource, module="bench", name="StockResource"):
    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__(TrivialProvider(), name, props)
