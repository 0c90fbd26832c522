"""HTTP transport shared by the Graph and portal clients: pooled sessions, timeouts, retries.

This is the one retry layer (STYLE 11): 429 waits exactly ``Retry-After`` seconds (or backs off
when it is missing), 5xx, timeouts and connection errors back off exponentially with full jitter,
capped; any other status is returned to the client module, which translates it. ``requests``
exceptions are translated here, once, into the error tree (``raise ... from exc``).

Who retries what (the one retry layer, and the one above it):

- this transport retries short transient failures: 429 (waiting exactly ``Retry-After``), 5xx,
  timeouts and connection errors, four attempts with backoff of at most 0.5 + 1 + 2 s, so a blip
  of a few seconds costs nothing; the answers inside a Graph ``$batch`` get the same decision
  (``retry_wait``) in ``common.graph.batch``;
- rq's job-level retries (``common.state.dispatch``) run a whole job again only after the
  transport gave up, that is for a failure that outlasted it: an object job twice more (after
  30 s and 5 min), a reconcile once (after 10 min: the hourly schedule is its real retry), a
  subscription renewal three times (1, 10 and 30 min). Nothing else retries: no loop in a client,
  no Redis retry on the job side.

So a persistent failure of Graph or the portal costs at most 4 x 3 = 12 attempts of a request for
one changed object, and 4 x 2 = 8 for a reconcile; ``tests/common/test_retry_budget.py`` measures
both factors against the sandboxes.

Which requests are retried, and why that is safe:

- *idempotent* requests (GET, HEAD, OPTIONS, PUT, DELETE by RFC 9110 §9.2.2, and any request the
  caller declares ``idempotent=True`` because sending it twice leaves the same result as once:
  a Graph ``$batch`` of reads, a SCIM PATCH of absolute values) are retried on every failure
  above: a second copy that lands after a first one did changes nothing;
- any other request (POST, and PATCH unless declared) is retried only when the server surely did
  not carry it out: a 429 (refused before any work) or a connection that could not be opened
  (nothing was sent). A 5xx, a timeout or a connection lost after sending may have followed a
  write, so it is never sent again blindly: it raises the service's ``TransientError`` with
  ``maybe_applied`` set, and the client looks up what the first copy may have made (a SCIM
  create searches by ``externalId`` and userName before creating again).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from common.errors import Throttled, TransientError

#: (connect, read) seconds; every request has a timeout
DEFAULT_TIMEOUT_SECONDS = (5.0, 30.0)
DEFAULT_POOL_SIZE = 32
#: methods that are idempotent by RFC 9110 §9.2.2: retried after any failure
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class VerifyingSession(requests.Session):
    """A ``Session`` that sends its own ``verify`` with every request.

    ``requests`` lets ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` override ``Session.verify``
    (DESIGN §4.11), so a CA bundle set on the session would be silently ignored. Setting it per
    request keeps it, and keeps the environment's proxies (``trust_env`` stays on).
    """

    def __init__(self, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def build_session(
    *,
    ca_bundle: Path | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT_SECONDS,
) -> VerifyingSession:
    """A pooled session with timeouts, verifying TLS with ``ca_bundle`` when given."""
    session = VerifyingSession(timeout=timeout)
    if ca_bundle is not None:
        session.verify = str(ca_bundle)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request that may succeed later."""

    #: four attempts with waits of at most 0.5, 1 and 2 s: a blip of a few seconds is ridden out
    attempts: int = 4
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 4.0
    #: a longer Retry-After than this is not slept through: the caller gets ``Throttled``
    max_retry_after_seconds: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), full jitter."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


def retry_after_value(raw: str | None) -> float | None:
    """A ``Retry-After`` value in seconds (delta-seconds or an HTTP date); ``None`` if absent
    or unreadable."""
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header of an answer in seconds, if present."""
    return retry_after_value(response.headers.get("Retry-After"))


def retry_wait(
    policy: RetryPolicy, attempt: int, status: int, retry_after: float | None
) -> float | None:
    """Seconds to wait before trying again after attempt number ``attempt`` (1-based) ended
    with ``status`` (0: no answer came); ``None`` when it is not to be tried again.

    The one retry decision, for the transport and for the answers inside a Graph ``$batch``
    (``common.graph.batch``): 429, 5xx and no answer are retried while attempts remain; a 429
    waits exactly ``Retry-After`` unless that is longer than the policy accepts, a 5xx waits
    its ``Retry-After`` (capped) when it gives one; the rest back off with full jitter. Any
    other status is never retried. Whether the request may be sent again at all (a write
    whose answer was lost) is the caller's question, answered before this one.
    """
    if status not in (0, 429) and status < 500:
        return None
    if attempt >= policy.attempts:
        return None
    if retry_after is not None:
        if status == 429 and retry_after > policy.max_retry_after_seconds:
            return None
        return min(retry_after, policy.max_retry_after_seconds)
    return policy.backoff(attempt)


def give_up_error(
    service: str,
    what: str,
    status: int,
    attempts: int,
    retry_after: float | None,
    *,
    unavailable: type[TransientError],
) -> TransientError:
    """The error for a request that ``retry_wait`` gave up on: ``Throttled`` for 429, else
    ``unavailable`` (the service's own ``TransientError``)."""
    if status == 429:
        return Throttled(
            f"{service} kept throttling {what} (429) after {attempts} attempts",
            retry_after=retry_after,
        )
    answered = f"answered {what} with {status}" if status else f"could not be reached for {what}"
    return unavailable(f"{service} {answered} after {attempts} attempts")


#: called after every answer (or failure): method, the status (0 when none came), seconds
ResponseHook = Callable[[str, int, float], None]


class Transport:
    """Sends requests for one remote service with the retry policy; see the module docstring.

    ``unavailable`` is the ``TransientError`` subclass raised when the service keeps failing
    (``GraphUnavailable`` or ``PortalUnavailable``); ``service`` names it in messages.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        service: str,
        unavailable: type[TransientError],
        policy: RetryPolicy | None = None,
        on_response: ResponseHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.service = service
        self.unavailable = unavailable
        self.policy = policy or RetryPolicy()
        self.on_response = on_response
        self.sleep = sleep

    def request(
        self, method: str, url: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send, retrying what may succeed later; return the final answer of any other status.

        ``idempotent`` defaults to what the method is (``IDEMPOTENT_METHODS``); a request that
        is not is never sent again after it may have been carried out (module docstring).
        Raises ``Throttled`` when 429 outlasts the retries, ``self.unavailable`` for 5xx,
        timeouts and connection errors that outlast them or that may have followed a write
        (``maybe_applied`` then true).
        """
        repeatable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        what = f"{method.upper()} {urlsplit(url).path or '/'}"
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                self._observe(method, 0, started)
                if not repeatable and not _never_sent(exc):
                    raise self._lost(f"({type(exc).__name__})") from exc
                wait = retry_wait(self.policy, attempt, 0, None)
                if wait is None:
                    raise give_up_error(
                        self.service,
                        f"{what} ({type(exc).__name__})",
                        0,
                        attempt,
                        None,
                        unavailable=self.unavailable,
                    ) from exc
                self.sleep(wait)
                continue
            except requests.RequestException as exc:
                self._observe(method, 0, started)
                error = self.unavailable(f"{self.service} request failed ({type(exc).__name__})")
                error.maybe_applied = not repeatable
                raise error from exc
            status = response.status_code
            self._observe(method, status, started)
            if status != 429 and status < 500:
                return response
            retry_after = retry_after_seconds(response)
            response.close()
            if status >= 500 and not repeatable:
                # a 429 was refused before any work; a 5xx may have followed the write
                raise self._lost(f"({status})")
            wait = retry_wait(self.policy, attempt, status, retry_after)
            if wait is None:
                raise give_up_error(
                    self.service,
                    what,
                    status,
                    attempt,
                    retry_after,
                    unavailable=self.unavailable,
                )
            self.sleep(wait)

    def _lost(self, cause: str) -> TransientError:
        """The error for a write whose answer was lost: it may or may not have been applied."""
        error = self.unavailable(
            f"{self.service} lost the answer to a write {cause}; it may have been applied"
        )
        error.maybe_applied = True
        return error

    def _observe(self, method: str, status: int, started: float) -> None:
        if self.on_response is not None:
            self.on_response(method, status, time.monotonic() - started)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely never reached the server (the connection was not opened)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    # requests wraps urllib3's MaxRetryError, whose ``reason`` is the failure underneath
    inner = exc.args[0] if exc.args else None
    return isinstance(getattr(inner, "reason", inner), NewConnectionError)
