"""The real-time path and the full reconcile are one rule set: random sequences of Microsoft 365
changes, made through the sandbox's Graph write API, reach the portal by change notifications
alone (listener under gunicorn, RQ workers); a full reconcile afterwards then writes nothing.
And the reverse: the changes reach the portal by a full reconcile alone (every notification
dropped); real-time jobs for every object afterwards then write nothing.

Seeded and bounded (a few examples of a few steps each), so the suite stays quick.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from common.graph import sds
from common.model import Scope
from common.state.dispatch import LIVE_QUEUE, Dispatcher
from common.state.store import KEY_PREFIX
from common.sync import engine
from tests.fixtures.live import LiveWorld, wait_for
from tests.worker.test_realtime import classic_class

pytestmark = pytest.mark.slow

#: a generated tenant this small keeps each example to a few seconds
TENANT_SIZE = 8
#: longer than the sandbox's first delivery retry (1 s), so a refused delivery is waited out
QUIET_SECONDS = 2.0
SETTLE_TIMEOUT_SECONDS = 60.0

NAMES = st.sampled_from(["Saga", "Ölund", "Åsa", "Émile", "Nguyễn", "Zoë", "Leo"])

SETTINGS = settings(
    max_examples=4,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,  # seeded: the same sequences every run
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each example costs a tenant
    suppress_health_check=list(HealthCheck),
)


def settle(world: LiveWorld) -> None:
    """Wait until the real-time path has nothing left to do for this tenant: every
    notification delivered, no job queued, running or scheduled, no object pending, and all of
    that unchanged for ``QUIET_SECONDS``."""
    client = redis.Redis.from_url(world.stack.redis_url)
    queue = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer)
    started = StartedJobRegistry(queue=queue)
    scheduled = ScheduledJobRegistry(queue=queue)
    pending = f"{KEY_PREFIX}pending:{world.tenant_id}:*"

    def delivered() -> Any:
        counts = world.graph_sandbox.counters()["tenants"].get(world.tenant_id, {})
        return counts.get("notifications", {})

    def idle() -> bool:
        return (
            queue.count == 0
            and started.count == 0
            and scheduled.count == 0
            and next(client.scan_iter(match=pending, count=1000), None) is None
        )

    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        last = None
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            now = (delivered(), idle())
            if now != last or not now[1]:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            time.sleep(0.1)
        raise AssertionError("the real-time path did not settle")
    finally:
        client.close()


def applied_since(world: LiveWorld, since: datetime) -> list[str]:
    """Portal writes recorded in the audit log since ``since``, as readable lines."""
    return [
        f"{e['kind']} {e.get('label', '')}: {e.get('reason', '')}"
        for e in world.services.audit.entries(world.tenant_id, since=since)
        if e["outcome"] == "applied"
    ]


class Changes(RuleBasedStateMachine):
    """Changes an administrator (or SDS) makes in Microsoft 365, one at a time, each on an
    object drawn from those the change applies to."""

    world: LiveWorld
    #: whether changes reach the portal by notifications (else only a reconcile brings them)
    realtime: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.graph = self.world.microsoft.graph
        sections = [
            g
            for g in self.graph.groups()
            if g.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_SECTION and g.get(sds.SCHOOL_ID)
        ]
        self.school = str(sections[0][sds.SCHOOL_ID])
        #: class id -> member ids, for classes not deleted
        self.members: dict[str, set[str]] = {
            g["id"]: {m["id"] for m in self.graph.all_pages(f"/groups/{g['id']}/members")}
            for g in sections[:2]
        }
        # a few people of those classes, so that changes to people and to classes meet
        in_classes = set().union(*self.members.values())
        people = [
            u
            for u in self.graph.users()
            if u.get(sds.OBJECT_TYPE) in (sds.OBJECT_TYPE_STUDENT, sds.OBJECT_TYPE_TEACHER)
            and u["id"] in in_classes
        ]
        #: user id -> enabled, for users not in the recycle bin
        self.live: dict[str, bool] = {
            u["id"]: bool(u.get("accountEnabled", True)) for u in people[:5]
        }
        #: students made in the sequence, whose SDS role is the classic attribute alone (the
        #: generated people also have an education role, which the Graph API cannot change)
        self.made: set[str] = set()
        self.binned: set[str] = set()  # users in the recycle bin
        self.mails = {u["id"]: u["mail"] for u in people}
        self.purged: dict[str, str] = {}  # purged user id -> its e-mail, free again
        self.every_user: set[str] = set(self.live)  # every user the sequence met, purged too
        self.every_class: set[str] = set(self.members)
        #: the tenant's last full reconcile before the changes (the one that built it)
        self.first_run = self.world.services.runs.last(self.world.tenant_id)

    def _live_user(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.live)), label="user")

    def _class(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.members)), label="class")

    # --- users ----------------------------------------------------------------------------

    @rule(given=NAMES, family=NAMES, data=st.data())
    def create_student(self, given: str, family: str, data: st.DataObject) -> None:
        student = self.graph.create_student(given, family, school_id=self.school, grade="8")
        self.mails[student["id"]] = student["mail"]
        self.made.add(student["id"])
        self.live[student["id"]] = True
        self.every_user.add(student["id"])
        if self.members and data.draw(st.booleans(), label="joins a class"):
            cls = self._class(data)
            self.graph.add_member(cls, student["id"])
            self.members[cls].add(student["id"])

    @rule(given=NAMES, family=NAMES)
    def create_student_with_a_portal_account(self, given: str, family: str) -> None:
        # an account made in the portal before (by the portal's own sign-up): adopted
        mail = f"{given.lower()}.{len(self.every_user)}.forut@{self.world.microsoft.domain}"
        self.world.portal.create_user(mail.upper(), given_name=given, family_name=family)
        student = self.graph.create_student(
            given, family, school_id=self.school, grade="9", mail=mail
        )
        self.mails[student["id"]] = mail
        self.made.add(student["id"])
        self.live[student["id"]] = True
        self.every_user.add(student["id"])

    @precondition(lambda self: self.purged)
    @rule(data=st.data())
    def recreate_purged(self, data: st.DataObject) -> None:
        # deleted for good and created again with the same e-mail: takes the account over
        gone = data.draw(st.sampled_from(sorted(self.purged)), label="purged user")
        mail = self.purged.pop(gone)
        student = self.graph.create_student("Åter", "Kommen", school_id=self.school, mail=mail)
        self.mails[student["id"]] = mail
        self.made.add(student["id"])
        self.live[student["id"]] = True
        self.every_user.add(student["id"])

    @precondition(lambda self: self.live)
    @rule(given=NAMES, family=NAMES, data=st.data())
    def rename(self, given: str, family: str, data: st.DataObject) -> None:
        self.graph.rename_user(self._live_user(data), given, family)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def enable_or_disable(self, data: st.DataObject) -> None:
        user = self._live_user(data)
        enabled = not self.live[user]
        self.graph.patch(f"/users/{user}", json={"accountEnabled": enabled}).raise_for_status()
        self.live[user] = enabled

    @precondition(lambda self: self.live.keys() & self.made and self.members)
    @rule(data=st.data())
    def leave_and_return_to_scope(self, data: st.DataObject) -> None:
        # SDS takes a student's role away and gives it back; Microsoft 365 tells only the
        # user, never her classes. She is in a class first (joining is told to the class); in
        # between, the real-time path has done what it does (nothing, when every notification
        # is dropped).
        user = data.draw(st.sampled_from(sorted(self.live.keys() & self.made)), label="user")
        if not any(user in ids for ids in self.members.values()):
            cls = self._class(data)
            self.graph.add_member(cls, user)
            self.members[cls].add(user)
        settle(self.world)
        self.graph.patch(f"/users/{user}", json={sds.OBJECT_TYPE: None}).raise_for_status()
        settle(self.world)
        student = sds.OBJECT_TYPE_STUDENT
        self.graph.patch(f"/users/{user}", json={sds.OBJECT_TYPE: student}).raise_for_status()
        if self.realtime:
            # checked here, before a later change to her classes would mend them
            settle(self.world)
            view = engine.preview(self.world.services, self.world.tenant_id)
            assert [f"{a.kind} {a.label}: {a.reason}" for a in view.plan.actions] == []

    @precondition(lambda self: self.live)
    @rule(local=st.sampled_from(["ny.adress", "bytt"]), data=st.data())
    def change_email(self, local: str, data: st.DataObject) -> None:
        user = self._live_user(data)
        mail = f"{local}.{user[:8]}@{self.world.microsoft.domain}"
        self.graph.patch(f"/users/{user}", json={"mail": mail}).raise_for_status()
        self.mails[user] = mail

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def soft_delete(self, data: st.DataObject) -> None:
        user = self._live_user(data)
        self.graph.delete_user(user)
        del self.live[user]
        self.binned.add(user)

    @precondition(lambda self: self.binned)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(sorted(self.binned)), label="user")
        self.graph.restore(user)
        self.binned.discard(user)
        self.live[user] = True

    @precondition(lambda self: self.binned)
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(sorted(self.binned)), label="user")
        self.graph.purge(user)
        self.binned.discard(user)
        self.purged[user] = self.mails[user]
        for ids in self.members.values():
            ids.discard(user)

    # --- classes --------------------------------------------------------------------------

    @precondition(lambda self: self.live and self.members)
    @rule(data=st.data())
    def join_or_leave(self, data: st.DataObject) -> None:
        user, cls = self._live_user(data), self._class(data)
        if user in self.members[cls]:
            self.graph.remove_member(cls, user)
            self.members[cls].discard(user)
        else:
            self.graph.add_member(cls, user)
            self.members[cls].add(user)

    @precondition(lambda self: self.members)
    @rule(name=st.sampled_from(["7A Matematik", "8B Svenska", "9C Ämnesval"]), data=st.data())
    def rename_class(self, name: str, data: st.DataObject) -> None:
        cls = self._class(data)
        self.graph.patch(f"/groups/{cls}", json={"displayName": name}).raise_for_status()

    @precondition(lambda self: len(self.members) > 1)
    @rule(data=st.data())
    def delete_class(self, data: st.DataObject) -> None:
        cls = self._class(data)
        self.graph.delete_group(cls)
        del self.members[cls]


def run_per_example(build: Any, check: Any, *, realtime: bool = True) -> int:
    """Run the machine, each example on a tenant of its own from ``build``; ``check`` at the
    end of each. Returns the number of examples run."""
    built: list[LiveWorld] = []

    class PerExample(Changes):
        def __init__(self) -> None:
            world = build(len(built))
            built.append(world)
            type(self).world = world
            super().__init__()

        def teardown(self) -> None:
            check(self)

    PerExample.realtime = realtime
    run_state_machine_as_test(PerExample, settings=SETTINGS)
    return len(built)


def test_changes_by_notification_alone_leave_nothing_for_a_full_reconcile(live_world) -> None:
    def build(n: int) -> LiveWorld:
        return live_world(generate=TENANT_SIZE, seed=11 + n)

    def check(machine: Changes) -> None:
        world = machine.world
        settle(world)
        assert world.services.runs.last(world.tenant_id) == machine.first_run  # none ran
        view = engine.preview(world.services, world.tenant_id)
        assert [f"{a.kind} {a.label}: {a.reason}" for a in view.plan.actions] == []
        mark = datetime.now(UTC)
        report = engine.reconcile_tenant(world.services, world.tenant_id)
        assert (report.portal_writes, report.held, report.skipped) == (0, 0, 0)
        assert applied_since(world, mark) == []

    assert run_per_example(build, check) >= SETTINGS.max_examples


def test_changes_by_full_reconcile_alone_leave_nothing_for_real_time_jobs(live_world) -> None:
    def build(n: int) -> LiveWorld:
        world = live_world(generate=TENANT_SIZE, seed=31 + n)
        # every change notification is lost: only the reconcile brings the changes over
        world.graph_sandbox.set_knobs(world.tenant_id, drop_notification_share=1.0)
        # a tenant this small may lose half its people in one sequence; the source-health gate
        # then rightly makes the reconcile skip removals (tests/common/sync pins that), which is
        # not what this test is about: the two paths deciding alike
        tenant = world.services.registry.get(world.tenant_id)
        world.services.registry.save(
            replace(tenant, thresholds=replace(tenant.thresholds, max_shrink_share=1.0))
        )
        return world

    def check(machine: Changes) -> None:
        world = machine.world
        world.graph_sandbox.set_knobs(world.tenant_id, drop_notification_share=0)
        report = engine.reconcile_tenant(world.services, world.tenant_id)
        assert report.outcome == "ok", report.message
        before = world.portal.snapshot()
        mark = datetime.now(UTC)
        dispatcher = Dispatcher(world.services.redis)
        for user in sorted(machine.every_user):
            dispatcher.enqueue_change(world.tenant_id, "user", user)
        for cls in sorted(machine.every_class):
            dispatcher.enqueue_change(world.tenant_id, "group", cls)
        settle(world)
        assert applied_since(world, mark) == []
        assert world.portal.snapshot() == before

    assert run_per_example(build, check, realtime=False) >= SETTINGS.max_examples


def test_a_disabled_member_stays_in_her_class_when_another_member_leaves(live_world) -> None:
    # the reported case: a class job (another student left) removed the disabled student,
    # the next reconcile added her back
    world: LiveWorld = live_world(generate=TENANT_SIZE, seed=7)
    graph = world.microsoft.graph
    cls = classic_class(world)
    disabled, leaver = (
        graph.create_student(given, "Berg", school_id=cls[sds.SCHOOL_ID])["id"]
        for given in ("Ines", "Ture")
    )
    for student in (disabled, leaver):
        graph.add_member(cls["id"], student)
    settle(world)
    graph.patch(f"/users/{disabled}", json={"accountEnabled": False}).raise_for_status()
    world.wait_user(disabled, lambda u: not u["active"], "her account is deactivated")
    portal_ids = {u["externalId"]: u["id"] for u in world.portal.users()}
    graph.remove_member(cls["id"], leaver)
    wait_for(
        lambda: portal_ids[leaver] not in (world.portal_group(cls["id"]) or {})["members"],
        what="the class job removed the student who left",
    )
    settle(world)
    group = world.portal_group(cls["id"])
    assert group is not None and portal_ids[disabled] in group["members"]
    view = engine.preview(world.services, world.tenant_id)
    assert [f"{a.kind} {a.label}: {a.reason}" for a in view.plan.actions] == []


def test_a_teacher_moved_out_of_scope_leaves_her_classes_by_her_own_job(live_world) -> None:
    # Microsoft 365 changes only the teacher (her school); her classes are not told
    world: LiveWorld = live_world(generate=TENANT_SIZE, seed=9)
    graph = world.microsoft.graph
    cls = classic_class(world)
    school = cls[sds.SCHOOL_ID]
    tenant = world.services.registry.get(world.tenant_id)
    world.services.registry.save(replace(tenant, scope=Scope(school_ids=frozenset({school}))))
    engine.reconcile_tenant(world.services, world.tenant_id)
    teacher = graph.create_teacher("Vera", "Flytt", school_id=school)
    graph.add_owner(cls["id"], teacher["id"])
    graph.add_member(cls["id"], teacher["id"])
    account = world.wait_user(teacher["id"], lambda u: u["active"], "the teacher is synced")
    wait_for(
        lambda: account["id"] in (world.portal_group(cls["id"]) or {}).get("members", ()),
        what="she is in her class",
    )

    graph.patch(f"/users/{teacher['id']}", json={sds.SCHOOL_ID: "Annan skola"}).raise_for_status()

    world.wait_user(teacher["id"], lambda u: not u["active"], "she is out of scope")
    wait_for(
        lambda: account["id"] not in (world.portal_group(cls["id"]) or {}).get("members", ()),
        what="she left the class in the portal",
    )
    settle(world)
    view = engine.preview(world.services, world.tenant_id)
    assert [f"{a.kind} {a.label}: {a.reason}" for a in view.plan.actions] == []
