"""What the sync did, counted in Redis so that every process adds up (workers on several
machines, the command line), for the listener's ``/metrics`` to show.

Counters: runs by kind and outcome, Graph requests by status (each request inside a ``$batch``
counted, 429s included), portal writes by kind, run durations (sum and count by kind), jobs by
queue from being queued to done and the part of it spent waiting for a worker, re-checks of
objects Graph did not show yet.
Gauges read from the state: queue depths, held actions, subscription expiry, last reconcile.

Failure policy: recording is best effort after the work is done; a Redis failure raises
``QueueUnavailable`` like every other Redis use.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis

from common.state.runs import RunReport
from common.state.store import KEY_PREFIX, redis_errors

METRICS_KEY = KEY_PREFIX + "metrics"
SEPARATOR = "|"


class Telemetry:
    """Counters in one Redis hash: ``name|label|label`` -> number."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis: Any = client

    def record_run(
        self, report: RunReport, *, kind: str, graph_statuses: Counter[int] | None = None
    ) -> None:
        """Count one run: its outcome, its writes, its Graph requests and its duration."""
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(METRICS_KEY, f"runs{SEPARATOR}{kind}{SEPARATOR}{report.outcome}", 1)
            for action, count in report.applied.items():
                pipe.hincrby(METRICS_KEY, f"portal_writes{SEPARATOR}{action}", count)
            if report.failed:
                pipe.hincrby(METRICS_KEY, "portal_write_failures", len(report.failed))
            if report.held:
                pipe.hincrby(METRICS_KEY, "held_total", report.held)
            for status, count in (graph_statuses or Counter()).items():
                pipe.hincrby(METRICS_KEY, f"graph_requests{SEPARATOR}{status}", count)
            pipe.hincrbyfloat(METRICS_KEY, f"run_seconds_sum{SEPARATOR}{kind}", report.seconds)
            pipe.hincrby(METRICS_KEY, f"run_seconds_count{SEPARATOR}{kind}", 1)
            pipe.execute()

    def count(self, name: str, *labels: str, amount: int = 1) -> None:
        """Add ``amount`` to one counter (``name`` and its labels)."""
        with redis_errors():
            self.redis.hincrby(METRICS_KEY, SEPARATOR.join((name, *labels)), amount)

    def record_job(self, queue: str, *, waited: float, total: float) -> None:
        """Count one job a worker ran: how long it waited on ``queue`` before a worker took it
        and how long from being queued to being done (the wait included)."""
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrbyfloat(METRICS_KEY, f"job_wait_seconds_sum{SEPARATOR}{queue}", waited)
            pipe.hincrbyfloat(METRICS_KEY, f"job_seconds_sum{SEPARATOR}{queue}", total)
            pipe.hincrby(METRICS_KEY, f"job_seconds_count{SEPARATOR}{queue}", 1)
            pipe.execute()

    def counters(self) -> dict[tuple[str, ...], float]:
        """Every counter as (name, labels...) -> value."""
        with redis_errors():
            raw = self.redis.hgetall(METRICS_KEY)
        return {tuple(k.decode().split(SEPARATOR)): float(v.decode()) for k, v in raw.items()}


def graph_statuses(graph: Any) -> Counter[int]:
    """Graph answers of one client by status, counting requests inside batches one by one
    (the batch envelopes themselves are left out, as Graph's throttling does)."""
    counts: Counter[int] = Counter(graph.inner_status_counts)
    outer = Counter(graph.status_counts)
    envelopes = graph.batch_count
    # every batch envelope was answered 200; take them out of the outer 200s
    if envelopes:
        outer[200] -= envelopes
    counts.update({k: v for k, v in outer.items() if v > 0})
    return counts
