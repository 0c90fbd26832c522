"""The RQ worker class Skolsynk runs: rq's ``SimpleWorker`` (jobs run in the worker process, so
clients, connection pools and tokens live across jobs instead of being rebuilt in a fork for
each one), which takes out the lease of an object job before rq even marks the job started.

Taking the lease first closes the gap in which a worker killed right after dequeuing a job would
lose it unnoticed: from the moment a job leaves the queue, either its lease is renewed by a live
run or it runs out and the scheduler queues the object again (``Dispatcher.recover_abandoned``).

Run: ``rq worker --worker-class worker.runner.SkolsynkWorker ...`` (the Procfile's ``worker``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from common.logs import bind_job_context, clear_context, configure_logging
from common.state.dispatch import Dispatcher, object_change


class SkolsynkWorker(SimpleWorker):
    """``SimpleWorker`` that leases an object job's object before running it, and logs what
    the jobs log as JSON lines with the job's id, tenant and object bound."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configure_logging(fmt=os.environ.get("SKOLSYNK_LOG_FORMAT", "json"))
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
            Dispatcher(self.connection).take_lease(change)
        try:
            return super().execute_job(job, queue)
        finally:
            clear_context()  # the lines after the job (taking the next one) are not about it
