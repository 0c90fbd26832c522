"""Skolsynk's state in Redis: the prefix of every key, and the one translation of Redis client
failures into the error tree (``QueueUnavailable``), used by every module that talks to Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import redis

from common.errors import QueueUnavailable

KEY_PREFIX: Final = "skolsynk:"


@contextmanager
def redis_errors() -> Iterator[None]:
    """Translate Redis client failures into ``QueueUnavailable`` (once, at this edge)."""
    try:
        yield
    except redis.RedisError as exc:
        raise QueueUnavailable(f"Redis could not be reached ({type(exc).__name__})") from exc
