"""ml-budgets guardrails: run with `pulumi preview --policy-pack policies` (see the README)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from guardrails import POLICIES

PolicyPack(
    name="ml-budgets-guardrails",
    description="Guardrails for AI/ML spend: hard stops, cap ceilings, safe grants, cost tags, reachable alerts.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
