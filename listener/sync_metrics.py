"""The sync's metrics as a whole, read from Redis at each scrape of the listener's
``/metrics``: what every worker and command counted (``common.state.telemetry``), queue
depths, held actions, subscription expiry and each tenant's last reconcile.

Failure policy: a scrape while Redis is away reports ``skolsynk_state_up 0`` instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from common.config import Secret
from common.errors import SkolsynkError
from common.state.dispatch import Dispatcher
from common.state.held import HeldActions
from common.state.registry import TenantRegistry
from common.state.runs import RunStore
from common.state.subscriptions import SubscriptionStore
from common.state.telemetry import Telemetry


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
        jobs = SummaryMetricFamily(
            "skolsynk_job_seconds",
            "Jobs by queue, from being queued to done (the wait for a worker included)",
            labels=["queue"],
        )
        waits = CounterMetricFamily(
            "skolsynk_job_wait_seconds",
            "Seconds jobs waited on their queue before a worker took them, by queue",
            labels=["queue"],
        )
        rechecks = CounterMetricFamily(
            "skolsynk_replication_rechecks",
            "Scheduled second looks at an object Graph did not show yet, by kind",
            labels=["kind"],
        )
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        job_sums: dict[str, float] = {}
        job_counts: dict[str, float] = {}
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
            elif name == "job_seconds_sum" and labels:
                job_sums[labels[0]] = value
            elif name == "job_seconds_count" and labels:
                job_counts[labels[0]] = value
            elif name == "job_wait_seconds_sum" and labels:
                waits.add_metric(labels[:1], value)
            elif name == "rechecks" and labels:
                rechecks.add_metric(labels[:1], value)
        for kind in sorted(counts):
            seconds.add_metric([kind], count_value=int(counts[kind]), sum_value=sums.get(kind, 0.0))
        for queue in sorted(job_counts):
            jobs.add_metric(
                [queue], count_value=int(job_counts[queue]), sum_value=job_sums.get(queue, 0.0)
            )
        yield from (runs, graph, writes, failures, held_total, seconds, jobs, waits, rechecks)

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
        held_actions = HeldActions(self.redis)
        runs_store = RunStore(self.redis)
        subscriptions = SubscriptionStore(self.redis, self.secret_key)
        for tenant in registry.all():
            held.add_metric([tenant.id], len(held_actions.held(tenant.id)))
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
