"""Token budgets for mlflow.genai.evaluate() runs."""

from contracts import COST_PER_1K_TOKENS_TAG, ON_EXCEED_TAG, TOKEN_BUDGET_TAG
from evaluation.counters import approximate_token_count, tiktoken_counter
from evaluation.token_budget import (
    BudgetSnapshot,
    ModelCall,
    TokenBudgetEvaluator,
    TokenBudgetExceeded,
    current_call,
)
from evaluation.usage import TokenUsage

__all__ = [
    "COST_PER_1K_TOKENS_TAG",
    "ON_EXCEED_TAG",
    "TOKEN_BUDGET_TAG",
    "BudgetSnapshot",
    "ModelCall",
    "TokenBudgetEvaluator",
    "TokenBudgetExceeded",
    "TokenUsage",
    "approximate_token_count",
    "current_call",
    "tiktoken_counter",
]
