"""What an exceeded token budget tells people: a warning in warn mode, the `TokenBudgetExceeded`
text in raise mode, with the estimated cost in dollars."""

from __future__ import annotations

import math

from contracts import RAISE
from evaluation.accounting import BudgetSnapshot


def exceeded_message(snapshot: BudgetSnapshot, on_exceed: str) -> str:
    # Exactly at the ceiling with further calls wanted: the budget was reached, not exceeded.
    verb = "exceeded" if snapshot.used_tokens > snapshot.max_tokens else "reached"
    message = (
        f"Token budget {verb}: {snapshot.used_tokens:,} tokens used of "
        f"max_tokens={snapshot.max_tokens:,} in {snapshot.calls:,} model calls"
    )
    if on_exceed == RAISE:
        message += f"; {snapshot.refused_calls:,} calls refused (on_exceed='raise')"
    else:
        message += f"; {snapshot.over_budget_calls:,} calls made over budget (on_exceed='warn')"
    if snapshot.estimated_cost_usd is not None:
        message += f"; estimated cost {dollars(snapshot.estimated_cost_usd)}"
    return message + "."


def dollars(amount: float) -> str:
    """US dollars with cents, and with the significant digits of an amount under a dollar
    ($0.005, not $0.01)."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    decimals = 2 - math.floor(math.log10(amount))  # three significant digits
    text = f"{amount:.{decimals}f}".rstrip("0")
    return "$" + text + "0" * max(0, 4 - len(text))  # at least two decimals: $0.50
