"""The whole sync against independent SCIM 2.0 servers exactly as they ship (nothing of ours
declared, only a bearer token): ``scim2-server`` (Python) and SCIMMY (JavaScript); and against
the reference portal in each mode that mimics them (no school extension, ``eq``-only filters,
e-mails in lower case, case-sensitive filters, paging ignored) and in all of them at once.

Writes are counted by a proxy in front of each server (what the server received), and what the
sync made is read from the server directly, never through the client under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from common.graph import sds
from common.portal.learning import forget_servers
from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_USER_SCHEMA
from common.state.runs import RunReport
from common.sync import engine
from common.sync.services import Services
from tests.conftest import SDS_SAMPLES
from tests.fixtures.engine import environment, registered_services
from tests.fixtures.independent_scim import WRITE_METHODS, IndependentPortal

pytestmark = pytest.mark.slow

#: the reference portal in the modes that keep its school extension declared
SCHOOL_EXTENSION_DECLARED = {
    f"reference:{m}"
    for m in ("eq_only_filters", "lowercase_emails", "case_sensitive_filters", "ignore_paging")
}
#: classic-25: students and teachers, classes, memberships as SDS creates them
USERS, CLASSES, MEMBERSHIPS = 24, 2, 46


@dataclass
class World:
    services: Services
    microsoft: Any
    portal: IndependentPortal

    @property
    def tenant_id(self) -> str:
        return str(self.microsoft.id)

    def reconcile(self) -> RunReport:
        report = engine.reconcile_tenant(self.services, self.tenant_id)
        assert report.outcome == "ok", (report.message, report.failed)
        return report

    def users(self) -> dict[str, dict[str, Any]]:
        """Server users by externalId (unmanaged ones by their lower-case userName)."""
        return {
            u.get("externalId") or u["userName"].lower(): u for u in self.portal.resources("Users")
        }

    def groups(self) -> dict[str, dict[str, Any]]:
        return {g.get("externalId") or g["id"]: g for g in self.portal.resources("Groups")}


@pytest.fixture
def world(graph_sandbox: Any, redis_url: str, sync_portal: IndependentPortal) -> Iterator[World]:
    forget_servers()
    microsoft = graph_sandbox.new_tenant(
        load=[{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-25")}]
    )
    services = registered_services(
        environment(graph_sandbox.info, redis_url),
        microsoft,
        sync_portal,
        name=f"Skola {microsoft.name}",
    )
    yield World(services, microsoft, sync_portal)
    graph_sandbox.reset()
    services.redis.close()
    services.graph_session.close()
    services.portal_session.close()
    forget_servers()


def _students(world: World) -> list[dict[str, Any]]:
    return sorted(
        (
            u
            for u in world.microsoft.graph.users()
            if u.get("mail") and u.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_STUDENT
        ),
        key=lambda u: u["mail"],
    )


def test_the_whole_sync_against_an_independent_server_as_it_ships(world: World) -> None:
    graph = world.microsoft.graph
    proxy = world.portal.proxy
    students = _students(world)
    by_hand, renamed, leaver = students[0], students[1], students[2]
    # an account made by hand in the portal, its e-mail in another letter case
    existing = world.portal.create_user(
        {"userName": by_hand["mail"].swapcase(), "emails": [{"value": by_hand["mail"].swapcase()}]}
    )

    # first reconcile: everything arrives, the hand-made account is adopted, not twinned
    first = world.reconcile()
    users = world.users()
    assert first.applied.get("adopt_user") == 1
    assert first.applied.get("create_user") == USERS - 1
    assert len(users) == USERS and all(u.get("externalId") for u in users.values())
    assert users[by_hand["id"]]["id"] == existing["id"]
    groups = world.groups()
    assert len(groups) == CLASSES
    assert sum(len(g.get("members") or []) for g in groups.values()) == MEMBERSHIPS
    # only what the server declares: without the school extension role goes to core userType
    # and the school to the enterprise organization (where declared), nothing of ours is sent
    sample = users[renamed["id"]]
    school_name = next(
        s["displayName"]
        for s in graph.all_pages("/education/schools")
        if s["externalId"] == renamed[sds.SCHOOL_ID]
    )
    if world.portal.server in SCHOOL_EXTENSION_DECLARED:
        assert sample[SCHOOL_USER_SCHEMA]["role"] == "student"
        assert sample[SCHOOL_USER_SCHEMA]["schoolNames"] == [school_name]
    else:
        assert sample["userType"] == "Student"
        assert SCHOOL_USER_SCHEMA not in sample["schemas"]
        if world.portal.server != "scimmy":
            # what SDS calls the school, not its id
            assert sample[ENTERPRISE_USER_SCHEMA]["organization"] == school_name

    # a second run writes nothing, whatever the server did to letter case
    before = proxy.writes()
    second = world.reconcile()
    assert (second.written, proxy.writes() - before) == (0, 0)

    # rename: the same account, the new name
    graph.rename_user(renamed["id"], "Ändrad", "Namnsson")
    world.reconcile()
    after_rename = world.users()[renamed["id"]]
    assert after_rename["id"] == users[renamed["id"]]["id"]
    assert after_rename["name"]["familyName"] == "Namnsson"

    # soft delete -> active=false; restore -> the same account active again
    graph.delete_user(leaver["id"])
    world.reconcile()
    assert world.users()[leaver["id"]]["active"] is False
    graph.restore(leaver["id"])
    world.reconcile()
    restored = world.users()[leaver["id"]]
    assert (restored["id"], restored["active"]) == (users[leaver["id"]]["id"], True)

    # a class deleted in Microsoft 365 leaves the portal; its members stay
    doomed_id, doomed = sorted(groups.items())[0]
    graph.delete_group(doomed_id)
    world.reconcile()
    assert doomed_id not in world.groups()
    assert {m["value"] for m in doomed["members"]} <= {u["id"] for u in world.users().values()}

    # real time: a new student, one whose e-mail a hand-made account holds in another case,
    # and a membership change
    kept_id = next(i for i in groups if i != doomed_id)
    cls = next(g for g in graph.groups() if g["id"] == kept_id)
    newcomer = graph.create_student("Saga", "Öhman", school_id=cls[sds.SCHOOL_ID])
    held = graph.create_student(
        "Tuva", "Åström", school_id=cls[sds.SCHOOL_ID], mail=f"Tuva.Astrom@{graph.domain}"
    )
    holder = world.portal.create_user(
        {"userName": held["mail"].swapcase(), "emails": [{"value": held["mail"].swapcase()}]}
    )
    for person in (newcomer, held):
        report = engine.sync_user(world.services, world.tenant_id, person["id"], why="test")
        assert report.outcome == "ok", (report.message, report.failed)
    now = world.users()
    assert now[newcomer["id"]]["userName"] == newcomer["mail"]
    assert now[held["id"]]["id"] == holder["id"]  # adopted, no twin
    assert held["mail"].lower() not in now
    graph.add_member(kept_id, newcomer["id"])
    report = engine.sync_group(world.services, world.tenant_id, kept_id, why="test")
    assert report.outcome == "ok", (report.message, report.failed)
    members = {m["value"] for m in world.groups()[kept_id]["members"]}
    assert now[newcomer["id"]]["id"] in members

    # and a reconcile after all that writes nothing
    before = proxy.writes()
    last = world.reconcile()
    assert (last.written, proxy.writes() - before) == (0, 0)
    assert len(world.users()) == USERS + 2
    # the server refused no write; each refused filter form (or-chains, then brackets) was
    # tried once, then never again
    assert [k for k in proxy.counts if k[0] in WRITE_METHODS and k[1] >= 400] == []
    assert proxy.counts[("GET", 400)] <= 2
