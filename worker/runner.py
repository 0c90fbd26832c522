"""The RQ worker class Skolsynk runs: rq's ``SimpleWorker`` (jobs run in the worker process, so
clients, connection pools and tokens live across jobs instead of being rebuilt in a fork for
each one), which takes out the lease of an object job before rq even marks the job started.

Taking the lease first closes the gap in which a worker killed right after dequeuing a job would
lose it unnoticed: from the moment a job leaves the queue, either its lease is renewed by a live
run or it runs out and the scheduler queues the object again (``Dispatcher.recover_abandoned``).

Redis outages: every command of the worker (and of the scheduler process rq forks for it with
``--with-scheduler``) waits for Redis and reconnects with backoff instead of failing
(``common.state.connections.wait_out_outages``), so rq's loop, which quits on a Redis error,
never sees one; the outage is logged once. A job cut off by the outage fails on its own Redis
calls and is retried by rq, and its lease, no longer renewed, runs out, so
``recover_abandoned`` queues its object again: it is recovered as a lost run. A stop requested
during an outage stops the waiting.

Scheduled jobs (rq's retries, the delayed re-checks of objects Graph does not show, busy
objects queued again) are moved to their queue by the one worker whose rq scheduler holds
rq's lock. When that worker is killed, its lock lapses only after about a minute, and the next
worker to look takes it over; a worker looks at every maintenance pass, so the pass runs every
``MAINTENANCE_INTERVAL_SECONDS`` instead of rq's ten minutes (it also moves jobs of killed
workers out of rq's started registry, to be retried). Meanwhile the recovery job of the
schedule moves the scheduled jobs that are a few seconds late
(``JobGuards.release_overdue``), so a killed worker delays them seconds, not a minute.

Each job's time from being queued to done, and the part spent waiting for a worker, is counted
for ``/metrics`` (``Telemetry.record_job``).

Run: ``rq worker --worker-class worker.runner.SkolsynkWorker ...`` (the Procfile's ``worker``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from common.config import log_format_setting
from common.errors import SkolsynkError
from common.logs import bind_job_context, clear_context, configure_logging
from common.state.connections import stop_waiting, wait_out_outages
from common.state.dispatch import object_change
from common.state.guards import JobGuards
from common.state.telemetry import Telemetry

log = logging.getLogger(__name__)

#: how often a worker runs rq's maintenance (takes over a lapsed scheduler lock, cleans up after
#: killed workers); rq's default is 600 s, which leaves scheduled jobs waiting that long
MAINTENANCE_INTERVAL_SECONDS = 30


class PatientRedis(redis.Redis):
    """The Redis client rq's command line builds (``--connection-class``): every command waits
    for Redis to come back instead of failing, from the first one on. rq's ``worker`` command
    asks Redis whether workers are suspended before it builds the worker, and exits on a
    connection error; a worker started while Redis is away must wait instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wait_out_outages(self)


class SkolsynkWorker(SimpleWorker):
    """``SimpleWorker`` that leases an object job's object before running it, and logs what
    the jobs log as JSON lines with the job's id, tenant and object bound."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.maintenance_interval = min(self.maintenance_interval, MAINTENANCE_INTERVAL_SECONDS)
        wait_out_outages(self.connection)
        configure_logging(fmt=log_format_setting())
        # rq's command line gave its loggers text handlers of their own; send them through
        # the same JSON handler instead, so every line of a worker is one structured event
        for name in ("rq.worker", "rq.job"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True

    def execute_job(self, job: Job, queue: Queue) -> Any:
        clear_context()
        bind_job_context(job_id=job.id, job=job.func_name, queue=queue.name)
        change = object_change(job.func_name, job.args)
        if change is not None:
            bind_job_context(tenant=change.tenant_id, kind=change.kind, object_id=change.object_id)
            JobGuards(self.connection).take_lease(change)
        started = time.time()
        try:
            return super().execute_job(job, queue)
        finally:
            self._count(job, queue, started)
            clear_context()  # the lines after the job (taking the next one) are not about it

    def request_stop(self, signum: Any, frame: Any) -> None:
        stop_waiting()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def _count(self, job: Job, queue: Queue, started: float) -> None:
        if job.enqueued_at is None:
            return
        queued = job.enqueued_at.timestamp()
        try:
            Telemetry(self.connection).record_job(
                queue.name, waited=max(0.0, started - queued), total=max(0.0, time.time() - queued)
            )
        except SkolsynkError:
            log.warning("could not count a job's time", extra={"queue": queue.name})
