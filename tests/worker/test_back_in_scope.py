"""A person who leaves scope and comes back without any class hearing of it (SDS takes her
role away and gives it back: Microsoft 365 notifies only the user) is back in her classes in
the portal by the real-time path alone, as a full reconcile would have her: her own job finds
the classes she is a member or owner of (``/users/{id}/memberOf``, ``/ownedObjects``) and
queues those whose portal group lacks her."""

from __future__ import annotations

import pytest

from common.graph import sds
from common.sync import engine
from tests.fixtures.live import LiveWorld, wait_for
from tests.worker.test_paths_agree import TENANT_SIZE, settle
from tests.worker.test_realtime import classic_class

pytestmark = pytest.mark.slow


def _members(world: LiveWorld, class_id: str) -> set[str]:
    return set((world.portal_group(class_id) or {}).get("members", ()))


def test_a_student_and_an_owning_teacher_come_back_into_their_class_without_a_class_change(
    live_world,
) -> None:
    world: LiveWorld = live_world(generate=TENANT_SIZE, seed=13)
    graph = world.microsoft.graph
    cls = classic_class(world)
    school = cls[sds.SCHOOL_ID]
    student = graph.create_student("Ylva", "Åter", school_id=school)
    teacher = graph.create_teacher("Tor", "Ägare", school_id=school)
    graph.add_member(cls["id"], student["id"])
    graph.add_owner(cls["id"], teacher["id"])  # owner only: listed by ownedObjects
    people = {p["id"]: p for p in (student, teacher)}
    accounts = {uid: world.wait_user(uid, lambda u: u["active"], "synced")["id"] for uid in people}
    wait_for(lambda: set(accounts.values()) <= _members(world, cls["id"]), what="both in the class")
    roles = {student["id"]: sds.OBJECT_TYPE_STUDENT, teacher["id"]: sds.OBJECT_TYPE_TEACHER}

    # SDS takes the roles away: out of scope, out of the class (their own jobs)
    for uid in people:
        graph.patch(f"/users/{uid}", json={sds.OBJECT_TYPE: None}).raise_for_status()
    for uid in people:
        world.wait_user(uid, lambda u: not u["active"], "out of scope")
    wait_for(
        lambda: not set(accounts.values()) & _members(world, cls["id"]), what="out of the class"
    )
    settle(world)

    # and gives them back: nothing tells the class
    for uid, role in roles.items():
        graph.patch(f"/users/{uid}", json={sds.OBJECT_TYPE: role}).raise_for_status()
    for uid in people:
        world.wait_user(uid, lambda u: u["active"], "back in scope")
    wait_for(lambda: set(accounts.values()) <= _members(world, cls["id"]), what="back in the class")
    settle(world)
    view = engine.preview(world.services, world.tenant_id)
    assert [f"{a.kind} {a.label}: {a.reason}" for a in view.plan.actions] == []
