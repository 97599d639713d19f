"""The relay's YAML config: routes, their destinations, and secrets as ``${ENV_VAR}`` references.

Every problem is reported at once, naming its path in the file, before the relay starts: a relay
that starts with a route it cannot deliver for would acknowledge alerts that reach nobody.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_EXPIRE_AFTER_SECONDS = 24 * 3600
ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ROUTE_FIELDS = ("secret", "team", "slack", "pagerduty", "alertmanager", "webhook")
DESTINATIONS = ("slack", "pagerduty", "alertmanager", "webhook")
TOP_FIELDS = ("queue", "expire_after", "workers", "routes")


class ConfigError(ValueError):
    """The config file is unusable; the message lists every problem with its path."""


@dataclass(frozen=True)
class PagerDuty:
    routing_key: str
    url: str = PAGERDUTY_EVENTS_URL


@dataclass(frozen=True)
class Route:
    name: str
    secret: str
    team: str
    slack: str | None = None
    pagerduty: PagerDuty | None = None
    alertmanager: str | None = None
    webhook: str | None = None

    def destinations(self) -> list[str]:
        return [name for name in DESTINATIONS if getattr(self, name) is not None]


@dataclass(frozen=True)
class RelayConfig:
    queue: Path
    expire_after_seconds: float
    routes: dict[str, Route] = field(default_factory=dict)
    workers: int = 4
    """Requests sent at once to a destination without a rate limit (Alertmanager, webhooks)."""
    redis_url: str | None = None
    """``queue: redis://…``: the Redis store, shared by several relay replicas."""


class _Problems(list[str]):
    PATH_CHARS = 100
    MESSAGE_CHARS = 300

    def add(self, path: str, message: str) -> None:
        """Bounded: a path holds the file's own keys, a message may quote a value."""
        path = path if len(path) <= self.PATH_CHARS else path[: self.PATH_CHARS] + "…"
        message = message if len(message) <= self.MESSAGE_CHARS else message[: self.MESSAGE_CHARS] + "…"
        self.append(f"{path}: {message}")


def parse_duration(value: Any) -> float | None:
    """``90s``, ``30m``, ``24h``, ``2d`` or a number of seconds; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if isinstance(value, str) and (match := DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * DURATION_SECONDS[match.group(2)]
        return seconds if seconds > 0 else None
    return None


def _secret(value: Any, path: str, env: Mapping[str, str], problems: _Problems) -> str | None:
    """A secret must be exactly ``${NAME}``: inline secrets end up in images and repositories."""
    if not isinstance(value, str) or not (match := ENV_REFERENCE.fullmatch(value.strip())):
        problems.add(
            path,
            "must be an environment variable reference such as ${SEARCH_WEBHOOK_SECRET}; "
            "secrets are never written in the config file",
        )
        return None
    resolved = env.get(match.group(1), "")
    if not resolved:
        problems.add(path, f"environment variable {match.group(1)} is not set or empty")
        return None
    return resolved


def _expand(value: Any, path: str, env: Mapping[str, str], problems: _Problems) -> str | None:
    """A plain string in which ``${NAME}`` references are replaced from the environment."""
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "must be a non-empty string")
        return None
    missing = [name for name in ENV_REFERENCE.findall(value) if not env.get(name)]
    if missing:
        problems.add(path, f"environment variable {', '.join(missing)} is not set or empty")
        return None
    return ENV_REFERENCE.sub(lambda m: env[m.group(1)], value.strip())


def _url(value: str | None, path: str, problems: _Problems) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        valid = False
    if not valid:
        problems.add(path, "must be an http(s) URL with a host")  # never quote: it may carry a token
        return None
    return value


def _pagerduty(value: Any, path: str, env: Mapping[str, str], problems: _Problems) -> PagerDuty | None:
    if not isinstance(value, Mapping):
        problems.add(path, "must be an object {routing_key: ${ENV_VAR}, url: <optional Events API v2 URL>}")
        return None
    for key in value:
        if key not in ("routing_key", "url"):
            problems.add(f"{path}.{key}", "unknown field; valid fields: routing_key, url")
    key = _secret(value.get("routing_key"), f"{path}.routing_key", env, problems)
    url: str | None = PAGERDUTY_EVENTS_URL
    if value.get("url") is not None:
        url = _url(_expand(value["url"], f"{path}.url", env, problems), f"{path}.url", problems)
    return PagerDuty(key, url) if key and url else None


def _route(name: Any, value: Any, env: Mapping[str, str], problems: _Problems) -> Route | None:
    path = f"routes.{name}"
    if not isinstance(name, str) or not ROUTE_NAME.fullmatch(name):
        problems.add(path, "route names are 1-63 letters, digits, '_' or '-' (they appear in the URL /mlflow/<route>)")
        return None
    if not isinstance(value, Mapping):
        problems.add(path, f"must be an object with fields {', '.join(ROUTE_FIELDS)}")
        return None
    for key in value:
        if key not in ROUTE_FIELDS:
            problems.add(f"{path}.{key}", f"unknown field; valid fields: {', '.join(ROUTE_FIELDS)}")
    secret = _secret(value.get("secret"), f"{path}.secret", env, problems)
    destinations: dict[str, Any] = {}
    if value.get("slack") is not None:  # the URL itself is the Slack credential
        destinations["slack"] = _url(_secret(value["slack"], f"{path}.slack", env, problems), f"{path}.slack", problems)
    if value.get("pagerduty") is not None:
        destinations["pagerduty"] = _pagerduty(value["pagerduty"], f"{path}.pagerduty", env, problems)
    for plain in ("alertmanager", "webhook"):
        if value.get(plain) is not None:
            destinations[plain] = _url(
                _expand(value[plain], f"{path}.{plain}", env, problems), f"{path}.{plain}", problems
            )
    if not any(key in value for key in DESTINATIONS):
        problems.add(path, f"has no destination: set at least one of {', '.join(DESTINATIONS)}")
    team = value.get("team", name)
    if not isinstance(team, str) or not team.strip():
        problems.add(f"{path}.team", "must be a non-empty string (shown in messages and as the `team` label)")
    if secret is None or any(v is None for v in destinations.values()):
        return None
    return Route(name=name, secret=secret, team=str(team), **destinations)


def parse_config(raw: Any, base_dir: Path, env: Mapping[str, str] | None = None) -> RelayConfig:
    env = os.environ if env is None else env
    problems = _Problems()
    if not isinstance(raw, Mapping):
        raise ConfigError('the config must be a YAML mapping with `routes` (see README, "Budget alerts")')
    for key in raw:
        if key not in TOP_FIELDS:
            problems.add(str(key), f"unknown field; valid fields: {', '.join(TOP_FIELDS)}")
    queue = raw.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        problems.add("queue", "must be the path of the queue's sqlite file")
        queue = None
    redis_url = None
    if queue and queue.startswith(("redis://", "rediss://", "unix://")):
        redis_url = _expand(queue, "queue", env, problems)
        queue = None
    queue_path = Path(queue) if queue else base_dir / "alert-relay-queue.db"
    if not queue_path.is_absolute():
        queue_path = base_dir / queue_path
    if redis_url is None and queue_path.is_dir():
        problems.add("queue", "is a folder: give the path of the queue's file, such as /var/lib/alert-relay/queue.db")
    expire_after = float(DEFAULT_EXPIRE_AFTER_SECONDS)
    if raw.get("expire_after") is not None:
        parsed = parse_duration(raw["expire_after"])
        if parsed is not None:
            expire_after = parsed
        else:
            problems.add(
                "expire_after", f"must be a duration > 0 such as 90s, 30m, 24h or 2d, got {raw['expire_after']!r}"
            )
    workers = raw.get("workers", 4)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        problems.add("workers", f"must be a whole number of delivery threads in 1..64, got {workers!r}")
    routes_raw = raw.get("routes")
    routes: dict[str, Route] = {}
    if not isinstance(routes_raw, Mapping) or not routes_raw:
        problems.add("routes", "must map at least one route name to its secret and destinations")
    else:
        for name, value in routes_raw.items():
            route = _route(name, value, env, problems)
            if route is not None:
                routes[name] = route
    if problems:
        if len(problems) == 1:  # one problem, one line
            raise ConfigError(f"invalid alert relay config: {problems[0]}")
        raise ConfigError("invalid alert relay config:\n  - " + "\n  - ".join(problems))
    return RelayConfig(
        queue=queue_path, expire_after_seconds=expire_after, routes=routes, workers=workers, redis_url=redis_url
    )


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RelayConfig:
    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read alert relay config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"alert relay config {path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"alert relay config {path} is not valid YAML: {_yaml_problem(error)}") from None
    return parse_config(raw, path.parent, env)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What and where, never the offending line itself: it may hold a secret."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{error.problem or error.context or 'syntax error'}{where}"
    return type(error).__name__
