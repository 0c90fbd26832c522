"""The RQ worker class Skolsynk runs: rq's ``SimpleWorker`` (jobs run in the worker process, so
clients, connection pools and tokens live across jobs instead of being rebuilt in a fork for
each one), which takes out the lease of an object job before rq even marks the job started.

Taking the lease first closes the gap in which a worker killed right after dequeuing a job would
lose it unnoticed: from the moment a job leaves the queue, either its lease is renewed by a live
run or it runs out and the scheduler queues the object again (``Dispatcher.recover_abandoned``).

Run: ``rq worker --worker-class worker.runner.SkolsynkWorker ...`` (the Procfile's ``worker``).
"""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from common.dispatch import Dispatcher, object_change


class SkolsynkWorker(SimpleWorker):
    """``SimpleWorker`` that leases an object job's object before running it."""

    def execute_job(self, job: Job, queue: Queue) -> Any:
        change = object_change(job.func_name, job.args)
        if change is not None:
            Dispatcher(self.connection).take_lease(change)
        return super().execute_job(job, queue)
