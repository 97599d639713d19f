"""A program declares thousands of our dynamic resources; stock dynamic resources cannot."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

from harness.provider_server import PROJECT_ROOT
from harness.pulumi_program import run_program
from providers import BudgetPolicyGrants, ServerlessBudgetPolicy


def test_5000_budget_policies_construct_in_one_program():
    def program():
        for i in range(5000):
            ServerlessBudgetPolicy(f"policy-{i}", policy_name=f"team-{i}", custom_tags={"team": f"t{i}"})

    mocks = run_program(program)
    policies = mocks.of_type("ServerlessBudgetPolicy")
    assert len(policies) == 5000
    assert len({p.inputs["__provider"] for p in policies}) == 1
    assert {p.inputs["policy_name"] for p in policies} == {f"team-{i}" for i in range(5000)}


def test_pickler_is_left_as_found():
    before = (pickle._Pickler._batch_setitems, pickle._Pickler.save_dict, pickle.Pickler)

    def program():
        ServerlessBudgetPolicy("a", policy_name="a")
        BudgetPolicyGrants("g", policy_id="0" * 36, users=["users/a@example.com"])

    run_program(program)
    assert (pickle._Pickler._batch_setitems, pickle._Pickler.save_dict, pickle.Pickler) == before


STOCK_PROGRAM = textwrap.dedent(
    """
    import pulumi, pulumi.dynamic as dyn
    from harness.pulumi_program import run_program

    class Stock(dyn.ResourceProvider):
        def create(self, props):
            return dyn.CreateResult("id", props)

    class StockResource(dyn.Resource):
        pass

    def program():
        for i in range(1000):
            StockResource(Stock(), f"r{i}", {"n": i})

    try:
        run_program(program)
        print("OK")
    except RecursionError:
        print("RecursionError")
    """
)


def test_stock_dynamic_resources_hit_recursion_error_where_ours_do_not():
    """The anchor for the scale claim: stock pulumi 3.272 fails well below 1,000 resources."""
    result = subprocess.run(
        [sys.executable, "-c", STOCK_PROGRAM], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert "RecursionError" in result.stdout + result.stderr, result.stdout + result.stderr[-2000:]
