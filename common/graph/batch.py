"""Requests and paged listings sent to Microsoft Graph through ``$batch`` calls of at most 20.

A ``$batch`` answers 200 even when the requests inside it fail, and each inner request is
throttled on its own (DESIGN §4.8), so the transport's retries cannot see them: inner 429, 5xx
and missing answers are retried here, with the same decision the transport makes
(``common.http.retry_wait``: the same policy, attempts and ``Retry-After`` handling) and the same
``sleep``. They raise ``Throttled`` or ``GraphUnavailable`` when they outlast it; any other error
of a listing raises the translated error (``common.graph.answers.translate``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.graph.answers import describe, page_items, translate
from common.graph.client import BATCH_LIMIT, GraphClient, Params
from common.graph.schemas import GraphDataError
from common.http import give_up_error, retry_after_value, retry_wait

__all__ = ["Batcher"]


class Batcher:
    """A queue of requests and listings sent together, as they come.

    ``request()`` queues one request whose final (status, body) goes to its callback;
    ``listing()`` queues a paged GET whose items (all pages, continuation links sent in later
    batches) go to its callback, ``None`` when the collection answered 404 and ``missing_ok``.
    Callbacks may queue more work; ``run()`` sends until the queue is empty. A round that must
    retry some of its requests waits once, the longest wait any of them asked for.
    """

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self._queue: deque[_Job] = deque()

    def request(
        self, url: str, on_done: Callable[[int, Any], None], *, method: str = "GET"
    ) -> None:
        self._queue.append(_Job(url, method, on_answer=on_done))

    def listing(
        self,
        url: str,
        on_done: Callable[[list[dict[str, Any]] | None], None],
        *,
        params: Params | None = None,
        missing_ok: bool = False,
        on_page: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        """Queue a paged GET; with ``on_page`` each page's items go there as they come (and
        ``on_done`` gets an empty list), which keeps large listings out of memory."""
        full = self.client.url(url, params)
        self._queue.append(
            _Job(full, "GET", on_items=on_done, on_page=on_page, missing_ok=missing_ok)
        )

    def run(self) -> None:
        policy = self.client.transport.policy
        while self._queue:
            chunk = [self._queue.popleft() for _ in range(min(BATCH_LIMIT, len(self._queue)))]
            answers = self.client.send_batch(
                [(str(i), job.method, job.url) for i, job in enumerate(chunk)]
            )
            retry: list[_Job] = []
            waits: list[float] = []
            for i, job in enumerate(chunk):
                status, headers, body = answers.get(str(i), (0, {}, None))
                if status == 429 or status >= 500 or status == 0:
                    job.failures += 1
                    retry_after = retry_after_value(headers.get("retry-after"))
                    wait = retry_wait(policy, job.failures, status, retry_after)
                    if wait is None:
                        raise give_up_error(
                            "Microsoft Graph",
                            f"{describe(job.method, job.url)} in a batch",
                            status,
                            job.failures,
                            retry_after,
                            unavailable=self.client.transport.unavailable,
                        )
                    waits.append(wait)
                    retry.append(job)
                    continue
                job.failures = 0
                self._settle(job, status, body)
            if retry:
                self._queue.extendleft(reversed(retry))
                self.client.transport.sleep(max(waits))

    def _settle(self, job: _Job, status: int, body: Any) -> None:
        if job.on_answer is not None:
            job.on_answer(status, body)
            return
        assert job.on_items is not None
        if status == 404 and job.missing_ok:
            job.on_items(None)
            return
        what = describe(job.method, job.url)
        if status >= 400:
            raise translate(status, body, what, self.client.tenant_id)
        if not isinstance(body, Mapping):
            raise GraphDataError(f"Microsoft Graph answered {what} in a batch with no JSON.")
        items = page_items(body, what)
        if job.on_page is not None:
            job.on_page(items)
        else:
            job.items.extend(items)
        next_link = body.get("@odata.nextLink")
        if next_link:
            # the rest of a listing goes first: its pages form the longest chain
            job.url = self.client.url(str(next_link))
            self._queue.appendleft(job)
        else:
            job.on_items(job.items)


@dataclass
class _Job:
    url: str
    method: str
    on_answer: Callable[[int, Any], None] | None = None
    on_items: Callable[[list[dict[str, Any]] | None], None] | None = None
    on_page: Callable[[list[dict[str, Any]]], None] | None = None
    missing_ok: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
