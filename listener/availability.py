"""Whether this listener process may ask Redis right now: a circuit breaker that keeps every
answer fast while Redis is down, hung or full.

Once a request finds Redis failing, the process answers 503 at once, without asking Redis, for
``OPEN_SECONDS``; then one request at a time tries again (the others still get 503 at once) until
one succeeds, and from then on every request goes through. So at any concurrency only the few
requests in flight when Redis failed wait for its timeouts (``common.state.connections``), and the
process recovers by itself within about a second of Redis returning. Each change of state is
logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from common.errors import QueueUnavailable

log = logging.getLogger(__name__)

#: how long a process answers 503 without asking Redis after it failed
OPEN_SECONDS: Final = 1.0


class RedisBreaker:
    """One per listener process; safe to share between request threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: 0 while closed; else when the next request may try Redis
        self._retry_at = 0.0
        self._probing = False

    @property
    def closed(self) -> bool:
        """Whether requests go to Redis (it did not fail, or answered since)."""
        return self._retry_at == 0.0

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Run the block's Redis work, or raise ``QueueUnavailable`` at once while open.

        A ``QueueUnavailable`` from the block opens the breaker; the block ending normally while
        open closes it."""
        probe = False
        if self._retry_at:
            with self._lock:
                if self._retry_at and (self._probing or self._clock() < self._retry_at):
                    raise QueueUnavailable("Redis failed moments ago; not asked again yet")
                probe = self._probing = bool(self._retry_at)
        try:
            yield
        except QueueUnavailable:
            with self._lock:
                opened = self._retry_at == 0.0
                self._retry_at = self._clock() + OPEN_SECONDS
                if probe:
                    self._probing = False
            if opened:
                log.warning("Redis unavailable; answering 503 so Graph delivers again")
            raise
        except BaseException:
            if probe:
                with self._lock:
                    self._probing = False
            raise
        if self._retry_at:
            with self._lock:
                reopened = self._retry_at != 0.0
                self._retry_at = 0.0
                self._probing = False
            if reopened:
                log.warning("Redis reachable again; notifications are queued again")
