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
jobs ``rq enqueue --serializer json`` makes. Only rq's public methods are overridden
(``get_jobs``, ``enqueue_jobs``, ``calculate_sleep_interval``, ``to_dict``,
``register_death``); rq's minor version is pinned in pyproject.

Redis outages: every command waits for Redis and reconnects with backoff, logged once per outage
(``common.state.connections.wait_out_outages``), so the loop never dies of one; a stop
requested meanwhile stops the waiting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import redis
from rq import Queue, cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now

from common.config import load_config
from common.errors import ConfigError, QueueUnavailable
from common.logs import configure_logging
from common.state.connections import stop_waiting, wait_out_outages
from common.state.dispatch import (
    FAILURE_TTL_SECONDS,
    LIVE_QUEUE,
    RECONCILE_ALL_JOB,
    RECONCILE_QUEUE,
    RECOVER_ABANDONED_JOB,
    RENEW_ALL_SUBSCRIPTIONS_JOB,
    RESULT_TTL_SECONDS,
)
from common.state.guards import OBJECT_LEASE_SECONDS
from common.state.store import redis_errors

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
    """rq's ``CronScheduler`` running ``JSONCronJob`` entries (its loop, heartbeat, registry)."""

    def __init__(self, connection: redis.Redis, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._entries: list[JSONCronJob] = []

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
        self._entries.append(job)
        log.info(
            "scheduled",
            extra={"job": entry.func_name, "cron": entry.cron, "every": entry.interval_seconds},
        )
        return job

    def get_jobs(self) -> list[CronJob]:
        return list(self._entries)

    def enqueue_jobs(self) -> list[CronJob]:
        """Enqueue every entry that is due (as rq's own ``enqueue_jobs`` does)."""
        moment = now()
        due: list[CronJob] = []
        for job in self._entries:
            if job.should_run():
                job.enqueue(self.connection)
                job.set_enqueue_time(moment)
                due.append(job)
        return due

    def calculate_sleep_interval(self) -> float:
        """Seconds until the next entry is due, at most a minute."""
        upcoming: list[datetime] = [
            j.next_enqueue_time for j in self._entries if j.next_enqueue_time
        ]
        if not upcoming:
            return 60.0
        return max(0.0, min((min(upcoming) - now()).total_seconds(), 60.0))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_dict()
        data["cron_jobs"] = json.dumps([job.to_dict() for job in self._entries])
        return data

    def register_death(self, pipeline: Any = None) -> None:
        # stopping: a Redis that is away must not keep the process waiting
        stop_waiting()
        try:
            with redis_errors():
                super().register_death(pipeline)
        except QueueUnavailable:
            log.warning("could not record the scheduler's stop in Redis")


def build_scheduler(connection: redis.Redis) -> JSONCronScheduler:
    """A scheduler with every entry of ``SCHEDULE``; ``start()`` runs it until SIGTERM."""
    scheduler = JSONCronScheduler(connection=connection)
    for entry in SCHEDULE:
        scheduler.add(entry)
    return scheduler


def main() -> None:
    try:
        config = load_config()
    except ConfigError as exc:
        raise SystemExit(f"{exc}\n{exc.hint}") from None
    configure_logging(fmt=config.log_format)
    connection = wait_out_outages(
        redis.Redis.from_url(
            config.redis_url,
            socket_timeout=SCHEDULER_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=SCHEDULER_REDIS_TIMEOUT_SECONDS,
        )
    )
    build_scheduler(connection).start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
