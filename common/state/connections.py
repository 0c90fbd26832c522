"""How each kind of process talks to Redis when Redis is away: the listener fails fast, the
workers and the scheduler wait.

- ``connect_listener_redis``: 0.5 s timeouts; a broken connection is tried once more (Redis
  restarted, a proxy closed an idle one), a timeout never (a hung Redis must not cost a request
  twice), so a request that needs Redis knows within about a second.
- ``wait_out_outages``: given to a worker's or the scheduler's client, every command waits for
  Redis with capped, jittered backoff instead of failing, so nothing in rq's loops (which quit
  on a Redis error) ever sees the outage. An outage is logged once when it starts and once when
  it ends, never once per attempt. A process asked to stop while it waits (``stop_waiting``)
  gets the error instead, so a shutdown during an outage does not hang.

Only redis-py's public ``Retry``/``set_retry`` interface is used: ``Retry.call_with_retry`` is
where redis-py runs every command and pipeline of a connection.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the listener must answer within 3 s even when Redis hangs
LISTENER_REDIS_TIMEOUT_SECONDS: Final = 0.5
LISTENER_REDIS_RETRIES: Final = 1
#: connections one listener process may hold: a request thread takes one at a time and gives it
#: back on every path, so a leak shows as an error here instead of a process slowly drowning
LISTENER_MAX_CONNECTIONS: Final = 64
#: a waiting process tries again after 0.25 s, doubling up to this
OUTAGE_BACKOFF_CAP_SECONDS: Final = 5.0
OUTAGE_BACKOFF_BASE_SECONDS: Final = 0.25
_OUTAGE_ERRORS: Final = (redis.ConnectionError, redis.TimeoutError, socket.timeout)


def connect_listener_redis(url: str) -> redis.Redis:
    """A Redis client for request handlers: short timeouts, one retry of a broken connection,
    no retry of a timeout, so a dead or hung Redis becomes ``QueueUnavailable`` (503) fast."""
    return redis.Redis.from_url(
        url,
        max_connections=LISTENER_MAX_CONNECTIONS,
        socket_connect_timeout=LISTENER_REDIS_TIMEOUT_SECONDS,
        socket_timeout=LISTENER_REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), LISTENER_REDIS_RETRIES, supported_errors=(redis.ConnectionError,)),
    )


class _Outage:
    """Whether this process is waiting for Redis, so that an outage is logged once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self.stopping = threading.Event()

    def began(self, error: Exception) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning(
            "Redis unreachable; waiting for it and reconnecting",
            extra={"error": type(error).__name__},
        )

    def ended(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning(
                "Redis reachable again",
                extra={"outage_seconds": round(time.monotonic() - since, 1)},
            )


_outage = _Outage()


class OutageRetry(Retry):
    """redis-py's ``Retry``, forever (until ``stop_waiting``), logging an outage once."""

    def __init__(self) -> None:
        super().__init__(
            ExponentialWithJitterBackoff(
                cap=OUTAGE_BACKOFF_CAP_SECONDS, base=OUTAGE_BACKOFF_BASE_SECONDS
            ),
            retries=-1,
            supported_errors=_OUTAGE_ERRORS,
        )

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def noted(error: Exception, *count: int) -> Any:
            if _outage.stopping.is_set():
                raise error
            _outage.began(error)
            return fail(error, *count)

        result = super().call_with_retry(do, noted, is_retryable, with_failure_count)
        _outage.ended()
        return result


def wait_out_outages(client: redis.Redis) -> redis.Redis:
    """Make every command of ``client`` (and of clients rq builds from its settings) wait for
    Redis to come back instead of failing; returns ``client``."""
    client.set_retry(OutageRetry())
    return client


def stop_waiting() -> None:
    """The process is stopping: commands waiting for Redis fail instead of waiting on."""
    _outage.stopping.set()
