"""The listener's Prometheus metrics, one set per app, exposed at ``/metrics``.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps every worker's
values in files there, and ``/metrics`` adds them up over all workers (multiprocess mode; the
gunicorn config removes a dead worker's files).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from common.config import Secret
from common.errors import SkolsynkError
from common.state.dispatch import Dispatcher
from common.state.registry import TenantRegistry
from common.state.runs import RunStore
from common.state.subscriptions import REJECTION_REASONS, SubscriptionStore
from common.state.telemetry import Telemetry
from common.sync.safety import SafetyState

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
    """Whether prometheus_client stores values in ``PROMETHEUS_MULTIPROC_DIR`` files (it decides
    when it is imported; we only follow its decision)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


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


class SyncStateCollector:
    """Metrics of the sync as a whole, read from Redis at each scrape: what every worker and
    command counted (``common.state.telemetry``),
    queue depths, held actions, subscription expiry and
    each tenant's last reconcile. A scrape while Redis is away reports ``skolsynk_state_up 0``
    instead of failing."""

    def __init__(self, client: redis.Redis, secret_key: Secret) -> None:
        self.redis = client
        self.secret_key = secret_key

    def describe(self) -> list[Any]:
        return []  # collected fresh at each scrape; nothing to register up front

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("skolsynk_state_up", "Whether the sync's state in Redis was read")
        try:
            families = list(self._families())
        except SkolsynkError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Any]:
        counters = Telemetry(self.redis).counters()
        runs = CounterMetricFamily(
            "skolsynk_sync_runs",
            "Sync runs by kind (reconcile, live) and outcome",
            labels=["kind", "outcome"],
        )
        graph = CounterMetricFamily(
            "skolsynk_graph_requests",
            "Graph requests by status (inside $batch counted one by one)",
            labels=["status"],
        )
        writes = CounterMetricFamily(
            "skolsynk_portal_writes", "Changes written to portals, by kind", labels=["kind"]
        )
        failures = CounterMetricFamily("skolsynk_portal_write_failures", "Changes a portal refused")
        held_total = CounterMetricFamily(
            "skolsynk_held_actions_added", "Removals held by the mass-change guard"
        )
        seconds = SummaryMetricFamily(
            "skolsynk_run_seconds", "Duration of sync runs, by kind", labels=["kind"]
        )
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        failures.add_metric([], counters.get(("portal_write_failures",), 0.0))
        held_total.add_metric([], counters.get(("held_total",), 0.0))
        for key, value in sorted(counters.items()):
            name, labels = key[0], list(key[1:])
            if name == "runs" and len(labels) == 2:
                runs.add_metric(labels, value)
            elif name == "graph_requests" and len(labels) == 1:
                graph.add_metric(labels, value)
            elif name == "portal_writes" and len(labels) == 1:
                writes.add_metric(labels, value)
            elif name == "run_seconds_sum" and labels:
                sums[labels[0]] = value
            elif name == "run_seconds_count" and labels:
                counts[labels[0]] = value
        for kind in sorted(counts):
            seconds.add_metric([kind], count_value=int(counts[kind]), sum_value=sums.get(kind, 0.0))
        yield from (runs, graph, writes, failures, held_total, seconds)

        depth = GaugeMetricFamily(
            "skolsynk_queue_depth",
            "Jobs waiting per queue (.failed: in the failed registry)",
            labels=["queue"],
        )
        for queue, count in sorted(Dispatcher(self.redis).queue_depths().items()):
            depth.add_metric([queue], count)
        yield depth

        held = GaugeMetricFamily(
            "skolsynk_held_actions", "Removals waiting for approval, per tenant", labels=["tenant"]
        )
        expiry = GaugeMetricFamily(
            "skolsynk_subscription_expiry_timestamp_seconds",
            "When each Graph subscription expires unless renewed",
            labels=["tenant", "resource"],
        )
        last_at = GaugeMetricFamily(
            "skolsynk_last_reconcile_timestamp_seconds",
            "When the last full reconcile of each tenant finished",
            labels=["tenant"],
        )
        last_seconds = GaugeMetricFamily(
            "skolsynk_last_reconcile_duration_seconds",
            "How long the last full reconcile of each tenant took",
            labels=["tenant"],
        )
        last_ok = GaugeMetricFamily(
            "skolsynk_last_reconcile_ok",
            "1 when the last full reconcile of a tenant ended ok (held and gated count as ok)",
            labels=["tenant"],
        )
        registry = TenantRegistry(self.redis, self.secret_key)
        safety = SafetyState(self.redis)
        runs_store = RunStore(self.redis)
        subscriptions = SubscriptionStore(self.redis, self.secret_key)
        for tenant in registry.all():
            held.add_metric([tenant.id], len(safety.held(tenant.id)))
            for record in subscriptions.for_tenant(tenant.id):
                expiry.add_metric([tenant.id, record.resource], record.expires_at.timestamp())
            last = runs_store.last(tenant.id)
            if last is not None and last.finished_at:
                finished = datetime.fromisoformat(last.finished_at).timestamp()
                last_at.add_metric([tenant.id], finished)
                last_seconds.add_metric([tenant.id], last.seconds)
                last_ok.add_metric([tenant.id], 1 if last.outcome in OK_OUTCOMES else 0)
        yield from (held, expiry, last_at, last_seconds, last_ok)


#: reconcile outcomes that need no alert (removals held or skipped are shown elsewhere)
OK_OUTCOMES: Final = ("ok", "held", "gated")
