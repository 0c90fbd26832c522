"""The client's fallbacks against a small strict SCIM server that does what some real ones do:
declares little or nothing, takes only ``eq`` filters, ignores paging, refuses one attribute,
holds a userName for another account, or changes what it declares."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from common.errors import ConflictError, PortalRequestError, PortalUnavailable
from common.http import RetryPolicy, Transport, build_session
from common.model import Role
from common.portal.client import ScimPortal
from common.portal.learning import forget_servers
from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_USER_SCHEMA, USER_SCHEMA
from common.state.portal_memory import PortalMemory

_EQ = re.compile(r'^(userName|externalId|emails\.value) eq "(.*)"$')


class Strict:
    """The server's state and habits (one per test)."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.declare_school = False
        self.discovery = True
        self.ignore_paging = False
        self.refuse_paths: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path and query as sent)

    def types(self) -> dict[str, Any]:
        extensions = [{"schema": ENTERPRISE_USER_SCHEMA}]
        if self.declare_school:
            extensions.append({"schema": SCHOOL_USER_SCHEMA})
        return {
            "Resources": [
                {
                    "name": "User",
                    "endpoint": "/Users",
                    "schema": USER_SCHEMA,
                    "schemaExtensions": extensions,
                },
                {
                    "name": "Group",
                    "endpoint": "/Groups",
                    "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
                },
            ]
        }

    def answer(self, request: Request) -> Response:
        """The server's answer to ``request`` (pytest-httpserver calls it, one at a time)."""
        self.requests.append((request.method, request.environ["RAW_URI"]))
        tail = request.path.removeprefix("/v2/")
        if request.method == "GET":
            return self.read(tail, request.args)
        if request.method == "POST":
            return self.create(request.get_json(force=True))
        if request.method == "PATCH":
            return self.patch(tail.split("/", 1)[1], request.get_json(force=True)["Operations"])
        return _answer(405, {"status": "405"})

    def read(self, tail: str, query: Mapping[str, str]) -> Response:
        if tail in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
            if not self.discovery or tail == "Schemas":
                return _answer(404, {"status": "404"})
            return _answer(200, self.types() if tail == "ResourceTypes" else {})
        if tail.startswith("Users/"):
            return _answer(200, self.users[tail.split("/", 1)[1]])
        found = list(self.users.values())
        if "filter" in query:
            match = _EQ.match(query["filter"])
            if match is None:
                return _refuse(400, "invalidFilter", "only attr eq value")
            attr, value = match.groups()
            found = [u for u in found if _value(u, attr).lower() == value.lower()]
        start, count = int(query.get("startIndex", 1)), int(query.get("count", 100))
        page = found[:2] if self.ignore_paging else found[start - 1 : start - 1 + count]
        return _answer(200, {"totalResults": len(found), "Resources": page})

    def create(self, user: dict[str, Any]) -> Response:
        if any(u["userName"].lower() == user["userName"].lower() for u in self.users.values()):
            return _refuse(409, "uniqueness", "userName taken")
        if SCHOOL_USER_SCHEMA in user.get("schemas", []) and not self.declare_school:
            return _refuse(400, "invalidSyntax", "undeclared schema")
        for path in self.refuse_paths & set(user):
            return _refuse(400, "invalidValue", f"{path} is not one of ours")
        user["id"] = uuid.uuid4().hex
        self.users[user["id"]] = user
        return _answer(201, user)

    def patch(self, rid: str, operations: list[dict[str, Any]]) -> Response:
        for op in operations:
            if op["path"] in self.refuse_paths:
                return _refuse(400, "invalidValue", f"{op['path']} cannot be changed")
            if op["path"].startswith(SCHOOL_USER_SCHEMA) and not self.declare_school:
                return _refuse(400, "invalidPath", f"unknown {op['path']}")
        user = self.users[rid]
        for op in operations:
            target, _, leaf = op["path"].rpartition(".")
            holder = user.setdefault(target, {}) if target else user
            holder[leaf] = op.get("value")
        return _answer(200, user)


def _answer(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/scim+json")


def _refuse(status: int, scim_type: str, detail: str) -> Response:
    return _answer(status, {"status": str(status), "scimType": scim_type, "detail": detail})


def _value(user: dict[str, Any], attr: str) -> str:
    if attr == "emails.value":
        return " ".join(e["value"] for e in user.get("emails", []))
    return str(user.get(attr) or "")


#: ``serving(strict)``: on entering, a client for that server
Serving = Callable[[Strict], AbstractContextManager[ScimPortal]]


@pytest.fixture
def strict() -> Strict:
    return Strict()


@pytest.fixture
def serving(httpserver: HTTPServer) -> Iterator[Serving]:
    """Serve a ``Strict`` at ``/v2`` of pytest-httpserver; a client for it on entering."""

    @contextmanager
    def serve(state: Strict) -> Iterator[ScimPortal]:
        forget_servers()  # every test reuses the server's address: nothing learnt carries over
        httpserver.expect_request(re.compile("^/v2/")).respond_with_handler(state.answer)
        transport = Transport(
            build_session(),
            service="the strict portal",
            unavailable=PortalUnavailable,
            policy=RetryPolicy(attempts=2, base_delay_seconds=0.001),
        )
        try:
            yield ScimPortal(transport, httpserver.url_for("/v2"), "t")
        finally:
            forget_servers()

    yield serve
    httpserver.check()  # a request outside /v2, or a handler that broke, fails the test


ANNA = {
    "userName": "Anna@S.se",
    "email": "Anna@S.se",
    "externalId": "e-anna",
    "active": True,
    "displayName": "Anna",
    "role": "student",
    "schools": ("s1", "s2"),
    "grade": "7",
}


def test_a_server_without_discovery_gets_the_rfc_attributes_and_says_so(
    strict: Strict, serving: Serving
) -> None:
    strict.discovery = False
    with serving(strict) as portal:
        user = portal.create_user(ANNA)
        notes = portal.capabilities().notes

    stored = strict.users[user.id]
    assert stored["schemas"] == [USER_SCHEMA]
    assert stored["userType"] == "Student"
    assert "grade" not in json.dumps(stored)
    assert len(notes) == 3 and all("assumed" in n for n in notes)
    assert user.role is Role.STUDENT


def test_eq_only_filters_fall_back_and_the_fallback_is_remembered(
    strict: Strict, serving: Serving
) -> None:
    with serving(strict) as portal:
        portal.create_user(ANNA)
        first = portal.find_users(external_ids=["e-anna", "e-bo"], emails=["anna@s.se"])
        refused = sum(1 for m, p in strict.requests if "or" in p and m == "GET")
        again = portal.find_users(external_ids=["e-anna", "e-bo"], emails=["ANNA@S.SE"])

    assert [u.external_id for u in first] == ["e-anna"] == [u.external_id for u in again]
    assert refused >= 1
    # after learning, no filter with "or" or brackets is sent again
    later = strict.requests[-6:]
    assert all("+or+" not in p and "%5B" not in p for _, p in later)


def test_a_listing_from_a_server_that_ignores_paging_is_an_error_naming_the_server(
    strict: Strict,
    serving: Serving,
) -> None:
    strict.ignore_paging = True
    with serving(strict) as portal:
        for n in range(5):
            portal.create_user({"userName": f"u{n}@s.se", "externalId": f"e{n}"})
        with pytest.raises(PortalRequestError, match="ignores startIndex"):
            list(portal.list_users())


def test_one_refused_attribute_blocks_nothing_else_and_is_not_sent_again(
    strict: Strict, serving: Serving
) -> None:
    strict.refuse_paths = {"userType"}
    with serving(strict) as portal:
        user = portal.create_user({"userName": "a@s.se", "externalId": "e-a"})
        portal.update_user(user.id, {"displayName": "Anna B", "role": "teacher"})
        patches_after_first = sum(1 for m, _ in strict.requests if m == "PATCH")
        portal.update_user(user.id, {"displayName": "Anna C", "role": "teacher"})
        patches = sum(1 for m, _ in strict.requests if m == "PATCH")
        refusals = list(portal.refusals)

    assert strict.users[user.id]["displayName"] == "Anna C"
    assert patches_after_first == 2  # refused once, then the rest went through
    assert patches == 3  # the next update no longer sends the refused attribute
    assert len(refusals) == 1 and "role" in refusals[0]


def test_a_create_refused_for_one_attribute_is_made_without_it(
    strict: Strict, serving: Serving
) -> None:
    strict.refuse_paths = {"userType"}
    with serving(strict) as portal:
        user = portal.create_user(ANNA)
        refusals = list(portal.refusals)

    assert strict.users[user.id]["externalId"] == "e-anna"
    assert "userType" not in strict.users[user.id]
    assert len(refusals) == 1 and "role" in refusals[0]


def test_a_user_name_held_by_a_managed_account_is_a_collision(
    strict: Strict, serving: Serving
) -> None:
    with serving(strict) as portal:
        portal.create_user({"userName": "a@s.se", "externalId": "e-someone-else"})
        with pytest.raises(ConflictError, match="collision") as caught:
            portal.create_user({"userName": "A@S.se", "externalId": "e-a"})

    assert caught.value.code == "uniqueness"
    assert len(strict.users) == 1


def test_a_server_that_stops_declaring_an_extension_is_learnt_again(
    strict: Strict, serving: Serving
) -> None:
    strict.declare_school = True
    with serving(strict) as portal:
        user = portal.create_user(ANNA)
        assert SCHOOL_USER_SCHEMA in strict.users[user.id]["schemas"]
        strict.declare_school = False  # the vendor changed the server

        updated = portal.update_user(user.id, {"role": "teacher", "displayName": "A"})
        second = portal.create_user({**ANNA, "userName": "b@s.se", "externalId": "e-b"})

    assert updated.display_name == "A"
    assert strict.users[user.id]["userType"] == "Teacher"
    assert SCHOOL_USER_SCHEMA not in strict.users[second.id]["schemas"]


def test_a_mapping_can_send_an_attribute_elsewhere_or_nowhere(
    strict: Strict, serving: Serving
) -> None:
    forget_servers()
    with serving(strict) as base:
        transport, url = base.transport, base.base_url
        portal = ScimPortal(
            transport,
            url,
            "t",
            overrides={"role": f"{ENTERPRISE_USER_SCHEMA}:department", "schools": "off"},
        )
        user = portal.create_user(ANNA)
        table = dict(portal.mapping().table())

    stored = strict.users[user.id]
    assert stored[ENTERPRISE_USER_SCHEMA] == {"department": "student"}
    assert "userType" not in stored
    assert table["schools"] == "not sent"


def test_a_refused_attribute_is_not_tried_again_by_a_later_process(
    strict: Strict, serving: Serving, redis_client: Any
) -> None:
    strict.refuse_paths = {"userType"}
    memory = PortalMemory(redis_client)
    with serving(strict) as first:
        later = ScimPortal(first.transport, first.base_url, "t", memory=memory)
        user = later.create_user({"userName": "a@s.se", "externalId": "e-a"})
        later.update_user(user.id, {"role": "teacher", "displayName": "A"})
        forget_servers()  # a new process: only the memory in Redis is left
        again = ScimPortal(first.transport, first.base_url, "t", memory=memory)
        before = len(strict.requests)
        again.update_user(user.id, {"role": "teacher", "displayName": "B"})
        sent = [p for m, p in strict.requests[before:] if m == "PATCH"]
        fidelity = again.get_user(user.id).fidelity

    assert len(sent) == 1  # no second refusal
    assert again.refusals == []
    assert strict.users[user.id]["displayName"] == "B"
    assert fidelity is not None and "role" in fidelity.unheld  # the planner stops planning it


@pytest.mark.slow
def test_a_reconcile_that_cannot_read_the_portal_whole_removes_nothing(
    strict: Strict, serving: Serving, graph_sandbox: Any, redis_url: str
) -> None:
    from common.sync import engine
    from tests.conftest import SDS_SAMPLES
    from tests.fixtures.engine import environment, registered_services

    strict.ignore_paging = True
    # accounts the sync manages whose Microsoft objects are gone: a full read would remove them
    for n in range(5):
        strict.users[f"u{n}"] = {"id": f"u{n}", "userName": f"gone{n}@s.se", "externalId": f"x{n}"}
    microsoft = graph_sandbox.new_tenant(
        load=[{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-25")}]
    )
    with serving(strict) as portal:
        target = type("Target", (), {"scim_url": portal.base_url, "token": "t"})()
        services = registered_services(
            environment(graph_sandbox.info, redis_url), microsoft, target, name="Skola"
        )
        try:
            with pytest.raises(PortalRequestError, match="ignores startIndex"):
                engine.reconcile_tenant(services, microsoft.id)
            last = services.runs.last(microsoft.id)
        finally:
            services.redis.close()
            graph_sandbox.reset()

    assert [m for m, _ in strict.requests if m != "GET"] == []
    assert last is not None and last.outcome == "failed" and "startIndex" in last.message
