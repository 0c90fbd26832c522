"""The schedule: every tenant reconciled hourly, subscriptions renewed every six hours.

Run exactly one scheduler process: ``python -m worker.cron`` (the Procfile's ``scheduler``).
A second one would enqueue each run twice (harmless, since the fan-out jobs coalesce per
tenant, but wasteful).

Why not ``rq cron worker.cron``: rq 3.0's ``rq cron`` enqueues every job with rq's default
(pickle) serializer, and neither its config file hook (``rq.cron.register``) nor its command
line takes another. Our workers read JSON only
(``common.state.dispatch``), so such jobs would fail to
deserialize. This module runs rq's own ``CronScheduler`` (its loop, heartbeat and registry,
visible to rq's monitoring) with cron jobs that enqueue JSON jobs by dotted name: the same
jobs ``rq enqueue --serializer json`` makes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import redis
from rq import Queue, cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.job import Job
from rq.serializers import JSONSerializer

from common.config import load_config
from common.logs import configure_logging
from common.state.dispatch import (
    FAILURE_TTL_SECONDS,
    LIVE_QUEUE,
    OBJECT_LEASE_SECONDS,
    RECONCILE_ALL_JOB,
    RECONCILE_QUEUE,
    RECOVER_ABANDONED_JOB,
    RENEW_ALL_SUBSCRIPTIONS_JOB,
    RESULT_TTL_SECONDS,
)

log = logging.getLogger(__name__)

#: the fan-out jobs only enqueue per-tenant work; they should never take long
FAN_OUT_TIMEOUT_SECONDS: Final = 300
#: how often lost runs are looked for: a lost change lands within a lease and this interval
RECOVERY_INTERVAL_SECONDS: Final = OBJECT_LEASE_SECONDS // 3
SCHEDULER_REDIS_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class ScheduledJob:
    """One job the scheduler enqueues on a cron schedule (cron fields in the host's time)."""

    func_name: str
    queue_name: str
    cron: str | None = None
    interval_seconds: int | None = None
    timeout_seconds: int = FAN_OUT_TIMEOUT_SECONDS


SCHEDULE: Final = (
    # on the hour: every enabled tenant gets a full reconcile (coalesced per tenant)
    ScheduledJob(RECONCILE_ALL_JOB, RECONCILE_QUEUE, cron="0 * * * *"),
    # every six hours, off the hour: renewal looks RENEW_BEFORE_EXPIRY (3 days) ahead, so a
    # subscription gets a dozen chances before it would expire
    ScheduledJob(RENEW_ALL_SUBSCRIPTIONS_JOB, RECONCILE_QUEUE, cron="30 */6 * * *"),
    # every few seconds: runs lost with their worker (killed, machine gone) are queued again
    ScheduledJob(
        RECOVER_ABANDONED_JOB,
        LIVE_QUEUE,
        interval_seconds=RECOVERY_INTERVAL_SECONDS,
        timeout_seconds=60,
    ),
)


class JSONCronJob(CronJob):
    """A ``CronJob`` that enqueues a JSON-serialized job by dotted name."""

    def enqueue(self, connection: Any) -> Job:
        queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
        with connection.pipeline() as pipe:
            job = queue.enqueue(
                self.func_name,
                args=self.args,
                kwargs=self.kwargs,
                pipeline=pipe,
                **self.job_options,
            )
            enqueued_at = job.enqueued_at.timestamp() if job.enqueued_at else None
            # the same history rq's own cron jobs keep, so rq's monitoring shows these runs
            pipe.zadd(self.job_history_key, {job.id: enqueued_at or 0.0})
            pipe.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipe.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(self.name, pipe, enqueue_timestamp=enqueued_at)
            pipe.execute()
        log.info("scheduled job queued", extra={"job": self.func_name, "job_id": job.id})
        return job


class JSONCronScheduler(CronScheduler):
    """rq's ``CronScheduler`` running ``JSONCronJob`` entries."""

    def add(self, entry: ScheduledJob) -> JSONCronJob:
        job = JSONCronJob(
            queue_name=entry.queue_name,
            func_name=entry.func_name,
            cron=entry.cron,
            interval=entry.interval_seconds,
            job_timeout=entry.timeout_seconds,
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=FAILURE_TTL_SECONDS,
        )
        # register() builds rq's own CronJob from a function object; ours go in beside it
        self._cron_jobs.append(job)
        log.info(
            "scheduled",
            extra={"job": entry.func_name, "cron": entry.cron, "every": entry.interval_seconds},
        )
        return job


def build_scheduler(connection: redis.Redis) -> JSONCronScheduler:
    """A scheduler with every entry of ``SCHEDULE``; ``start()`` runs it until SIGTERM."""
    scheduler = JSONCronScheduler(connection=connection)
    for entry in SCHEDULE:
        scheduler.add(entry)
    return scheduler


def main() -> None:
    config = load_config()
    configure_logging(fmt=config.log_format)
    connection = redis.Redis.from_url(
        config.redis_url,
        socket_timeout=SCHEDULER_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=SCHEDULER_REDIS_TIMEOUT_SECONDS,
    )
    build_scheduler(connection).start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
