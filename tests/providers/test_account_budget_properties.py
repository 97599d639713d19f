"""AccountBudget's check as a property (issue 23): for any JSON value in any field, at any depth
of its alerts, tags and overrides, check returns failures (short ones) or inputs that check
again to themselves; it never raises.  And email addresses by email-validator's syntax plus the
refusals it leaves to us (homographs spelt in ASCII, one-letter top-level domains)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.account_budget import check_inputs
from providers.fields import email_problem

ALERT = {"threshold_usd": 10, "notify": ["lead@example.com"]}

# JSON as Pulumi can carry it, plus what YAML or a generated config may hold: huge and
# non-finite numbers, control, bidi and zero-width characters, deep nesting.
hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"), st.sampled_from(["\x00", "\x1b", "\u202e", "\u200b", "@", ".", "а"])
    ),
    max_size=40,
) | st.sampled_from(["", "x" * 10_000, "AI_GATEWAY", "ALL", "lead@example.com", "mailto:a@example.com", "1234"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(hostile_text, children, max_size=5),
    max_leaves=25,
)
alert_like = st.fixed_dictionaries(
    {},
    optional={
        "threshold_usd": json_values,
        "notify": json_values | st.lists(hostile_text, max_size=4),
        "block_usage": json_values,
        "overrides": json_values | st.dictionaries(hostile_text, json_values, max_size=4),
        **{"x": json_values},
    },
)
budget_like = st.fixed_dictionaries(
    {"display_name": json_values | hostile_text},
    optional={
        "alerts": json_values | st.lists(alert_like | json_values, max_size=6),
        "tags": json_values | st.dictionaries(hostile_text, json_values | st.lists(hostile_text), max_size=4),
        "workspace_ids": json_values | st.lists(scalars, max_size=4),
        "resource_type": json_values,
        "per_user_alert": json_values | alert_like,
        "include_external_spend": json_values,
    },
)


# No deadline and no health checks: on a loaded 2-CPU machine (or under .ci/clock-ahead) generating
# deep JSON can be slow, and that says nothing about check().
QUIET = {"deadline": None, "suppress_health_check": list(HealthCheck)}


@settings(max_examples=400, **QUIET)
@given(budget_like)
def test_check_never_raises_and_what_it_accepts_checks_again(props):
    inputs, failures = check_inputs(props)  # must not raise
    for failure in failures.items:
        assert isinstance(failure.property, str) and len(failure.property) < 200
        assert len(failure.reason) < 400, "every echoed value is cut short"
    if not failures:
        again, failures_again = check_inputs(inputs)
        assert not failures_again and again == inputs


@settings(max_examples=200, **QUIET)
@given(st.sampled_from(["alerts", "per_user_alert"]), json_values)
def test_any_json_value_inside_an_alert_is_a_failure_or_valid(field, value):
    alert = {**ALERT, "threshold_usd": value} if field == "alerts" else {**ALERT, "overrides": {"7001": value}}
    props = {"display_name": "b", "resource_type": "AI_GATEWAY", "alerts": [ALERT]}
    props[field] = [alert] if field == "alerts" else alert
    check_inputs(props)  # must not raise


def idna(label: str) -> str:
    return label.encode("idna").decode("ascii")


@pytest.mark.parametrize(
    "address",
    [
        f"a@{idna('pаypal')}.com",  # Cyrillic а among Latin letters, spelt in ASCII
        f"a@{idna('gοogle')}.com",  # Greek omicron
        "a@b.c",  # a one-letter top-level domain
        "a@x.test",  # special-use names (RFC 6761)
        "a@example.invalid",
        '"quoted"@example.com',
        "a@[192.0.2.1]",
        "a@-x.com",
        "a@x.123",
        "a@example.com.",
        "Lead <lead@example.com>",
    ],
)
def test_email_validator_and_our_own_refusals(address):
    assert email_problem(address) is not None


@pytest.mark.parametrize(
    "address", ["lead@example.com", "first.last+budget@sub.example.co.uk", f"ops@{idna('bücher')}.example"]
)
def test_deliverable_addresses_still_pass(address):
    assert email_problem(address) is None
