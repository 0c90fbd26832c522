"""Delivery of change and lifecycle notifications, the way Graph pushes them to a webhook.

Items for the same URL that arrive within ``BATCH_WINDOW_SECONDS`` go out in one POST
``{"value": [...]}``. A delivery counts only when the answer is a 2xx within
``DELIVERY_TIMEOUT_SECONDS``; otherwise the same batch is sent again with exponential backoff
(1, 2, 4 ... ``MAX_BACKOFF_SECONDS``) until ``retry_for_seconds`` have passed since its first
attempt, then abandoned. One batch per URL is in flight at a time, so a URL sees its
notifications in order; different URLs are served in parallel. Nothing here blocks the request
that made the change.

Failure policy: delivery problems are counted (``failed_attempts``, ``abandoned``), never
raised; the validation handshake returns a sentence saying why it failed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from sandbox.graph.knobs import Counters

BATCH_WINDOW_SECONDS = 0.1
DELIVERY_TIMEOUT_SECONDS = 3.0
VALIDATION_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
MAX_ITEMS_PER_POST = 100
DELIVERY_THREADS = 8

log = logging.getLogger(__name__)


@dataclass
class _Endpoint:
    url: str
    pending: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    batch: list[tuple[str, str, dict[str, Any]]] | None = None
    due: float | None = None
    busy: bool = False
    attempts: int = 0
    first_try: float = 0.0


class Notifier:
    """Background delivery of notifications to webhook URLs."""

    def __init__(
        self,
        counters: Counters,
        *,
        verify: bool | str = True,
        retry_for_seconds: float = 4 * 3600.0,
    ) -> None:
        self.counters = counters
        self.verify = verify
        self.retry_for_seconds = retry_for_seconds
        self._cond = threading.Condition()
        self._endpoints: dict[str, _Endpoint] = {}
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="notify")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="notify-dispatch", daemon=True)
        self._thread.start()

    # --- public --------------------------------------------------------------------------------

    def enqueue(self, url: str, item: dict[str, Any], *, tenant_id: str, kind: str) -> None:
        """Queue one notification item (``kind`` is ``change`` or ``lifecycle``)."""
        with self._cond:
            endpoint = self._endpoints.setdefault(url, _Endpoint(url))
            endpoint.pending.append((tenant_id, kind, item))
            if endpoint.due is None and not endpoint.busy and endpoint.batch is None:
                endpoint.due = time.monotonic() + BATCH_WINDOW_SECONDS
                self._cond.notify()

    def validate(self, url: str) -> str | None:
        """Graph's validation handshake; ``None`` when the endpoint passed, else why not."""
        token = (
            "Validation: Testing client application reachability for subscription Request-Id: "
            f"{uuid.uuid4()}"
        )
        separator = "&" if "?" in url else "?"
        target = f"{url}{separator}validationToken={quote(token, safe='')}"
        failed = (
            "Subscription validation request failed. Notification endpoint must respond with "
            "200 OK to validation request."
        )
        try:
            with self._session().post(
                target,
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=VALIDATION_TIMEOUT_SECONDS,
                verify=self.verify,
            ) as response:
                if response.status_code != 200:
                    return failed
                if response.text != token:
                    return (
                        "Subscription validation request failed. Response must exactly match "
                        "validationToken query parameter."
                    )
        except requests.Timeout:
            return "Subscription validation request timed out."
        except requests.RequestException:
            return failed
        return None

    def pending_count(self) -> int:
        with self._cond:
            return sum(len(e.pending) + len(e.batch or ()) for e in self._endpoints.values())

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- dispatch ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                ready = [
                    e
                    for e in self._endpoints.values()
                    if e.due is not None and e.due <= now and not e.busy
                ]
                if not ready:
                    dues = [
                        e.due for e in self._endpoints.values() if e.due is not None and not e.busy
                    ]
                    self._cond.wait(timeout=(min(dues) - now) if dues else None)
                    continue
                for endpoint in ready:
                    if endpoint.batch is None:
                        endpoint.batch = endpoint.pending[:MAX_ITEMS_PER_POST]
                        del endpoint.pending[:MAX_ITEMS_PER_POST]
                        endpoint.attempts = 0
                        endpoint.first_try = now
                    endpoint.busy = True
                    endpoint.due = None
                    self._pool.submit(self._send, endpoint)

    def _send(self, endpoint: _Endpoint) -> None:
        batch = endpoint.batch or []
        started = time.monotonic()
        ok = False
        try:
            with self._session().post(
                endpoint.url,
                json={"value": [item for _, _, item in batch]},
                timeout=DELIVERY_TIMEOUT_SECONDS,
                verify=self.verify,
            ) as response:
                ok = 200 <= response.status_code < 300
        except requests.RequestException:
            ok = False
        ok = ok and time.monotonic() - started <= DELIVERY_TIMEOUT_SECONDS
        with self._cond:
            endpoint.busy = False
            now = time.monotonic()
            if ok:
                for tenant_id, kind, _ in batch:
                    outcome = "delivered" if kind == "change" else "lifecycle"
                    self.counters.notification(tenant_id, outcome)
                endpoint.batch = None
            else:
                for tenant_id in {t for t, _, _ in batch}:
                    self.counters.notification(tenant_id, "failed_attempts")
                endpoint.attempts += 1
                if now - endpoint.first_try >= self.retry_for_seconds:
                    for tenant_id, _, _ in batch:
                        self.counters.notification(tenant_id, "abandoned")
                    log.warning("gave up delivering %d notifications", len(batch))
                    endpoint.batch = None
                else:
                    backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (endpoint.attempts - 1))
                    endpoint.due = now + backoff * random.uniform(0.8, 1.2)
            if endpoint.batch is None and endpoint.pending:
                endpoint.due = now
            self._cond.notify()
