"""What every ml-budgets dynamic provider shares.

* ``DynamicResource``: a ``pulumi.dynamic.Resource`` whose provider is serialized once per
  provider class instead of once per resource.  Stock pulumi 3.272 re-wraps pickle internals on
  every ``serialize_provider`` call and never restores them, so a program with a few hundred
  dynamic resources dies with ``RecursionError`` (the 315th, provider class in ``__main__``);
  serializing once (and restoring the pickler) removes both that limit and the per-resource dill
  cost.
* ``Failures``: collects ``CheckFailure``s so ``check()`` reports every bad input at once; field
  validators (``validate_<field>(value, failures, prop) -> normalized value``) report into it, and
  the stack config reuses the same validators with its own property paths.
* ``ProviderError`` / ``api_error``: the one shape of every API failure,
  ``Unable to <verb> <thing> '<name or id>': <API message>. <what to do>``.
* ``gone()``: what ``read()`` returns for a resource that no longer exists.
* ``is_unknown``: during ``pulumi preview`` inputs computed from other resources are unknown.
* ``diff_result``: a ``DiffResult`` from the fields that change in place and those that replace.
"""

from __future__ import annotations

import pickle
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ReadResult, ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc

PROVIDER_KEY = "__provider"
MAX_ERROR_LENGTH = 300

K = TypeVar("K")
V = TypeVar("V")


class BuiltOnce(Generic[K, V]):
    """Values built once per key and kept for the process; thread-safe (the provider server runs
    up to 4 calls at once, and a build may be slow: a pickle, a SQL store's migrations)."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K, build: Callable[[], V]) -> V:
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = build()
                    self._values[key] = value
        return value

    def peek(self, key: K) -> V | None:
        """The value if it was built already, else None (never builds)."""
        return self._values.get(key)


_serialized_providers: BuiltOnce[type[ResourceProvider], str] = BuiltOnce()


def serialized_provider(provider: ResourceProvider) -> str:
    """The ``__provider`` string for a stateless provider, computed once per class."""
    return _serialized_providers.get(type(provider), lambda: _serialize_restoring_pickler(provider))


def _serialize_restoring_pickler(provider: ResourceProvider) -> str:
    # serialize_provider patches these two methods of pickle._Pickler and leaves them patched;
    # each later call would wrap the previous wrapper one level deeper.
    saved = {name: pickle._Pickler.__dict__.get(name) for name in ("_batch_setitems", "save_dict")}
    try:
        serialized: str = serialize_provider(provider)
        return serialized
    finally:
        for name, method in saved.items():
            if method is None:
                delattr(pickle._Pickler, name)
            else:
                setattr(pickle._Pickler, name, method)


class DynamicResource(pulumi.dynamic.Resource):
    """Base of every ml-budgets resource: a dynamic resource with a cached, plain ``__provider``.

    The providers hold no state and no credentials (they read them in ``configure()``), so the
    serialized provider is the same for every resource of a class and is not a secret.
    """

    def __init__(
        self,
        provider: ResourceProvider,
        name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if PROVIDER_KEY in props:
            raise ValueError("A dynamic resource must not define the __provider key")
        props = dict(props)
        props[PROVIDER_KEY] = serialized_provider(provider)
        # Skip pulumi.dynamic.Resource.__init__ (it re-serializes the provider every time).
        pulumi.CustomResource.__init__(self, f"pulumi-python:{self._resource_type_name}", name, props, opts)


def is_unknown(value: Any) -> bool:
    """True for a value not known yet (an output of another resource, during preview).

    The provider server deserializes Check and Diff properties with ``keep_unknowns=True``, so
    such a value arrives as a ``pulumi.output.Unknown`` instance, not as the sentinel string.
    """
    if isinstance(value, Unknown) or value is rpc.UNKNOWN or value == rpc.UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


class Failures:
    """Collects check failures: ``failures.add("policy_name", "must be …")``."""

    def __init__(self) -> None:
        self.items: list[CheckFailure] = []

    def add(self, prop: str, reason: str) -> None:
        self.items.append(CheckFailure(prop, reason))

    def validate(self, inputs: dict[str, Any], name: str, validator: Validator) -> None:
        """Run a field validator on ``inputs[name]`` (unless unknown) and keep its normalized value."""
        value = inputs.get(name)
        if not is_unknown(value):
            inputs[name] = validator(value, self, name)

    def result(self, inputs: dict[str, Any]) -> CheckResult:
        return CheckResult(inputs, self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


# A field validator: reports what is wrong with ``value`` under ``prop`` and returns it normalized.
Validator = Callable[[Any, Failures, str], Any]


def check_fields(news: Mapping[str, Any], validators: Mapping[str, Validator]) -> tuple[dict[str, Any], Failures]:
    """Run each field's validator (``check()``): the normalized inputs and every failure found."""
    failures = Failures()
    inputs = dict(news)
    for name, validator in validators.items():
        failures.validate(inputs, name, validator)
    return inputs, failures


def gone() -> ReadResult:
    """``read()``'s answer for a resource deleted outside Pulumi: refresh drops it from state."""
    return ReadResult("", {})


class ProviderError(Exception):
    """A short, actionable error: the Pulumi engine shows only the last line of a traceback."""


def api_error(
    verb: str,
    thing: str,
    name: Any,
    reason: str,
    hint: str,
    where: str | None = None,
    error_class: type[ProviderError] = ProviderError,
) -> ProviderError:
    """``Unable to <verb> <thing> '<name>'[ <where>]: <reason>. <hint>`` on one short line."""
    place = f" {where}" if where else ""
    reason = one_line(reason).rstrip(". ") or "no answer"
    return error_class(f"Unable to {verb} {thing} '{name}'{place}: {reason}. {hint}".rstrip())


def mask_credentials(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with credentials masked: the ``known`` secrets, and anything that reads as one
    (``providers._credentials.mask_secrets``, the one masking path of MLflow and Databricks)."""
    from providers._credentials import mask_secrets

    return mask_secrets(text, known)


def one_line(text: Any) -> str:
    line = " ".join(str(text).split())
    if len(line) > MAX_ERROR_LENGTH:
        line = line[: MAX_ERROR_LENGTH - 1] + "…"
    return line


def diff_result(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    in_place: Iterable[str],
    replace: Iterable[str] = (),
    normalize: Callable[[str, Any], Any] = lambda name, value: value,
) -> DiffResult:
    """Compare ``olds`` (previous outputs) with ``news`` (checked inputs) field by field.

    An unknown new value counts as a change (preview cannot know better), but not as a
    replacement: at preview every output an updated resource computes is unknown (the dynamic
    provider server does not support preview), so a policy renamed in place would otherwise show
    every grant on it as replaced.  ``pulumi up`` diffs again with the value known.
    """
    changed_in_place = [name for name in in_place if _differs(name, olds.get(name), news.get(name), normalize)]
    replace = list(replace)
    unknown = [name for name in replace if is_unknown(news.get(name))]
    replaces = [
        name for name in replace if name not in unknown and _differs(name, olds.get(name), news.get(name), normalize)
    ]
    return DiffResult(
        changes=bool(changed_in_place or replaces or unknown),
        replaces=replaces,
        delete_before_replace=False,
    )


def _differs(name: str, old: Any, new: Any, normalize: Callable[[str, Any], Any]) -> bool:
    if is_unknown(new):
        return True
    return bool(normalize(name, old) != normalize(name, new))


def config_value(config: Any, *keys: str) -> str | None:
    """First non-empty value among stack config ``keys`` (full names like ``databricks:host``)."""
    for key in keys:
        value = config.get(key) if config is not None else None
        if value not in (None, ""):
            return str(value)
    return None


MAX_QUOTED_LENGTH = 80


def quoted(value: Any) -> str:
    """``repr(value)`` for a message, cut to about 80 characters (a bad value may be huge)."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_LENGTH else text[: MAX_QUOTED_LENGTH - 1] + "…"


def control_character_failure(text: str) -> str | None:
    """Why ``text`` (a name, key, value or principal) is refused if it holds a control character
    (newline, tab, NUL, escape, …: Unicode category Cc), else None."""
    position = next((i for i, c in enumerate(text) if unicodedata.category(c) == "Cc"), None)
    if position is None:
        return None
    return f"must not contain control characters (found {text[position]!r} at position {position})"
