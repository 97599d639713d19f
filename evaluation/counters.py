"""Token counters: the fallback used when a model reports no usage of its own.

A counter is any callable that takes a text and returns its number of tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

TokenCounter = Callable[[str], int]

APPROXIMATE = "approximate"
TIKTOKEN = "tiktoken"


def approximate_token_count(text: str) -> int:
    """Estimate tokens without a tokenizer package.

    Takes the larger of two rules of thumb for English text with BPE tokenizers
    (about 4 characters a token, about 4 tokens every 3 words), so it errs high:
    for a budget, overcounting is the safe side.
    """
    if not text:
        return 0
    by_characters = math.ceil(len(text) / 4)
    by_words = math.ceil(len(text.split()) * 4 / 3)
    return max(by_characters, by_words)


def tiktoken_counter(encoding_name: str = "cl100k_base") -> TokenCounter:
    """Count exactly with tiktoken (optional package, not in requirements.txt).

    tiktoken downloads its encoding files on first use unless they are cached
    (see TIKTOKEN_CACHE_DIR), so this needs that file to be reachable once.
    """
    try:
        import tiktoken
    except ImportError as error:
        raise ImportError(
            "token_counter='tiktoken' needs the tiktoken package, which is not installed. "
            "Install it (pip install tiktoken) or use the default approximate counter."
        ) from error
    encoding = tiktoken.get_encoding(encoding_name)

    def count_with_tiktoken(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=())) if text else 0

    return count_with_tiktoken


def resolve_token_counter(counter: TokenCounter | str | None) -> TokenCounter:
    """Turn the `token_counter` argument into a callable counter."""
    if counter is None or counter == APPROXIMATE:
        return approximate_token_count
    if counter == TIKTOKEN:
        return tiktoken_counter()
    if callable(counter):
        return counter
    raise ValueError(
        f"token_counter must be {APPROXIMATE!r}, {TIKTOKEN!r}, a callable taking a text "
        f"and returning a token count, or None; got {counter!r}."
    )
