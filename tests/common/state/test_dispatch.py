"""The dispatcher on a real Redis: JSON jobs by dotted name, coalescing, guards, the schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from common.errors import QueueUnavailable
from common.state.connections import connect_listener_redis
from common.state.dispatch import (
    FAILURE_TTL_SECONDS,
    LIVE_QUEUE,
    OBJECT_JOB_TIMEOUT_SECONDS,
    OBJECT_RETRY_INTERVALS_SECONDS,
    PENDING_TTL_SECONDS,
    RECONCILE_QUEUE,
    RECONCILE_TIMEOUT_SECONDS,
    RESULT_TTL_SECONDS,
    Change,
    Dispatcher,
    object_change,
    pending_key,
)
from common.state.guards import (
    INFLIGHT_KEY,
    OBJECT_LEASE_SECONDS,
    RECHECK_DELAYS_SECONDS,
    SCHEDULED_GRACE_SECONDS,
    JobGuards,
)
from tests.conftest import ROOT
from tests.fixtures.processes import free_port
from tests.fixtures.redis import RedisServer
from worker.cron import SCHEDULE, build_scheduler

TENANT = "6c1f8a3e-2b7d-4e59-9a10-3f5c2d8e7b41"
OTHER_TENANT = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
USER = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
GROUP = "9d1c7a52-8b4e-4f6a-b3d2-7e5f1a0c9b84"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def dispatcher(client: redis.Redis) -> Dispatcher:
    return Dispatcher(client)


@pytest.fixture
def guards(client: redis.Redis) -> JobGuards:
    return JobGuards(client)


def jobs(client: redis.Redis, queue_name: str = LIVE_QUEUE) -> list[Job]:
    return Queue(queue_name, connection=client, serializer=JSONSerializer).get_jobs()


def calls(client: redis.Redis, queue_name: str = LIVE_QUEUE) -> list[tuple[str, list[str]]]:
    return [(job.func_name, list(job.args)) for job in jobs(client, queue_name)]


def test_change_is_queued_as_a_json_job_by_dotted_name_with_bounded_retries(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER) is True
    [job] = jobs(client)
    assert (job.func_name, job.args) == ("worker.jobs.sync_user", [TENANT, USER])
    assert job.origin == LIVE_QUEUE
    assert job.timeout == OBJECT_JOB_TIMEOUT_SECONDS
    assert job.retries_left == len(OBJECT_RETRY_INTERVALS_SECONDS)
    assert job.retry_intervals == list(OBJECT_RETRY_INTERVALS_SECONDS)
    assert job.failure_ttl == FAILURE_TTL_SECONDS
    # JSON, not pickle: rq's default (pickle) reader cannot read it
    with pytest.raises(DeserializationError):
        _ = Job.fetch(job.id, connection=client).func_name


def test_group_change_is_queued_as_sync_group(dispatcher: Dispatcher, client: redis.Redis) -> None:
    assert dispatcher.enqueue_change(TENANT, "group", GROUP)
    assert calls(client) == [("worker.jobs.sync_group", [TENANT, GROUP])]


def test_second_change_for_a_waiting_object_is_folded_into_its_job(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER) is True
    assert dispatcher.enqueue_change(TENANT, "user", USER) is False
    assert dispatcher.enqueue_change(TENANT, "user", USER.upper()) is False
    assert calls(client) == [("worker.jobs.sync_user", [TENANT, USER])]


def test_same_object_id_in_another_tenant_or_kind_gets_its_own_job(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    results = dispatcher.enqueue_changes(
        [
            Change(TENANT, "user", USER),
            Change(OTHER_TENANT, "user", USER),
            Change(TENANT, "group", USER),
            Change(TENANT, "user", USER),
        ]
    )
    assert results == [True, True, True, False]
    assert len(jobs(client)) == 3


def test_pending_marker_expires_so_a_lost_job_cannot_block_its_object_for_long(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    dispatcher.enqueue_change(TENANT, "user", USER)
    ttl = client.ttl(pending_key(TENANT, "user", USER))
    assert 0 < ttl <= PENDING_TTL_SECONDS


def test_change_during_a_run_queues_exactly_one_more_run(
    dispatcher: Dispatcher, client: redis.Redis, guards: JobGuards
) -> None:
    dispatcher.enqueue_change(TENANT, "user", USER)
    client.delete("rq:queue:live")  # a worker took the job
    with guards.object_job(TENANT, "user", USER) as turn:
        assert turn.acquired
        assert [dispatcher.enqueue_change(TENANT, "user", USER) for _ in range(3)] == [
            True,
            False,
            False,
        ]
    assert calls(client) == [("worker.jobs.sync_user", [TENANT, USER])]


def test_run_of_a_busy_object_goes_back_on_the_queue_shortly_and_keeps_folding_changes(
    dispatcher: Dispatcher, client: redis.Redis, guards: JobGuards
) -> None:
    with guards.object_job(TENANT, "user", USER) as first:
        assert first.acquired
        with guards.object_job(TENANT, "user", USER) as second:
            assert not second.acquired
        # the requeued run is pending: further notifications fold into it
        assert dispatcher.enqueue_change(TENANT, "user", USER) is False
    live = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer)
    [job_id] = live.scheduled_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
    assert (job.func_name, job.args) == ("worker.jobs.sync_user", [TENANT, USER])
    assert calls(client) == []


def test_object_lock_is_released_when_the_run_fails(
    dispatcher: Dispatcher, guards: JobGuards
) -> None:
    with pytest.raises(RuntimeError), guards.object_job(TENANT, "user", USER):
        raise RuntimeError("the sync failed")
    with guards.object_job(TENANT, "user", USER) as turn:
        assert turn.acquired


def test_reconcile_is_not_queued_twice_while_one_is_pending(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_reconcile(TENANT, why="hourly") is True
    assert dispatcher.enqueue_reconcile(TENANT, why="subscription recreated") is False
    assert dispatcher.enqueue_reconcile(OTHER_TENANT, why="hourly") is True
    [first, _] = jobs(client, RECONCILE_QUEUE)
    assert (first.func_name, first.args) == ("worker.jobs.full_reconcile", [TENANT])
    assert first.meta["why"] == "hourly"
    assert first.timeout == RECONCILE_TIMEOUT_SECONDS


def test_renewal_is_queued_once_for_repeated_lifecycle_events(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_renewal(TENANT, why="reauthorizationRequired") is True
    assert dispatcher.enqueue_renewal(TENANT, why="reauthorizationRequired") is False
    assert calls(client, RECONCILE_QUEUE) == [("worker.jobs.renew_subscriptions", [TENANT])]


def test_queue_depths_count_waiting_jobs_per_queue(dispatcher: Dispatcher) -> None:
    dispatcher.enqueue_change(TENANT, "user", USER)
    dispatcher.enqueue_change(TENANT, "group", GROUP)
    dispatcher.enqueue_reconcile(TENANT, why="test")
    assert dispatcher.queue_depths() == {
        "live": 2,
        "live.failed": 0,
        "reconcile": 1,
        "reconcile.failed": 0,
    }


def test_unreachable_redis_raises_queue_unavailable_within_a_second() -> None:
    dispatcher = Dispatcher(connect_listener_redis(f"redis://127.0.0.1:{free_port()}/0"))
    guards = JobGuards(dispatcher.redis)
    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        dispatcher.enqueue_change(TENANT, "user", USER)
    with pytest.raises(QueueUnavailable):
        dispatcher.enqueue_reconcile(TENANT, why="test")
    with pytest.raises(QueueUnavailable), guards.object_job(TENANT, "user", USER):
        pass
    assert time.monotonic() - started < 1.0


def test_documented_rq_enqueue_line_queues_a_reconcile_the_workers_can_read(
    client: redis.Redis, redis_url: str
) -> None:
    rq = Path(sys.executable).with_name("rq")
    line = [
        str(rq),
        "enqueue",
        "--url",
        redis_url,
        "--serializer",
        "rq.serializers.JSONSerializer",
        "--queue",
        "reconcile",
        "worker.jobs.full_reconcile",
        TENANT,
    ]
    subprocess.run(line, check=True, capture_output=True, timeout=30)
    assert calls(client, RECONCILE_QUEUE) == [("worker.jobs.full_reconcile", [TENANT])]


def test_schedule_queues_hourly_reconcile_renewals_every_six_hours_and_recovery_often(
    client: redis.Redis,
) -> None:
    scheduler = build_scheduler(client)
    entries = {job.func_name: job.cron or job.interval for job in scheduler.get_jobs()}
    assert entries == {
        "worker.jobs.reconcile_all": "0 * * * *",
        "worker.jobs.renew_all_subscriptions": "30 */6 * * *",
        "worker.jobs.recover_abandoned": 5,
    }
    assert len(SCHEDULE) == 3
    for cron_job in scheduler.get_jobs():
        cron_job.enqueue(client)
    assert sorted(calls(client, RECONCILE_QUEUE)) == [
        ("worker.jobs.reconcile_all", []),
        ("worker.jobs.renew_all_subscriptions", []),
    ]
    assert calls(client, LIVE_QUEUE) == [("worker.jobs.recover_abandoned", [])]


def test_change_is_queued_after_redis_forgot_the_script(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER)
    client.script_flush()  # as after a Redis restart
    assert dispatcher.enqueue_change(TENANT, "group", GROUP)
    assert sorted(calls(client)) == [
        ("worker.jobs.sync_group", [TENANT, GROUP]),
        ("worker.jobs.sync_user", [TENANT, USER]),
    ]


def test_a_run_lost_with_its_worker_is_queued_again_once_its_lease_runs_out(
    dispatcher: Dispatcher, client: redis.Redis, guards: JobGuards
) -> None:
    # a run starts and its worker dies: the block is never left, the lease never renewed
    guard = guards.object_job("t1", "user", "u1")
    assert guard.__enter__()
    assert client.zcard(INFLIGHT_KEY) == 1
    assert guards.recover_abandoned() == []  # the lease still holds

    later = time.time() + OBJECT_LEASE_SECONDS + 1
    recovered = guards.recover_abandoned(now=later)
    assert [(c.tenant_id, c.kind, c.object_id) for c in recovered] == [("t1", "user", "u1")]
    assert guards.recover_abandoned(now=later) == []  # claimed once
    queued = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer).jobs
    assert [(j.func_name, list(j.args)) for j in queued] == [
        ("worker.jobs.sync_user", ["t1", "u1"])
    ]
    guard.__exit__(None, None, None)


def test_a_finished_run_leaves_nothing_to_recover(
    dispatcher: Dispatcher, client: redis.Redis, guards: JobGuards
) -> None:
    with guards.object_job("t1", "group", "g1") as turn:
        assert turn
    assert client.zcard(INFLIGHT_KEY) == 0
    assert guards.recover_abandoned(now=time.time() + 3600) == []


def test_scheduled_jobs_a_dead_scheduler_left_late_are_queued_once_by_the_recovery(
    client: redis.Redis, guards: JobGuards
) -> None:
    # a re-check and a reconcile scheduled; rq's scheduler (in a worker that died) moves nothing
    guards.schedule_recheck(Change("t1", "user", "u1"), 1)
    reconcile = Queue(RECONCILE_QUEUE, connection=client, serializer=JSONSerializer)
    later = reconcile.enqueue_in(timedelta(seconds=60), "worker.jobs.full_reconcile", args=("t1",))
    live = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer)
    assert guards.release_overdue() == []  # due in half a second: rq's scheduler has time

    moment = time.time() + RECHECK_DELAYS_SECONDS[0] + SCHEDULED_GRACE_SECONDS + 1
    with ThreadPoolExecutor(4) as pool:
        moved = list(pool.map(lambda _: guards.release_overdue(now=moment), range(4)))
    assert sorted(len(m) for m in moved) == [0, 0, 0, 1]  # one caller moved it, once
    assert [(j.func_name, list(j.args), j.kwargs) for j in live.jobs] == [
        ("worker.jobs.sync_user", ["t1", "u1"], {"recheck": 1})
    ]
    # the reconcile is not late yet: it stays scheduled
    assert reconcile.jobs == []
    assert later.id in ScheduledJobRegistry(RECONCILE_QUEUE, connection=client).get_job_ids()


def test_concurrent_changes_sent_together_each_get_their_own_answer(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    objects = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(40)]
    # every object twice, from 16 threads at once: one True per object, one job per object
    work = [(kind, object_id) for object_id in objects for kind in ("user", "user")]
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda item: (item[1], dispatcher.enqueue_change(TENANT, *item)), work)
        )
    assert sorted(o for o, new in answers if new) == objects
    assert len(jobs(client)) == len(objects)


def test_threads_that_end_give_their_connection_back_to_the_pool(redis_url: str) -> None:
    # each thread holds a connection while it lives; a pool of two serves six threads in turn
    client = redis.Redis.from_url(redis_url, max_connections=2)
    dispatcher = Dispatcher(client)
    for i in range(6):
        with ThreadPoolExecutor(1) as pool:
            change = (TENANT, "user", f"{i:08d}-0000-4000-8000-000000000000")
            assert pool.submit(dispatcher.enqueue_change, *change).result()
    assert len(jobs(client)) == 6
    client.close()


def test_concurrent_changes_all_fail_cleanly_when_redis_is_unreachable() -> None:
    dispatcher = Dispatcher(connect_listener_redis(f"redis://127.0.0.1:{free_port()}/0"))

    def attempt(i: int) -> str:
        try:
            dispatcher.enqueue_change(TENANT, "user", f"{i:08d}-0000-4000-8000-000000000000")
        except QueueUnavailable:
            return "unavailable"
        return "queued"

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(attempt, range(32))) == {"unavailable"}


def test_a_job_lost_right_after_it_left_the_queue_is_queued_again(
    dispatcher: Dispatcher, client: redis.Redis, guards: JobGuards
) -> None:
    # the listener queued the job (pending marker set); the worker took it and its lease, then
    # died before the run cleared the marker
    assert dispatcher.enqueue_change("t1", "user", "u2")
    Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer).empty()
    change = object_change("worker.jobs.sync_user", ["t1", "u2"])
    assert change == Change("t1", "user", "u2")
    guards.take_lease(change)

    recovered = guards.recover_abandoned(now=time.time() + OBJECT_LEASE_SECONDS + 1)

    assert recovered == [change]
    queued = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer).jobs
    assert [(j.func_name, list(j.args)) for j in queued] == [
        ("worker.jobs.sync_user", ["t1", "u2"])
    ]


def test_other_jobs_take_no_lease() -> None:
    assert object_change("worker.jobs.full_reconcile", ["t1"]) is None
    assert object_change("worker.jobs.recover_abandoned", []) is None


def test_object_job_is_written_exactly_as_rq_enqueue_writes_it(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER)
    [ours] = jobs(client)
    theirs = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer).enqueue(
        "worker.jobs.sync_user",
        args=(TENANT, USER),
        job_timeout=OBJECT_JOB_TIMEOUT_SECONDS,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        retry=Retry(
            max=len(OBJECT_RETRY_INTERVALS_SECONDS), interval=list(OBJECT_RETRY_INTERVALS_SECONDS)
        ),
    )
    written = {job.id: client.hgetall(f"rq:job:{job.id}") for job in (ours, theirs)}
    # rq compresses the job's data and reads it either way; ours is left uncompressed
    assert written[ours.id][b"data"] == zlib.decompress(written[theirs.id][b"data"])
    differ = {b"created_at", b"enqueued_at", b"data"}
    assert {k: v for k, v in written[ours.id].items() if k not in differ} == {
        k: v for k, v in written[theirs.id].items() if k not in differ
    }
    assert Job.fetch(ours.id, connection=client, serializer=JSONSerializer).args == [TENANT, USER]
    assert written[ours.id].keys() == written[theirs.id].keys()
    ours_at = datetime.strptime(written[ours.id][b"enqueued_at"].decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(ours_at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)
    assert written[ours.id][b"created_at"] == written[ours.id][b"enqueued_at"]
    assert client.ttl(f"rq:job:{ours.id}") == client.ttl(f"rq:job:{theirs.id}") == -1
    assert client.lrange("rq:queue:live", 0, -1) == [ours.id.encode(), theirs.id.encode()]
    assert client.smembers("rq:queues") == {b"rq:queue:live"}


@pytest.mark.slow
def test_a_real_rq_worker_runs_a_queued_change_and_retries_it_as_configured(
    dispatcher: Dispatcher, client: redis.Redis, redis_url: str
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER)
    [job] = jobs(client)
    # without Skolsynk's configuration the job itself fails when it runs: that failure shows
    # the worker read the job, imported worker.jobs.sync_user, ran it, and applied the retries
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SKOLSYNK_") and k != "REDIS_URL"
    }
    rq = Path(sys.executable).with_name("rq")
    worker = [
        str(rq),
        "worker",
        "--burst",
        "--worker-class",
        "worker.runner.SkolsynkWorker",
        "--serializer",
        "rq.serializers.JSONSerializer",
        "--url",
        redis_url,
        LIVE_QUEUE,
    ]
    done = subprocess.run(
        worker, check=True, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )

    # rq keeps no result of a run it retries; the worker's log shows the job's own failure
    assert "in sync_user\\n" in done.stderr and "ConfigError" in done.stderr
    ran = Job.fetch(job.id, connection=client, serializer=JSONSerializer)
    assert ran.get_status() == JobStatus.SCHEDULED
    assert ran.retries_left == len(OBJECT_RETRY_INTERVALS_SECONDS) - 1
    assert job.id in ScheduledJobRegistry(LIVE_QUEUE, connection=client).get_job_ids()
    retry_at = ScheduledJobRegistry(LIVE_QUEUE, connection=client).get_scheduled_time(job.id)
    first_interval = timedelta(seconds=OBJECT_RETRY_INTERVALS_SECONDS[0])
    assert datetime.now(UTC) < retry_at <= datetime.now(UTC) + first_interval


def test_changes_are_queued_again_right_after_a_redis_restart(
    dispatcher: Dispatcher, redis_server: RedisServer
) -> None:
    assert dispatcher.enqueue_change(TENANT, "user", USER)
    # the dispatcher's connection is now stale, and the restarted Redis knows no script
    redis_server.stop()
    redis_server.start()
    assert dispatcher.enqueue_change(TENANT, "group", GROUP)
    fresh = redis_server.client()
    assert calls(fresh) == [("worker.jobs.sync_group", [TENANT, GROUP])]
    fresh.close()
