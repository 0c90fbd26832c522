"""The listener's own Prometheus metrics (per process: HTTP requests, notifications), and the
``/metrics`` exposition that adds the sync's metrics (``listener.sync_metrics``) to them.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps every worker's
values in files there, and ``/metrics`` adds them up over all workers (multiprocess mode; the
gunicorn config removes a dead worker's files).
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from common.state.subscriptions import REJECTION_REASONS
from listener.sync_metrics import SyncStateCollector

ENDPOINTS: Final = ("notifications", "lifecycle")
#: why an item of a POST was dropped: the subscription checks, and our own
ITEM_REJECTION_REASONS: Final = (
    "malformed",
    "unsupported_resource",
    "wrong_resource",
    *REJECTION_REASONS,
)
LIFECYCLE_EVENTS: Final = ("reauthorizationRequired", "subscriptionRemoved", "missed", "other")
LATENCY_BUCKETS_SECONDS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


def multiprocess_mode() -> bool:
    """Whether prometheus_client stores values in ``PROMETHEUS_MULTIPROC_DIR`` files: it decides
    when it is imported, choosing a value class other than its in-process ``MutexValue``; we
    only follow its decision."""
    return values.ValueClass is not values.MutexValue


class ListenerMetrics:
    """Counters and the latency histogram of one listener app."""

    def __init__(self, state_collector: SyncStateCollector | None = None) -> None:
        self.state_collector = state_collector
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "skolsynk_notifications_received",
            "Notification items received, by endpoint",
            ["endpoint"],
            registry=r,
        )
        self.accepted = Counter(
            "skolsynk_notifications_accepted",
            "Change notifications that passed every check and were queued (or folded into a "
            "waiting job)",
            registry=r,
        )
        self.rejected = Counter(
            "skolsynk_notifications_rejected",
            "Notification items dropped, by endpoint and reason",
            ["endpoint", "reason"],
            registry=r,
        )
        self.enqueued = Counter(
            "skolsynk_jobs_enqueued",
            "Jobs put on a queue by the listener, by job kind",
            ["kind"],
            registry=r,
        )
        self.deduplicated = Counter(
            "skolsynk_notifications_deduplicated",
            "Accepted notifications folded into a job that was already waiting",
            registry=r,
        )
        self.lifecycle = Counter(
            "skolsynk_lifecycle_events",
            "Verified lifecycle notifications, by event",
            ["event"],
            registry=r,
        )
        self.redis_errors = Counter(
            "skolsynk_listener_redis_errors",
            "Requests answered 503 because Redis could not be reached",
            registry=r,
        )
        self.requests = Counter(
            "skolsynk_listener_requests",
            "HTTP requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "skolsynk_listener_request_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=r,
        )
        # every series exists from the start, so rates and alerts see zeros, not gaps
        for endpoint in ENDPOINTS:
            self.received.labels(endpoint)
            self.latency.labels(endpoint)
            for reason in ITEM_REJECTION_REASONS:
                self.rejected.labels(endpoint, reason)
        for event in LIFECYCLE_EVENTS:
            self.lifecycle.labels(event)
        for kind in ("user", "group", "renewal"):
            self.enqueued.labels(kind)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels`` takes a lock and builds keys
        on every call, and the notification path counts several things per request."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*labels))
        return found

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count an answered request and the ``seconds`` it took."""
        self.child(self.latency, endpoint).observe(seconds)
        self.child(self.requests, endpoint, str(status)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every metric, and its content type."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest(self.registry)
        if self.state_collector is not None:
            state = CollectorRegistry()
            state.register(self.state_collector)
            body += generate_latest(state)
        return body, CONTENT_TYPE_LATEST
