"""Changes in Microsoft 365 reach the portal through change notifications alone: the sandbox
delivers them to the listener under gunicorn, RQ workers apply them. No reconcile runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from common.graph import sds
from common.state.dispatch import Dispatcher
from tests.fixtures.live import LiveWorld, wait_for

pytestmark = pytest.mark.slow  # the live stack: the listener under gunicorn and rq workers


def classic_class(world: LiveWorld) -> dict[str, Any]:
    """A class SDS created the classic way, with its school id."""
    return next(
        g
        for g in world.microsoft.graph.groups()
        if g.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_SECTION
        and g.get(sds.SCHOOL_ID)
        and world.portal_group(g["id"]) is not None
    )


def members_of(world: LiveWorld, class_id: str) -> set[str]:
    group = world.portal_group(class_id)
    assert group is not None
    by_id = {u["id"]: u["externalId"] for u in world.portal.users()}
    return {by_id[m] for m in group["members"]}


def test_user_lifecycle_reaches_the_portal_through_notifications_alone(live_world) -> None:
    world: LiveWorld = live_world()
    first_run = world.services.runs.last(world.tenant_id)
    graph = world.microsoft.graph
    cls = classic_class(world)

    student = graph.create_student("Saga", "Öhman", school_id=cls[sds.SCHOOL_ID], grade="7")
    graph.add_member(cls["id"], student["id"])
    created = world.wait_user(
        student["id"], lambda u: u["active"], "the new student is in the portal"
    )
    assert created["userName"] == student["mail"]
    wait_for(lambda: student["id"] in members_of(world, cls["id"]), what="she is in her class")

    graph.rename_user(student["id"], "Saga", "Åkerlund")
    renamed = world.wait_user(
        student["id"], lambda u: u["familyName"] == "Åkerlund", "the new name is in the portal"
    )
    assert renamed["id"] == created["id"]

    graph.delete_user(student["id"])
    world.wait_user(
        student["id"], lambda u: not u["active"], "the soft-deleted student is inactive"
    )

    graph.restore(student["id"])
    restored = world.wait_user(
        student["id"], lambda u: u["active"], "the restored student is active"
    )
    assert restored["id"] == created["id"]

    graph.delete_user(student["id"])
    world.wait_user(student["id"], lambda u: not u["active"], "deactivated again")
    graph.purge(student["id"])
    wait_for(lambda: world.portal_user(student["id"]) is None, what="the purged student is gone")

    assert world.services.runs.last(world.tenant_id) == first_run  # no reconcile ran
    assert_structured_worker_logs(world, student["id"])


def assert_structured_worker_logs(world: LiveWorld, object_id: str) -> None:
    """Every worker log line is a JSON event; job lines carry job, tenant and object ids; no
    secret, token or client state is ever written."""
    lines = [
        line
        for path in sorted(world.stack.workdir.glob("worker-*.log"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    events = [json.loads(line) for line in lines]
    synced = [
        e for e in events if e.get("event") == "user synced" and e.get("object_id") == object_id
    ]
    assert synced
    assert all(e["tenant"] == world.tenant_id and e["job_id"] for e in synced)
    text = "\n".join(lines)
    for secret in (
        world.stack.env["SKOLSYNK_CLIENT_SECRET"],
        world.stack.env["SKOLSYNK_SECRET_KEY"],
        world.portal.token,
    ):
        assert secret not in text


def test_class_membership_and_deletion_reach_the_portal_through_notifications_alone(
    live_world,
) -> None:
    world: LiveWorld = live_world()
    graph = world.microsoft.graph
    cls = classic_class(world)
    other = next(
        g
        for g in world.microsoft.graph.groups()
        if g.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_SECTION
        and g["id"] != cls["id"]
        and world.portal_group(g["id"]) is not None
    )
    mover = next(iter(members_of(world, other["id"]) - members_of(world, cls["id"])))

    graph.add_member(cls["id"], mover)
    wait_for(lambda: mover in members_of(world, cls["id"]), what="the added member is in the class")

    graph.remove_member(cls["id"], mover)
    wait_for(lambda: mover not in members_of(world, cls["id"]), what="the removed member is out")

    graph.delete_group(cls["id"])
    wait_for(lambda: world.portal_group(cls["id"]) is None, what="the deleted class is gone")
    assert world.portal_user(mover) is not None  # members stay


def test_a_worker_killed_mid_job_does_not_lose_the_change_nor_duplicate_it(live_world) -> None:
    world: LiveWorld = live_world()
    stack = world.stack
    cls = classic_class(world)
    # slow portal writes, so that the job is caught in the middle of its work
    world.portal_server.set_knobs(world.portal.name, latency_ms=1500)
    student = world.microsoft.graph.create_student(
        "Ebba", "Lindqvist", school_id=cls[sds.SCHOOL_ID]
    )
    wait_for(
        lambda: _running(stack, student["id"]), timeout=15, what="a worker has started her job"
    )
    for worker in list(stack.workers):
        worker.signal(signal.SIGKILL)
        assert worker.process is not None
        worker.process.wait(timeout=10)
    stack.workers.clear()
    world.portal_server.set_knobs(world.portal.name, latency_ms=0)
    stack.start_worker()
    stack.start_worker()

    world.wait_user(student["id"], lambda u: u["active"], "the change lands after the crash")
    same = [u for u in world.portal.users() if u["userName"].lower() == student["mail"].lower()]
    assert len(same) == 1


def test_scheduled_rechecks_do_not_wait_for_the_scheduler_of_a_killed_worker(live_world) -> None:
    """The worker whose rq scheduler holds rq's lock is killed: the lock lapses only after rq's
    heartbeat TTL (about a minute; here made an hour, so that only our recovery can move the
    jobs). A purge's re-checks are scheduled jobs, and still run: the user leaves the portal."""
    import redis
    from rq.scheduler import RQScheduler

    world: LiveWorld = live_world()
    stack = world.stack
    cls = classic_class(world)
    student = next(iter(members_of(world, cls["id"])))
    client = redis.Redis.from_url(stack.redis_url)
    try:
        lock = RQScheduler.get_locking_key("live")
        wait_for(lambda: client.exists(lock), what="a worker's rq scheduler holds rq's lock")
        for worker in list(stack.workers):
            worker.signal(signal.SIGKILL)
            assert worker.process is not None
            worker.process.wait(timeout=10)
        stack.workers.clear()
        assert client.pexpire(lock, 3_600_000), "the killed worker's scheduler held rq's lock"
        stack.start_worker()
        stack.start_worker()

        world.microsoft.graph.delete_user(student)
        world.microsoft.graph.purge(student)
        # each of the three re-checks may wait a recovery interval and the grace
        wait_for(lambda: world.portal_user(student) is None, timeout=90, what="she is gone")
        assert client.exists(lock)  # rq's scheduler never came back: the recovery moved them
    finally:
        client.close()


def _running(stack: Any, object_id: str) -> bool:
    """Whether a worker is running the sync job of this object right now."""
    import redis
    from rq import Worker
    from rq.serializers import JSONSerializer

    connection = redis.Redis.from_url(stack.redis_url)
    try:
        for worker in Worker.all(connection=connection, serializer=JSONSerializer):
            job = worker.get_current_job()
            if job is not None and object_id in [str(a) for a in job.args]:
                return True
        return False
    finally:
        connection.close()


def readme_rq_enqueue_line() -> str:
    """The one ``rq enqueue`` line the README gives for a reconcile by hand."""
    readme = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text()
    (line,) = [ln.strip() for ln in readme.splitlines() if ln.strip().startswith("rq enqueue")]
    return line


def test_dropped_notifications_are_repaired_by_the_readme_rq_enqueue_reconcile(
    live_world,
) -> None:
    world: LiveWorld = live_world()
    cls = classic_class(world)
    world.graph_sandbox.set_knobs(world.tenant_id, drop_notification_share=1.0)
    student = world.microsoft.graph.create_student("Tuva", "Åström", school_id=cls[sds.SCHOOL_ID])
    # the sandbox drops (and counts) each item when the change is made: none is ever sent
    counters = world.graph_sandbox.counters()["tenants"][world.tenant_id]["notifications"]
    assert counters["dropped"] >= 1
    assert world.portal_user(student["id"]) is None

    line = readme_rq_enqueue_line().replace("TENANT_ID", world.tenant_id)
    subprocess.run(
        ["bash", "-c", line],
        # the README's line names `rq` as an installed command: this venv's, as installed
        env={
            **os.environ,
            "REDIS_URL": world.stack.redis_url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        check=True,
        capture_output=True,
        timeout=60,
    )

    world.wait_user(student["id"], lambda u: u["active"], "the reconcile created the student")
    last = world.services.runs.last(world.tenant_id)
    assert last is not None and last.outcome == "ok" and last.why == "reconcile"


def test_a_subscription_removed_behind_our_back_is_recreated_and_a_reconcile_catches_up(
    live_world,
) -> None:
    world: LiveWorld = live_world()
    graph = world.services.graph(world.tenant_id)
    cls = classic_class(world)
    users_subscription = next(
        s for s in graph.list_subscriptions() if s["resource"].lower() == "/users"
    )
    graph.delete_subscription(users_subscription["id"])
    missed = world.microsoft.graph.create_student("Liv", "Ödman", school_id=cls[sds.SCHOOL_ID])
    # "nothing arrives" needs time to pass: long past the second the live path takes
    time.sleep(1)
    assert world.portal_user(missed["id"]) is None

    Dispatcher(world.services.redis).enqueue_renewal(world.tenant_id, why="test")

    world.wait_user(missed["id"], lambda u: u["active"], "the catch-up reconcile created her")
    listed = {s["resource"].lower() for s in graph.list_subscriptions()}
    assert listed == {"/users", "/groups"}
    # and notifications flow again through the new subscription
    later = world.microsoft.graph.create_student("Alva", "Ek", school_id=cls[sds.SCHOOL_ID])
    world.wait_user(later["id"], lambda u: u["active"], "a later student arrives by notification")


def test_redis_outage_is_answered_503_and_graphs_retry_delivers_once_it_is_back(
    live_world, redis_server
) -> None:
    world: LiveWorld = live_world()
    cls = classic_class(world)
    client = redis_server.client()
    # a persistent Redis restarts with its data: save, then stop
    client.shutdown(save=True)
    client.close()
    assert redis_server.process is not None and redis_server.process.process is not None
    redis_server.process.process.wait(timeout=10)
    try:
        started = time.monotonic()
        answer = requests.post(
            f"{world.stack.listener_url}/graph/notifications",
            json={
                "value": [
                    {
                        "subscriptionId": "6f1a6d1e-0000-4000-8000-000000000001",
                        "changeType": "updated",
                        "clientState": "whatever",
                        "tenantId": world.tenant_id,
                        "resource": "Users/6f1a6d1e-0000-4000-8000-000000000002",
                        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
                        "resourceData": {
                            "@odata.type": "#Microsoft.Graph.User",
                            "@odata.id": "Users/6f1a6d1e-0000-4000-8000-000000000002",
                            "id": "6f1a6d1e-0000-4000-8000-000000000002",
                            "organizationId": world.tenant_id,
                        },
                    }
                ]
            },
            timeout=10,
        )
        assert answer.status_code == 503
        assert time.monotonic() - started < 3

        student = world.microsoft.graph.create_student(
            "Nova", "Sjöberg", school_id=cls[sds.SCHOOL_ID]
        )
        wait_for(
            lambda: (
                world.graph_sandbox.counters()["tenants"][world.tenant_id]["notifications"][
                    "failed_attempts"
                ]
                > 0
            ),
            what="Graph's delivery was refused while Redis is away",
        )
    finally:
        redis_server.start()
    world.wait_user(
        student["id"], lambda u: u["active"], "Graph's retry delivered and the change landed"
    )
