"""Portal objects sharing an ``externalId`` are duplicates the sync repairs (never ignores):
made here by hand through the reference portal's SCIM API, as any other client could."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from common.model import (
    ALWAYS_HELD_KINDS,
    ActionKind,
    MicrosoftState,
    MsClass,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
    link_key,
)
from common.state.links import Links
from common.sync import engine
from common.sync.planner import make_plan
from tests.common.sync.test_planner import in_portal, ms_user
from tests.fixtures.engine import SyncWorld


def make_copies(world: SyncWorld) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A second portal user and a second group carrying the ids of synced ones; returns the
    synced user, the synced group and the portal ids of the two copies."""
    group = next(g for g in world.portal.groups() if g["managed"] and g["members"])
    users = {u["id"]: u for u in world.portal.users()}
    user = users[sorted(group["members"])[0]]
    scim = world.portal.scim
    copy = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "kopia." + user["userName"],
            "externalId": user["externalId"],
            "name": {"givenName": "Kopia", "familyName": "Kopia"},
            "active": True,
        },
    )
    assert copy.status_code == 201, copy.text
    twin = scim.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": group["displayName"],
            "externalId": group["externalId"],
            "members": [{"value": copy.json()["id"]}],
        },
    )
    assert twin.status_code == 201, twin.text
    # the copy is also put into the synced class, where it does not belong
    added = scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": copy.json()["id"]}]}
            ],
        },
    )
    assert added.status_code in (200, 204), added.text
    return user, group, copy.json()["id"], twin.json()["id"]


@pytest.mark.slow  # four command-line runs
def test_duplicates_made_by_hand_are_reported_held_and_removed_once_approved(make_world) -> None:
    world: SyncWorld = make_world(sample="classic-25")
    assert world.reconcile().outcome == "ok"
    user, group, copy, twin = make_copies(world)
    licence = world.portal.assign_licence("Matte 7", user_id=user["id"])
    class_licence = world.portal.assign_licence("Svenska 7", group_id=group["id"])

    shown = world.cli("preview", world.tenant_id, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    duplicates = json.loads(shown.stdout)["duplicates"]
    assert sorted((d["kind"], d["kept_portal_id"]) for d in duplicates) == sorted(
        [("group", group["id"]), ("user", user["id"])]
    )
    assert [len(d["duplicate_portal_ids"]) for d in duplicates] == [1, 1]
    text = world.cli("preview", world.tenant_id)
    assert "DUPLICATES (2)" in text.stdout and copy in text.stdout
    rows = list(
        csv.reader(io.StringIO(world.cli("preview", world.tenant_id, "--format", "csv").stdout))
    )
    assert sorted(r[1] for r in rows if r[0] == "duplicate") == ["group", "user"]

    report = world.reconcile()

    # the copies wait for a person; the kept class loses the copy it should not hold
    assert (report.outcome, report.held, report.duplicates) == ("held", 2, 2)
    assert report.applied == {"remove_members": 1}
    held = world.services.safety.held(world.tenant_id)
    assert sorted(h.action.portal_id for h in held) == sorted([copy, twin])
    kept = next(g for g in world.portal.groups() if g["id"] == group["id"])
    assert copy not in kept["members"] and user["id"] in kept["members"]
    assert len(world.portal.users()) == 25  # nothing deleted yet
    status = world.cli("status", world.tenant_id, "--format", "json")
    assert json.loads(status.stdout)["last_reconcile"]["duplicates"] == 2

    taken, approval = engine.approve_held(world.services, world.tenant_id)

    assert len(taken) == 2 and approval.applied == {
        "delete_duplicate_user": 1,
        "delete_duplicate_group": 1,
    }
    ids = {u["id"] for u in world.portal.users()}
    assert copy not in ids and user["id"] in ids
    assert [g["id"] for g in world.portal.groups() if g["externalId"] == group["externalId"]] == [
        group["id"]
    ]
    licences = {lic["id"]: lic for lic in world.portal.licences()}
    assert licences[licence["id"]] == licence and licences[class_licence["id"]] == class_licence
    again = world.reconcile()
    assert (again.written, again.duplicates, again.held) == (0, 0, 0)


# --- which copy is kept, and which copies go at once ------------------------------------------


def _state_with_copies(
    links: dict[str, str], created: frozenset[str] = frozenset()
) -> tuple[MicrosoftState, PortalState]:
    """A student and her class, each in the portal twice: ``u-old``/``g-old`` made first,
    ``u-new``/``g-new`` later; ``g-old`` holds both user copies, ``g-new`` the newer one."""
    student = ms_user("e1")
    cls = MsClass(id="c1", display_name="7A", school_id=None, member_ids=frozenset({"e1"}))

    def user(pid: str, created_at: str) -> PortalUser:
        return in_portal(student, pid, created=created_at)

    def group(pid: str, created_at: str, *members: str) -> PortalGroup:
        return PortalGroup(
            id=pid,
            display_name="7A",
            external_id="c1",
            member_ids=frozenset(members),
            created=created_at,
        )

    portal = PortalState(
        users=(user("u-old", "2026-01-01T00:00:00Z"), user("u-new", "2026-02-01T00:00:00Z")),
        groups=(
            group("g-old", "2026-01-01T00:00:00Z", "u-old", "u-new"),
            group("g-new", "2026-02-01T00:00:00Z", "u-new"),
        ),
        links=links,
        created_ids=created,
    )
    return MicrosoftState(users={"e1": student}, classes={"c1": cls}), portal


def _kept_and_deleted(plan: Plan) -> tuple[list[tuple[str, str]], list[str]]:
    kept = sorted((d.kind, d.kept_id) for d in plan.duplicates)
    deleted = sorted(str(a.portal_id) for a in plan.of_kind(*ALWAYS_HELD_KINDS))
    return kept, deleted


def test_without_a_link_the_oldest_copy_is_kept() -> None:
    microsoft, portal = _state_with_copies({})
    plan = make_plan(microsoft, portal)
    assert _kept_and_deleted(plan) == ([("group", "g-old"), ("user", "u-old")], ["g-new", "u-new"])
    # the copy leaves the kept class; nothing else changes
    (removal,) = plan.of_kind(ActionKind.REMOVE_MEMBERS)
    assert (removal.portal_id, removal.portal_member_ids) == ("g-old", ("u-new",))
    assert plan.own_copy_ids == frozenset()


def test_the_copy_the_sync_linked_before_is_kept_though_it_is_younger() -> None:
    links = {link_key("user", "e1"): "u-new", link_key("group", "c1"): "g-new"}
    microsoft, portal = _state_with_copies(links)
    plan = make_plan(microsoft, portal)
    assert _kept_and_deleted(plan) == ([("group", "g-new"), ("user", "u-new")], ["g-old", "u-old"])
    assert [a.kind for a in plan.of_kind(ActionKind.REMOVE_MEMBERS, ActionKind.ADD_MEMBERS)] == []
    # held, since a copy someone else made may carry licences
    assert plan.own_copy_ids == frozenset()
    assert all("held for approval" in a.reason for a in plan.of_kind(*ALWAYS_HELD_KINDS))


def test_copies_this_run_created_are_its_own_and_go_at_once() -> None:
    links = {link_key("user", "e1"): "u-new", link_key("group", "c1"): "g-new"}
    microsoft, portal = _state_with_copies(links, created=frozenset({"g-old", "g-new"}))
    plan = make_plan(microsoft, portal)
    assert plan.own_copy_ids == frozenset({"g-old"})  # the user copy is someone else's
    reasons = {a.portal_id: a.reason for a in plan.of_kind(*ALWAYS_HELD_KINDS)}
    assert "deleted at once" in reasons["g-old"] and "held for approval" in reasons["u-old"]


@pytest.mark.slow  # two first syncs of a sample
def test_links_are_recorded_for_what_the_sync_creates_and_the_linked_copy_is_kept(
    make_world,
) -> None:
    world: SyncWorld = make_world(sample="classic-25")
    assert world.reconcile().outcome == "ok"
    links = Links(world.services.redis).all(world.tenant_id)
    expected = {
        link_key("user" if "userName" in o else "group", o["externalId"]): o["id"]
        for o in [*world.portal.users(), *world.portal.groups()]
        if o.get("externalId")
    }
    assert links == expected and len(links) > 25

    # a copy of a synced user and of its class, made by another client; then the sync's link
    # of the class is moved onto the younger copy (as if the sync had made that one)
    user, group, copy, twin = make_copies(world)
    Links(world.services.redis).update(
        world.tenant_id, [("group", group["externalId"], twin, True)]
    )

    report = world.reconcile()

    assert (report.outcome, report.held, report.duplicates, report.failed) == ("held", 2, 2, [])
    held = world.services.safety.held(world.tenant_id)
    assert sorted(h.action.portal_id for h in held) == sorted([copy, group["id"]])
    # the linked copy is the class now: the student in, the user copy out
    kept = next(g for g in world.portal.groups() if g["id"] == twin)
    original = next(g for g in world.portal.groups() if g["id"] == group["id"])
    assert set(kept["members"]) == set(original["members"]) - {copy}
    assert user["id"] in kept["members"] and copy not in kept["members"]
    again = world.reconcile()
    assert (again.written, again.duplicates, again.failed) == (0, 2, [])
