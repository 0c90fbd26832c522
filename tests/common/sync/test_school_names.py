"""What SDS calls a school reaches the portal, and the reference portal's pages show it.

Against the reference portal with its school extension declared (``schoolNames`` beside the
ids, ``schoolName`` on classes) and without it (knob ``no_school_extension``: the enterprise
``organization`` holds the first school's name), for classic SDS and SDS v2.1 loads. Writes are
counted by a proxy in front of the portal; what arrived is read from the portal directly and
checked against what Graph's education API says each person's and class's schools are called.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from common.portal.learning import forget_servers
from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_GROUP_SCHEMA, SCHOOL_USER_SCHEMA
from common.state.runs import RunReport
from common.sync import engine
from common.sync.services import Services
from tests.conftest import SDS_SAMPLES
from tests.fixtures.engine import environment, registered_services
from tests.fixtures.independent_scim import CountingProxy
from tests.fixtures.portal import PortalOrg, PortalServer

pytestmark = pytest.mark.slow

LOADS = {"classic": ("sds-classic", "classic-25"), "v2.1": ("sds-v2.1", "v2.1")}


@dataclass
class World:
    services: Services
    microsoft: Any
    org: PortalOrg
    proxy: CountingProxy
    page_url: str
    extension: bool

    def reconcile(self) -> RunReport:
        report = engine.reconcile_tenant(self.services, str(self.microsoft.id))
        assert report.outcome == "ok", (report.message, report.failed)
        return report

    def resources(self, endpoint: str) -> list[dict[str, Any]]:
        body = self.org.scim.get(f"/{endpoint}", params={"count": 1000}).json()
        return [r for r in body.get("Resources", []) if r.get("externalId")]

    def names_in_graph(self, path: str) -> list[str]:
        """What Graph's education API calls the schools at ``path``, sorted."""
        return sorted(s["displayName"] for s in self.microsoft.graph.all_pages(path))


@pytest.fixture(params=[(load, mode) for load in LOADS for mode in ("extension", "none")])
def world(
    request: pytest.FixtureRequest, graph_sandbox: Any, portal_server: PortalServer, redis_url: str
) -> Iterator[World]:
    load, mode = request.param
    forget_servers()
    fmt, folder = LOADS[load]
    microsoft = graph_sandbox.new_tenant(load=[{"format": fmt, "path": str(SDS_SAMPLES / folder)}])
    org = portal_server.new_organisation()
    if mode == "none":
        portal_server.set_knobs(org.name, no_school_extension=1.0)
    proxy = CountingProxy(org.scim_url)

    @dataclass
    class Proxied:
        scim_url: str
        token: str

    services = registered_services(
        environment(graph_sandbox.info, redis_url),
        microsoft,
        Proxied(proxy.url, org.token),
        name=f"Skola {microsoft.name}",
    )
    yield World(
        services, microsoft, org, proxy, f"{portal_server.url}/{org.name}/", mode == "extension"
    )
    proxy.stop()
    graph_sandbox.reset()
    portal_server.reset()
    services.redis.close()
    services.graph_session.close()
    services.portal_session.close()
    forget_servers()


class _Rows(HTMLParser):
    """The cells of each ``<tr data-id>`` of a page's tables, by table id and row id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, list[str]]] = {}
        self._table = self._row = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id") or ""
            self.rows[self._table] = {}
        elif tag == "tr" and found.get("data-id"):
            self._row = found["data-id"] or ""
            self.rows[self._table][self._row] = []
        elif tag == "td" and self._row:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[self._table][self._row].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_rows(world: World) -> dict[str, dict[str, list[str]]]:
    response = requests.get(world.page_url, timeout=30)
    assert response.status_code == 200
    parser = _Rows()
    parser.feed(response.text)
    return parser.rows


def test_school_names_reach_the_portal_and_its_pages(world: World) -> None:
    first = world.reconcile()
    assert first.written > 0
    users, groups = world.resources("Users"), world.resources("Groups")
    assert users and groups
    rows = page_rows(world)

    for user in users:
        names = world.names_in_graph(f"/education/users/{user['externalId']}/schools")
        assert names, user["userName"]
        if world.extension:
            school = user[SCHOOL_USER_SCHEMA]
            assert school["schoolNames"] == names
            assert set(school["schoolNames"]).isdisjoint(school["schools"])  # names, not ids
        else:
            assert SCHOOL_USER_SCHEMA not in user["schemas"]
            assert user[ENTERPRISE_USER_SCHEMA]["organization"] == names[0]
        # the page: the "Skola" column reads the names (the first one where only it came)
        shown = rows["user-table"][user["id"]][4]
        assert shown == (", ".join(names) if world.extension else names[0])

    for group in groups:
        names = world.names_in_graph(f"/education/classes/{group['externalId']}/schools")
        shown = rows["group-table"][group["id"]][2]
        if world.extension:
            assert len(names) == 1
            assert group[SCHOOL_GROUP_SCHEMA]["schoolName"] == names[0]
            assert shown == names[0]
        else:
            assert SCHOOL_GROUP_SCHEMA not in group["schemas"]  # no home: nothing sent
            assert shown == ""

    # a second run writes nothing
    before = world.proxy.writes()
    second = world.reconcile()
    assert (second.written, world.proxy.writes() - before) == (0, 0)

    # real time: an existing person's job names her schools as the full read did (no write);
    # a new student whose school only the classic attribute names is read by that school's id
    # (one more Graph request) and gets its name
    graph = world.microsoft.graph
    someone = users[0]
    report = engine.sync_user(
        world.services, str(world.microsoft.id), someone["externalId"], why="test"
    )
    assert (report.outcome, report.written) == ("ok", 0)
    school = graph.all_pages(f"/education/users/{someone['externalId']}/schools")[0]
    newcomer = graph.create_student("Saga", "Öhman", school_id=school["externalId"])
    report = engine.sync_user(world.services, str(world.microsoft.id), newcomer["id"], why="test")
    assert (report.outcome, report.written) == ("ok", 1)
    arrived = next(u for u in world.resources("Users") if u["externalId"] == newcomer["id"])
    if world.extension:
        assert arrived[SCHOOL_USER_SCHEMA]["schoolNames"] == [school["displayName"]]
    else:
        assert arrived[ENTERPRISE_USER_SCHEMA]["organization"] == school["displayName"]
    before = world.proxy.writes()
    last = world.reconcile()
    assert (last.written, world.proxy.writes() - before) == (0, 0)
