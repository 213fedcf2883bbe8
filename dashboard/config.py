"""Settings for the app, the embedded workers and the worker CLI.

This is the only module that reads ``os.environ``. Everything else receives a
:class:`Settings` (tests build one directly). A bad value fails at start-up
with a message naming the variable.

| variable | default | meaning |
|---|---|---|
| ``REDIS_URL`` | unset | Redis to use. Unset: 127.0.0.1:6379 if it answers, else an embedded server |
| ``DASHBOARD_PREFIX`` | ``bull`` | BullMQ key prefix shared by producers, workers and the dashboard |
| ``DASHBOARD_READ_ONLY`` | ``0`` | ``1`` hides and refuses every action (403) |
| ``DASHBOARD_AUTH_USER`` / ``DASHBOARD_AUTH_PASSWORD`` | unset | HTTP basic auth when both are set |
| ``DASHBOARD_API_TOKENS`` | empty | ``name:token:scope``, comma-separated (scope read, write or metrics) |
| ``DASHBOARD_POLL_SECONDS`` | ``3`` | how often live fragments refresh |
| ``DASHBOARD_EMBEDDED_WORKERS`` | ``0`` | ``1`` runs worker threads for registered handlers inside the app |
| ``DASHBOARD_DEMO`` | ``0`` | ``1`` seeds demo queues, a producer and their handlers (``python app.py`` turns it on) |
| ``DASHBOARD_HANDLERS`` | empty | ``queue=package.module:function`` pairs, comma-separated, for embedded workers |
| ``DASHBOARD_CONCURRENCY`` | ``4`` | jobs each embedded worker runs at once |
| ``DASHBOARD_URL_PREFIX`` | empty | mount the dashboard under this path (e.g. ``/admin/jobs``) in ``create_app()`` |
| ``DASHBOARD_SECRET_KEY`` | random per process | signs CSRF tokens; set it when gunicorn runs several processes |
| ``DASHBOARD_DATA_DIR`` | ``./var/redis`` | where the embedded Redis keeps its append-only file |
| ``DASHBOARD_LOG_LEVEL`` | ``INFO`` | log level for the entry points |
| ``DASHBOARD_OLDEST_WAITING_ALERT`` | ``300`` | seconds a job may wait before the overview marks its queue |
| ``TZ`` | unset | the host's zone: job schedulers without ``tz`` run in it, as Node's do (:func:`host_tz`) |
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration variable holds a value we cannot use."""


def host_tz() -> str | None:
    """The process's ``TZ`` (None when unset): a cron job scheduler without ``tz`` runs in the
    host's zone, as Node's cron-parser does (:func:`dashboard.cron.host_zone`)."""
    return os.environ.get("TZ")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _handlers(raw: str) -> tuple[tuple[str, str], ...]:
    """``"mail=app.jobs:send, resize=app.jobs:resize"`` -> (("mail", "app.jobs:send"), ...)."""
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        queue, _, spec = item.partition("=")
        module, _, func = spec.strip().partition(":")
        if not queue.strip() or not module or not func:
            raise ConfigError(f"DASHBOARD_HANDLERS entries look like queue=package.module:function, got {item!r}")
        pairs.append((queue.strip(), spec.strip()))
    return tuple(pairs)


#: What a bearer token may do: ``read`` (GET api/v1 and /metrics), ``write`` (also POST) and
#: ``metrics`` (only /metrics).
TOKEN_SCOPES = ("read", "write", "metrics")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class ApiToken:
    """One bearer token from ``DASHBOARD_API_TOKENS``; its ``repr`` leaves the secret out."""

    name: str
    token: str = field(repr=False)
    scope: str


def _api_tokens(raw: str) -> tuple[ApiToken, ...]:
    """``"ci:s3cret:read,ops:t0ken:write"`` -> ApiTokens. A message about a bad entry names the
    entry by position and name, never by its text, so a token never reaches a log."""
    what = "DASHBOARD_API_TOKENS"
    tokens: list[ApiToken] = []
    for number, item in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not item:
            continue
        name, _, rest = item.partition(":")
        secret, _, scope = rest.rpartition(":")
        if item.count(":") < 2 or not _TOKEN_NAME.fullmatch(name):
            raise ConfigError(f"{what} entry {number} must look like name:token:scope, with a name of letters, "
                              "digits, '_', '.', '@' or '-' (the entry is not shown: it holds a token)")
        if not secret or any(ch.isspace() for ch in secret):
            raise ConfigError(f"{what} entry {number} ({name!r}) must look like name:token:scope, with a token "
                              "of no spaces (the entry is not shown: it holds a token)")
        if scope not in TOKEN_SCOPES:
            raise ConfigError(f"{what} entry {number} ({name!r}) must end with a scope: one of "
                              f"{', '.join(TOKEN_SCOPES)}")
        if any(t.name == name for t in tokens):
            raise ConfigError(f"{what} names {name!r} twice; each token needs its own name (it is the audit actor)")
        if any(t.token == secret for t in tokens):
            raise ConfigError(f"{what} entry {number} ({name!r}) repeats the token of another entry")
        tokens.append(ApiToken(name, secret, scope))
    return tuple(tokens)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that suit a laptop."""

    redis_url: str | None = None
    prefix: str = "bull"
    read_only: bool = False
    auth_user: str | None = None
    auth_password: str | None = None
    poll_seconds: float = 3.0
    embedded_workers: bool = False
    demo: bool = False
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    data_dir: str = "var/redis"
    log_level: str = "INFO"
    concurrency: int = 4
    url_prefix: str = ""
    handlers: tuple[tuple[str, str], ...] = ()
    api_tokens: tuple[ApiToken, ...] = ()
    #: Seconds the oldest waiting job may wait before the overview marks its queue's row.
    oldest_waiting_alert: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or the mapping given)."""
        env = os.environ if env is None else env
        level = env.get("DASHBOARD_LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"DASHBOARD_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        prefix = env.get("DASHBOARD_PREFIX", "bull")
        if not prefix:
            raise ConfigError("DASHBOARD_PREFIX must not be empty")
        user = env.get("DASHBOARD_AUTH_USER") or None
        password = env.get("DASHBOARD_AUTH_PASSWORD") or None
        if (user is None) != (password is None):
            raise ConfigError("DASHBOARD_AUTH_USER and DASHBOARD_AUTH_PASSWORD must be set together")
        url_prefix = env.get("DASHBOARD_URL_PREFIX", "").rstrip("/")
        if url_prefix and not url_prefix.startswith("/"):
            raise ConfigError(f"DASHBOARD_URL_PREFIX must start with '/', got {url_prefix!r}")
        kwargs: dict[str, object] = dict(
            redis_url=env.get("REDIS_URL") or None,
            prefix=prefix,
            read_only=_flag(env, "DASHBOARD_READ_ONLY", False),
            auth_user=user,
            auth_password=password,
            poll_seconds=_number(env, "DASHBOARD_POLL_SECONDS", 3.0, 0.5),
            embedded_workers=_flag(env, "DASHBOARD_EMBEDDED_WORKERS", False),
            demo=_flag(env, "DASHBOARD_DEMO", False),
            data_dir=env.get("DASHBOARD_DATA_DIR") or "var/redis",
            log_level=level,
            concurrency=int(_number(env, "DASHBOARD_CONCURRENCY", 4, 1)),
            url_prefix=url_prefix,
            handlers=_handlers(env.get("DASHBOARD_HANDLERS", "")),
            api_tokens=_api_tokens(env.get("DASHBOARD_API_TOKENS", "")),
            oldest_waiting_alert=_number(env, "DASHBOARD_OLDEST_WAITING_ALERT", 300.0, 1),
        )
        if env.get("DASHBOARD_SECRET_KEY"):
            kwargs["secret_key"] = env["DASHBOARD_SECRET_KEY"]
        return cls(**kwargs)  # type: ignore[arg-type]
