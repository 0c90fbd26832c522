"""The per-tenant reconcile lease against a real Redis, and its hand-over with object runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from common.errors import AlreadyRunning
from common.state import leases
from common.state.dispatch import RECONCILE_QUEUE, Change, Dispatcher
from common.state.guards import JobGuards, reconcile_lock_key
from common.state.latency import received_at
from tests.conftest import ROOT

TENANT = "6c1f8a3e-2b7d-4e59-9a10-3f5c2d8e7b41"
OBJECT = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_a_second_reconcile_is_refused_naming_who_runs_it_and_since_when(
    client: redis.Redis,
) -> None:
    with leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="the scheduler"):
        with (
            pytest.raises(AlreadyRunning) as refused,
            leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"),
        ):
            pytest.fail("two reconciles of one tenant ran at once")
        message = str(refused.value)
        assert message.startswith("A reconcile of Lunds kommun is already running, started ")
        assert "UTC by the scheduler" in message
    # released at the end: the next one runs
    with leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"):
        assert leases.reconcile_running(client, TENANT)
    assert not leases.reconcile_running(client, TENANT)
    assert leases.holder(client, TENANT) is None


def test_no_reconcile_is_queued_while_one_runs_and_one_is_after(client: redis.Redis) -> None:
    dispatcher = Dispatcher(client)
    with leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"):
        assert dispatcher.enqueue_reconcile(TENANT, why="hourly") is False
    assert dispatcher.enqueue_reconcile(TENANT, why="after") is True
    queue = Queue(RECONCILE_QUEUE, connection=client, serializer=JSONSerializer)
    assert [(j.func_name, j.args) for j in queue.get_jobs()] == [
        ("worker.jobs.full_reconcile", [TENANT])
    ]


def test_an_object_run_waits_while_its_tenant_reconciles(client: redis.Redis) -> None:
    dispatcher = Dispatcher(client)
    guards = JobGuards(client)
    guards.take_lease(Change(TENANT, "user", OBJECT))  # as the worker does before the job
    with (
        leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"),
        guards.object_job(TENANT, "user", OBJECT) as turn,
    ):
        assert not turn.acquired
    # it went back on the queue for later, and the object is not left locked
    assert dispatcher.live.scheduled_job_registry.count == 1
    # nor taken for a lost run: recovery would start a second chain of the same job
    assert guards.recover_abandoned(now=time.time() + 3600) == []
    with guards.object_job(TENANT, "user", OBJECT) as turn:
        assert turn.acquired


def test_a_reconcile_waits_for_an_object_run_under_way(client: redis.Redis) -> None:
    guards = JobGuards(client)
    object_running = threading.Event()
    object_done = threading.Event()
    ended_at: list[float] = []

    def object_run() -> None:
        with guards.object_job(TENANT, "user", OBJECT) as turn:
            assert turn.acquired
            object_running.set()
            time.sleep(0.5)  # the run's work
            ended_at.append(time.monotonic())
        object_done.set()

    runner = threading.Thread(target=object_run)
    runner.start()
    assert object_running.wait(5)
    with leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"):
        entered = time.monotonic()
    runner.join()
    assert object_done.is_set()
    assert ended_at and entered >= ended_at[0]


@pytest.mark.slow
def test_the_lease_is_renewed_while_its_process_lives_and_lapses_when_it_dies(
    redis_url: str, client: redis.Redis
) -> None:
    holder = (
        "import sys, time, redis\n"
        "from common.state import leases\n"
        "leases.RECONCILE_LEASE_SECONDS = 2\n"
        "leases.RECONCILE_RENEW_SECONDS = 0.5\n"
        "c = redis.Redis.from_url(sys.argv[1])\n"
        "with leases.reconcile_lease(c, sys.argv[2], 'Lunds kommun', started_by='pid'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder, redis_url, TENANT],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        time.sleep(3)  # longer than the lease's TTL: only renewal keeps it
        assert client.exists(reconcile_lock_key(TENANT))
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 5
        while client.exists(reconcile_lock_key(TENANT)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.exists(reconcile_lock_key(TENANT)), "the lease outlived its process"
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    with leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"):
        pass


def test_a_run_queued_again_keeps_when_its_change_reached_skolsynk(client: redis.Redis) -> None:
    # the dashboard's latency counts from the notification, not from the job queued again
    guards = JobGuards(client)
    first_heard = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    guards.take_lease(Change(TENANT, "user", OBJECT))
    with (
        leases.reconcile_lease(client, TENANT, "Lunds kommun", started_by="anna"),
        guards.object_job(TENANT, "user", OBJECT, received_at=first_heard) as turn,
    ):
        assert not turn.acquired
    assert guards.schedule_recheck(Change(TENANT, "group", OBJECT), 1, received_at=first_heard)

    dispatcher = Dispatcher(client)
    scheduled = [
        Job.fetch(job_id, connection=client, serializer=JSONSerializer)
        for job_id in dispatcher.live.scheduled_job_registry.get_job_ids()
    ]
    assert sorted(job.func_name for job in scheduled) == [
        "worker.jobs.sync_group",
        "worker.jobs.sync_user",
    ]
    for job in scheduled:
        assert job.created_at is not None and job.created_at > first_heard
        assert received_at(job.meta, job.created_at) == first_heard
    # a job the listener queued carries nothing: its own creation is when the change came
    made = datetime(2026, 12, 2, 8, 1, tzinfo=UTC)
    assert received_at({}, made) == made
