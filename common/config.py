"""The one configuration object, read once from the environment.

Failure policy: every missing or malformed variable is collected and reported together in one
``ConfigError``; secrets never appear in ``repr``, ``str`` or error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from common.errors import ConfigError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MIN_SECRET_KEY_LENGTH = 16
#: how a yes/no variable may be spelled (unset or empty is no)
_FLAGS = {"": False, "0": False, "no": False, "false": False, "1": True, "yes": True, "true": True}


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` print ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretKey(Secret):
    """``SKOLSYNK_SECRET_KEY`` with the keys it replaced (``SKOLSYNK_SECRET_KEY_PREVIOUS``):
    new writes use this key; what the previous ones wrote can still be read."""

    __slots__ = ("previous",)

    def __init__(self, value: str, previous: tuple[Secret, ...] = ()) -> None:
        super().__init__(value)
        self.previous = previous

    def __repr__(self) -> str:
        return f"SecretKey('***', previous={len(self.previous)})"


def key_ring(key: Secret) -> tuple[Secret, ...]:
    """The key itself, then the previous keys it carries (newest first), for decrypting."""
    return (key, *getattr(key, "previous", ()))


@dataclass(frozen=True)
class Config:
    """Everything Skolsynk reads from its environment."""

    redis_url: str
    client_id: str
    client_secret: Secret
    secret_key: SecretKey
    authority: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH_URL
    ca_bundle: Path | None = None
    public_url: str | None = None
    log_format: str = "json"
    #: portals on private-network addresses are accepted (``SKOLSYNK_ALLOW_PRIVATE_PORTALS``)
    allow_private_portals: bool = False
    #: the admin app's public URL (its redirect URIs are under it)
    admin_url: str | None = None
    #: Microsoft accounts (user principal names, lower case) of the portal's operations team
    operators: frozenset[str] = frozenset()

    def describe(self) -> dict[str, str]:
        """Each setting as a person may see it (secrets as ``***``)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def require_public_url(self) -> str:
        """``public_url``, which only subscriptions need: Graph must know where to notify."""
        if not self.public_url:
            raise ConfigError(["SKOLSYNK_PUBLIC_URL is not set (where Graph reaches the listener)"])
        return self.public_url


def _check_url(name: str, value: str, problems: list[str], *, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    # a unix socket URL names a path, not a host: unix:///run/redis.sock
    located = parts.netloc or (parts.scheme == "unix" and parts.path.startswith("/"))
    if parts.scheme not in schemes or not located:
        problems.append(f"{name} must be a URL starting with {' or '.join(schemes)}://")
    return value.rstrip("/")


LOG_FORMATS: Final = ("json", "text")


def log_format_setting(environ: Mapping[str, str] | None = None) -> str:
    """``SKOLSYNK_LOG_FORMAT`` alone, for a process that logs before (or without) reading the
    whole configuration, such as a worker; ``json`` unless it says ``text``."""
    env = os.environ if environ is None else environ
    value = env.get("SKOLSYNK_LOG_FORMAT", "").strip()
    return value if value in LOG_FORMATS else "json"


def redis_url_setting(environ: Mapping[str, str] | None = None) -> str | None:
    """``REDIS_URL`` when it is set, else ``None`` (the demo starts a Redis of its own then)."""
    env = os.environ if environ is None else environ
    return env.get("REDIS_URL", "").strip() or None


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration from ``environ`` (the process environment by default).

    Raises ``ConfigError`` naming every problem at once.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            problems.append(f"{name} is not set")
        return value

    redis_url = redis_url_setting(env) or DEFAULT_REDIS_URL
    _check_url("REDIS_URL", redis_url, problems, schemes=("redis", "rediss", "unix"))
    client_id = required("SKOLSYNK_CLIENT_ID")
    client_secret = required("SKOLSYNK_CLIENT_SECRET")
    secret_key = required("SKOLSYNK_SECRET_KEY")
    if secret_key and len(secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SKOLSYNK_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters long"
        )
    previous_keys: list[Secret] = []
    for position, raw_key in enumerate(env.get("SKOLSYNK_SECRET_KEY_PREVIOUS", "").split(","), 1):
        if not raw_key.strip():
            continue
        if len(raw_key.strip()) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"SKOLSYNK_SECRET_KEY_PREVIOUS: key {position} is shorter than "
                f"{MIN_SECRET_KEY_LENGTH} characters"
            )
        previous_keys.append(Secret(raw_key.strip()))
    allow_private = env.get("SKOLSYNK_ALLOW_PRIVATE_PORTALS", "").strip().lower()
    if allow_private not in _FLAGS:
        problems.append("SKOLSYNK_ALLOW_PRIVATE_PORTALS must be yes or no (1/0, true/false)")
    authority = _check_url(
        "SKOLSYNK_AUTHORITY",
        env.get("SKOLSYNK_AUTHORITY", "").strip() or DEFAULT_AUTHORITY,
        problems,
        schemes=("https",),
    )
    graph_url = _check_url(
        "SKOLSYNK_GRAPH_URL",
        env.get("SKOLSYNK_GRAPH_URL", "").strip() or DEFAULT_GRAPH_URL,
        problems,
        schemes=("https",),
    )
    ca_bundle: Path | None = None
    if raw_ca := env.get("SKOLSYNK_CA_BUNDLE", "").strip():
        ca_bundle = Path(raw_ca)
        if not ca_bundle.is_file():
            problems.append(f"SKOLSYNK_CA_BUNDLE names {raw_ca}, which is not a readable file")
    public_url: str | None = None
    if raw_public := env.get("SKOLSYNK_PUBLIC_URL", "").strip():
        public_url = _check_url(
            "SKOLSYNK_PUBLIC_URL", raw_public, problems, schemes=("https", "http")
        )
    admin_url: str | None = None
    if raw_admin := env.get("SKOLSYNK_ADMIN_URL", "").strip():
        admin_url = _check_url("SKOLSYNK_ADMIN_URL", raw_admin, problems, schemes=("https", "http"))
    operators = frozenset(
        name.strip().casefold()
        for name in env.get("SKOLSYNK_OPERATORS", "").replace(";", ",").split(",")
        if name.strip()
    )
    for name in sorted(operators):
        if "@" not in name:
            problems.append(
                f"SKOLSYNK_OPERATORS must list Microsoft accounts (name@domain), not {name!r}"
            )
    log_format = env.get("SKOLSYNK_LOG_FORMAT", "json").strip() or "json"
    if log_format not in LOG_FORMATS:
        problems.append("SKOLSYNK_LOG_FORMAT must be json or text")

    if problems:
        raise ConfigError(problems)
    return Config(
        redis_url=redis_url,
        client_id=client_id,
        client_secret=Secret(client_secret),
        secret_key=SecretKey(secret_key, tuple(previous_keys)),
        authority=authority,
        graph_url=graph_url,
        ca_bundle=ca_bundle,
        public_url=public_url,
        log_format=log_format,
        allow_private_portals=_FLAGS[allow_private],
        admin_url=admin_url,
        operators=operators,
    )
