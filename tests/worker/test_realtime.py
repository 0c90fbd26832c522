"""Changes in Microsoft 365 reach the portal through change notifications alone: the sandbox
delivers them to the listener under gunicorn, RQ workers apply them. No reconcile runs."""

from __future__ import annotations

import signal
from typing import Any

from common import sds
from tests.fixtures.live import LiveWorld, wait_for


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
    wait_for(lambda: _busy_worker(stack), timeout=15, what="a worker has started the job")
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


def _busy_worker(stack: Any) -> bool:
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(stack.redis_url)
    try:
        return any(w.get_current_job_id() for w in Worker.all(connection=connection))
    finally:
        connection.close()
