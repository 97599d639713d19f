"""Who calls, and what they may do: the emulator's model of budget-policy permissions.

What Databricks documents or answers, and what is modelled here:

* A request's bearer token belongs to a principal (``tokens``: token -> principal); a token not
  in the map belongs to ``default_principal``.
* Billing admins (``billing_admins``) may call every budget policy API on every policy.
* Anyone authenticated may create a policy, and its creator becomes its Manager ("new policies can
  only be accessed by the policy creator and users with the billing admin role").
* Anyone else needs ``roles/budgetPolicy.manager`` on a policy to change or delete it and to read
  or write its grants (a User may read the policy itself); otherwise 403 PERMISSION_DENIED
  "You are not allowed to call this API, consider getting billing.admin role"
  (terraform-provider-databricks #4554).
* Emails and service principal ids are compared regardless of case, as Databricks identifies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from emulator import errors

DEFAULT_PRINCIPAL = "users/emulator-user@example.com"
NOT_ALLOWED = "You are not allowed to call this API, consider getting billing.admin role"
# ``creator_manager`` value meaning "whoever created the policy" (the default).
CALLER = "caller"


def principal_key(principal: str) -> str:
    kind, _, rest = principal.partition("/")
    return principal if kind == "groups" else f"{kind}/{rest.lower()}"


@dataclass
class Permissions:
    """The token -> principal map and the billing admins of the emulated account."""

    tokens: dict[str, str] = field(default_factory=dict)
    billing_admins: set[str] = field(default_factory=lambda: {DEFAULT_PRINCIPAL})
    default_principal: str = DEFAULT_PRINCIPAL

    def principal_of(self, authorization: str | None) -> str:
        token = (authorization or "").removeprefix("Bearer ").strip()
        return self.tokens.get(token, self.default_principal)

    def is_admin(self, principal: str | None) -> bool:
        return principal is None or principal_key(principal) in {principal_key(p) for p in self.billing_admins}

    def require(self, caller: str | None, holders: Iterable[str]) -> None:
        """403 unless ``caller`` (None: the emulator itself) is a billing admin or among ``holders``."""
        if caller is None or self.is_admin(caller):
            return
        if principal_key(caller) not in {principal_key(p) for p in holders}:
            raise errors.permission_denied(NOT_ALLOWED)
