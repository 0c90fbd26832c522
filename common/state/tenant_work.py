"""A tenant's queued work, dropped when the tenant is removed: jobs waiting on the queues (and
scheduled to run later) whose first argument is the tenant, and its pending markers; and, for a
demo that shared someone's Redis, everything stored for a tenant (``purge_tenant``).

Failure policy: Redis failures raise ``QueueUnavailable``. A job that is already running is
left to finish (its tenant is gone, so it writes nothing more than it already has).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from common.state.dispatch import (
    QUEUE_NAMES,
    reconcile_pending_key,
    renewal_pending_key,
)
from common.state.portal_memory import PortalMemory
from common.state.store import KEY_PREFIX, redis_errors

#: job ids fetched per round trip while looking through a queue
_BATCH = 500


def drop_tenant_work(client: redis.Redis, tenant_id: str) -> int:
    """Remove the tenant's queued and scheduled jobs and its pending markers; jobs removed."""
    dropped = 0
    with redis_errors():
        for name in QUEUE_NAMES:
            queue = Queue(name, connection=client, serializer=JSONSerializer)
            dropped += _drop(queue, queue.get_job_ids(), tenant_id, queued=True)
            scheduled = queue.scheduled_job_registry
            dropped += _drop(queue, scheduled.get_job_ids(), tenant_id, queued=False)
        markers: list[Any] = list(
            client.scan_iter(match=f"{KEY_PREFIX}pending:{tenant_id}:*", count=1000)
        )
        markers += [reconcile_pending_key(tenant_id), renewal_pending_key(tenant_id)]
        client.delete(*markers)
    return dropped


def purge_tenant(client: redis.Redis, tenant_id: str) -> int:
    """Delete everything stored for the tenant: its settings, runs, safety state, audit log,
    subscription records, queued jobs and the jobs rq keeps after they ran; keys deleted.
    Shared counters (the metrics' totals) stay: they only ever count up."""
    deleted = drop_tenant_work(client, tenant_id)
    with redis_errors():
        raw: Any = client.get(f"{KEY_PREFIX}tenant:{tenant_id}")
    if raw:
        # what was learnt of its portals' servers (common.portal.learning) goes with it
        memory = PortalMemory(client)
        for portal in json.loads(raw).get("portals", {}).values():
            deleted += memory.forget(str(portal.get("url", "")))
    with redis_errors():
        subscriptions = f"{KEY_PREFIX}subscriptions:{tenant_id}"
        ids = [m.decode() for m in client.smembers(subscriptions)]  # type: ignore[union-attr]
        keys: list[Any] = [f"{KEY_PREFIX}subscription:{i.lower()}" for i in ids]
        keys += client.scan_iter(match=f"{KEY_PREFIX}*{tenant_id}*", count=1000)
        for name in QUEUE_NAMES:
            queue = Queue(name, connection=client, serializer=JSONSerializer)
            for registry in (
                queue.finished_job_registry,
                queue.failed_job_registry,
                queue.started_job_registry,
            ):
                job_ids = registry.get_job_ids()
                for job in Job.fetch_many(job_ids, connection=client, serializer=JSONSerializer):
                    if job is not None and job.args and str(job.args[0]) == tenant_id:
                        registry.remove(job, delete_job=True)
                        deleted += 1
        if keys:
            deleted += int(client.delete(*keys))
        client.srem(f"{KEY_PREFIX}tenants", tenant_id)
        client.hdel(f"{KEY_PREFIX}removed-tenants", tenant_id)
    return deleted


def _drop(queue: Queue, job_ids: list[str], tenant_id: str, *, queued: bool) -> int:
    dropped = 0
    for start in range(0, len(job_ids), _BATCH):
        batch = job_ids[start : start + _BATCH]
        for job in Job.fetch_many(batch, connection=queue.connection, serializer=JSONSerializer):
            if job is None or not job.args or str(job.args[0]) != tenant_id:
                continue
            if queued:
                queue.remove(job)
            else:
                queue.scheduled_job_registry.remove(job)
            job.delete()
            dropped += 1
    return dropped
