"""What the emulated Databricks accepts: the documented constraints of ``BudgetPolicy``
(databricks-sdk 0.156, docs.databricks.com/api/budget-policy) and of account access-control rule
sets, each failure raised as the 400 ``INVALID_PARAMETER_VALUE`` Databricks answers.
emulator/README.md lists them and the choices made where Databricks does not say.
"""

from __future__ import annotations

import re
from typing import Any

from emulator import errors

# Databricks' limits, copied here on purpose rather than imported from providers/: the emulator
# plays Databricks, so it must not agree with our providers by construction.  tests/providers/test_contracts.py
# runs both sides' validators over the same values.
POLICY_NAME_MAX = 127
RESERVED_NAME_PREFIX = "databricks:default-policy"
MAX_CUSTOM_TAGS = 20
TAG_KEY_MAX = 512
TAG_VALUE_MAX = 256
RESERVED_TAG_KEYS = frozenset({"budget-policy-name", "budget-policy-id", "budget-policy-resolution-result"})
INT64_MAX = 2**63 - 1

ROLE_USER = "roles/budgetPolicy.user"
ROLE_MANAGER = "roles/budgetPolicy.manager"
BUDGET_POLICY_ROLES = (ROLE_MANAGER, ROLE_USER)

POLICY_FIELDS = frozenset({"policy_id", "policy_name", "custom_tags", "binding_workspace_ids"})
TAG_FIELDS = frozenset({"key", "value"})
RULE_SET_FIELDS = frozenset({"name", "etag", "grant_rules"})
GRANT_RULE_FIELDS = frozenset({"role", "principals"})

# Path parameter constraint published for GET/DELETE .../budget-policies/{policy_id}.
POLICY_ID_PATH_RE = re.compile(r"^[\w.-]{1,40}$", re.ASCII)
RULE_SET_NAME_RE = re.compile(r"^accounts/(?P<account>[^/]+)/budgetPolicies/(?P<policy>[^/]+)/ruleSets/default$")
RESOURCE_NAME_RE = re.compile(r"^accounts/(?P<account>[^/]+)/budgetPolicies/(?P<policy>[^/]+)$")
# Rule sets Databricks has but this emulator does not model (answered 501, never silently).
OTHER_RULE_SET_RE = re.compile(r"^accounts/[^/]+(/(groups|servicePrincipals|tagPolicies)/[^/]+)?/ruleSets/default$")
OTHER_RESOURCE_RE = re.compile(r"^accounts/[^/]+(/(groups|servicePrincipals|tagPolicies)/[^/]+)?$")
PRINCIPAL_RES = (
    re.compile(r"^users/[^\s@]+@[^\s@/]+$"),
    re.compile(r"^groups/\S(.*\S)?$", re.DOTALL),
    re.compile(r"^servicePrincipals/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
)


def expect_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid(f"{what} must be a JSON object, got {type(value).__name__}.")
    return value


def expect_fields(value: Any, where: str, fields: frozenset, what: str) -> dict[str, Any]:
    """``value`` is an object with no field outside ``fields`` (``what`` names them for people)."""
    if not isinstance(value, dict):
        raise errors.invalid(f"{where} must be an object with {what}.")
    unknown = sorted(set(value) - fields)
    if unknown:
        raise errors.invalid(f"Unknown field(s) in {where}: {', '.join(unknown)}.")
    return value


def required_text(value: dict[str, Any], field: str, where: str) -> str:
    text = value.get(field)
    if not isinstance(text, str) or not text:
        raise errors.invalid(f"{where}.{field} is required.")
    return text


def check_policy_id(policy_id: Any) -> str:
    """A policy id as a request gave it (in a path or a name: any JSON value) has the published form."""
    if not isinstance(policy_id, str) or not POLICY_ID_PATH_RE.match(policy_id):
        raise errors.invalid(f"Invalid policy_id {policy_id!r}: expected 1 to 40 characters from [A-Za-z0-9_.-].")
    return policy_id


def check_request_id(request_id: Any) -> None:
    if not isinstance(request_id, str) or len(request_id) != 36 or not request_id.isascii():
        raise errors.invalid(
            f"request_id must be exactly 36 ASCII characters (a UUID is recommended), got {request_id!r}."
        )


def validate_policy_fields(policy: dict[str, Any], prefix: str) -> tuple[str, list[dict[str, str]], list[int]]:
    unknown = sorted(set(policy) - POLICY_FIELDS)
    if unknown:
        raise errors.invalid(f"Unknown field(s) in {prefix.rstrip('.')}: {', '.join(unknown)}.")
    name = policy.get("policy_name")
    if name is None or name == "":
        raise errors.invalid(f"{prefix}policy_name is required.")
    if not isinstance(name, str):
        raise errors.invalid(f"{prefix}policy_name must be a string.")
    if len(name) > POLICY_NAME_MAX:
        raise errors.invalid(
            f"{prefix}policy_name must be between 1 and {POLICY_NAME_MAX} characters long, got {len(name)}."
        )
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        bad = next(ch for ch in name if ord(ch) > 0xFF)
        raise errors.invalid(
            f"{prefix}policy_name can contain only characters from the ISO 8859-1 (latin1) set; "
            f"{bad!r} (U+{ord(bad):04X}) is not."
        ) from None
    if name.startswith(RESERVED_NAME_PREFIX):
        raise errors.invalid(f"{prefix}policy_name can't start with the reserved keyword {RESERVED_NAME_PREFIX!r}.")
    return (
        name,
        validate_tags(policy.get("custom_tags"), prefix),
        validate_workspaces(policy.get("binding_workspace_ids"), prefix),
    )


def validate_tags(raw: Any, prefix: str) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.invalid(f"{prefix}custom_tags must be a list of {{key, value}} objects.")
    if len(raw) > MAX_CUSTOM_TAGS:
        raise errors.invalid(
            f"{prefix}custom_tags: at most {MAX_CUSTOM_TAGS} entries are allowed per policy, got {len(raw)}."
        )
    tags: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, tag in enumerate(raw):
        where = f"{prefix}custom_tags[{index}]"
        expect_fields(tag, where, TAG_FIELDS, "key and value")
        key = required_text(tag, "key", where)
        if len(key) > TAG_KEY_MAX:
            raise errors.invalid(f"{where}.key must be between 1 and {TAG_KEY_MAX} characters long, got {len(key)}.")
        if key in RESERVED_TAG_KEYS:
            raise errors.invalid(
                f"{where}.key {key!r} is reserved: budget-policy-name, budget-policy-id and "
                "budget-policy-resolution-result are set by Databricks."
            )
        if key in seen:
            raise errors.invalid(f"{where}.key {key!r} is duplicated: tag keys must be unique within a policy.")
        seen.add(key)
        value = tag.get("value")
        entry = {"key": key}
        if value is not None:
            if not isinstance(value, str):
                raise errors.invalid(f"{where}.value must be a string.")
            if len(value) > TAG_VALUE_MAX:
                raise errors.invalid(
                    f"{where}.value must be at most {TAG_VALUE_MAX} characters long, got {len(value)}."
                )
            entry["value"] = value
        tags.append(entry)
    return tags


def validate_workspaces(raw: Any, prefix: str) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.invalid(f"{prefix}binding_workspace_ids must be a list of workspace ids (int64).")
    ids: list[int] = []
    for index, value in enumerate(raw):
        where = f"{prefix}binding_workspace_ids[{index}]"
        # proto3 JSON accepts an int64 as a number or as a decimal string.
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise errors.invalid(f"{where} must be an integer workspace id, got {value!r}.")
        if isinstance(value, str):
            if not re.fullmatch(r"-?\d+", value):
                raise errors.invalid(f"{where} must be an integer workspace id, got {value!r}.")
            value = int(value)
        if value <= 0 or value > INT64_MAX:
            raise errors.invalid(f"{where} must be a positive int64 workspace id, got {value}.")
        ids.append(value)
    return ids


def check_principal(principal: Any, where: str = "principal") -> str:
    if not isinstance(principal, str) or not any(p.match(principal) for p in PRINCIPAL_RES):
        raise errors.invalid(
            f"Unsupported principal: {principal} ({where}). Use users/<email>, groups/<display name> "
            "or servicePrincipals/<application id>."
        )
    return principal


def validate_grant_rules(raw: Any, name: str) -> list[dict[str, Any]]:
    """Validated, normalised rules: one rule per role (first-seen order), principals de-duplicated,
    rules without principals dropped (the SDK's ``as_dict()`` omits an empty principals list)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.invalid("rule_set.grant_rules must be a list of {role, principals} objects.")
    merged: dict[str, list[str]] = {}
    for index, rule in enumerate(raw):
        where = f"rule_set.grant_rules[{index}]"
        expect_fields(rule, where, GRANT_RULE_FIELDS, "role and principals")
        role = required_text(rule, "role", where)
        if role not in BUDGET_POLICY_ROLES:
            raise errors.invalid(
                f"Role {role} is not assignable on {name.rsplit('/ruleSets/', 1)[0]}; "
                f"assignable roles are {', '.join(BUDGET_POLICY_ROLES)}."
            )
        principals = rule.get("principals")
        if principals is None:
            principals = []
        if not isinstance(principals, list):
            raise errors.invalid(f"{where}.principals must be a list of strings.")
        bucket = merged.setdefault(role, [])
        for principal in principals:
            check_principal(principal, f"{where}.principals")
            if principal not in bucket:
                bucket.append(principal)
    return [{"role": role, "principals": principals} for role, principals in merged.items() if principals]
