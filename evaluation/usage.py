"""Where the tokens of one model call come from.

In order of preference: the usage the model's response reports (OpenAI-style
`usage`), the token usage MLflow tracing recorded on spans inside the call
(autologged OpenAI, LangChain, ... clients), or a token counter run over the
call's input and output text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from mlflow.tracing.constant import TokenUsageKey

from evaluation.counters import TokenCounter

FROM_RESPONSE = "response"
FROM_TRACE = "trace"
FROM_COUNTER = "counter"


@dataclasses.dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, input_tokens: int, output_tokens: int, total_tokens: int | None = None) -> TokenUsage:
        if total_tokens is None:
            total_tokens = input_tokens + output_tokens
        return cls(input_tokens, output_tokens, total_tokens)

    def as_mlflow_usage(self) -> dict[str, int]:
        """The shape of MLflow's `mlflow.chat.tokenUsage` span attribute."""
        return {
            TokenUsageKey.INPUT_TOKENS: self.input_tokens,
            TokenUsageKey.OUTPUT_TOKENS: self.output_tokens,
            TokenUsageKey.TOTAL_TOKENS: self.total_tokens,
        }


NO_TOKENS = TokenUsage(0, 0, 0)


def usage_reported_in(response: Any) -> TokenUsage | None:
    """Usage from an OpenAI-style response (dict or SDK object) with a `usage` field.

    Accepts chat-completions names (prompt_tokens / completion_tokens) and
    responses-API or Anthropic names (input_tokens / output_tokens).
    """
    usage = _field(response, "usage")
    if usage is None:
        return None
    input_tokens = _first_count(usage, "prompt_tokens", "input_tokens")
    output_tokens = _first_count(usage, "completion_tokens", "output_tokens")
    total_tokens = _first_count(usage, "total_tokens")
    if input_tokens is None and output_tokens is None and total_tokens is None:
        return None
    return TokenUsage.of(input_tokens or 0, output_tokens or 0, total_tokens)


def usage_recorded_under(span: Any) -> TokenUsage | None:
    """Token usage MLflow tracing recorded on the spans nested inside `span`.

    Reads the in-progress trace through MLflow's in-memory trace manager, an
    internal API: if it moves in a future MLflow, this returns None and the
    counter is used instead.
    """
    try:
        from mlflow.tracing.trace_manager import InMemoryTraceManager
        from mlflow.tracing.utils import aggregate_usage_from_spans

        with InMemoryTraceManager.get_instance().get_trace(span.trace_id) as trace:
            spans = list(trace.span_dict.values()) if trace is not None else []
        usage = aggregate_usage_from_spans(_descendants_of(span.span_id, spans))
    except (ImportError, AttributeError):
        return None
    if not usage:
        return None
    return TokenUsage.of(
        usage.get(TokenUsageKey.INPUT_TOKENS, 0),
        usage.get(TokenUsageKey.OUTPUT_TOKENS, 0),
        usage.get(TokenUsageKey.TOTAL_TOKENS),
    )


def counted_usage(counter: TokenCounter, call_arguments: Any, response: Any) -> TokenUsage:
    input_tokens = _checked_count(counter, "\n".join(_string_leaves(call_arguments)))
    output_tokens = _checked_count(counter, response_text(response))
    return TokenUsage.of(input_tokens, output_tokens)


def response_text(response: Any) -> str:
    """The generated text of a response: chat choices when present, else every string in it."""
    plain = _plain(response)
    choices = plain.get("choices") if isinstance(plain, dict) else None
    if isinstance(choices, list) and choices:
        return "\n".join(text for choice in choices for text in _choice_texts(choice))
    return "\n".join(_string_leaves(plain))


def _choice_texts(choice: Any) -> Iterator[str]:
    choice = _plain(choice)
    if not isinstance(choice, dict):
        yield from _string_leaves(choice)
        return
    message = _plain(choice.get("message")) or {}
    content = message.get("content") if isinstance(message, dict) else None
    yield from _string_leaves(content if content is not None else choice.get("text"))


def _descendants_of(span_id: str, spans: list[Any]) -> list[Any]:
    children: dict[str, list[Any]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    found, frontier = [], [span_id]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child.span_id)
    return found


def _checked_count(counter: TokenCounter, text: str) -> int:
    count: object = counter(text)  # a user's counter: its annotation promises nothing at run time
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise TypeError(f"token counter must return a non-negative int, got {count!r}")
    return count


def _field(container: Any, name: str) -> Any:
    if isinstance(container, dict):
        return container.get(name)
    return getattr(container, name, None)


def _first_count(usage: Any, *names: str) -> int | None:
    for name in names:
        value = _field(usage, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return None


def _plain(value: Any) -> Any:
    """SDK objects (pydantic models, dataclasses) as plain dicts; anything else unchanged."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _string_leaves(value: Any) -> Iterator[str]:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _string_leaves(item)
    else:
        plain = _plain(value)
        yield from (_string_leaves(plain) if plain is not value else [str(value)])
