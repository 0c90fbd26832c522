"""The client's fallbacks against a small strict SCIM server that does what some real ones do:
declares little or nothing, takes only ``eq`` filters, ignores paging, refuses one attribute,
holds a userName for another account, or changes what it declares."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from common.errors import ConflictError, PortalRequestError, PortalUnavailable
from common.http import RetryPolicy, Transport, build_session
from common.model import Role
from common.portal.client import ScimPortal, forget_servers
from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_USER_SCHEMA, USER_SCHEMA

_EQ = re.compile(r'^(userName|externalId|emails\.value) eq "(.*)"$')


class Strict:
    """The server's state and habits (one per test)."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.declare_school = False
        self.discovery = True
        self.ignore_paging = False
        self.refuse_paths: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

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


def _handler(state: Strict) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def answer(self, status: int, body: Any = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status: int, scim_type: str, detail: str) -> None:
            self.answer(status, {"status": str(status), "scimType": scim_type, "detail": detail})

        def body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            state.requests.append(("GET", self.path))
            tail = url.path.removeprefix("/v2/")
            if tail in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
                if not state.discovery or tail == "Schemas":
                    return self.answer(404, {"status": "404"})
                return self.answer(200, state.types() if tail == "ResourceTypes" else {})
            if tail.startswith("Users/"):
                return self.answer(200, state.users[tail.split("/", 1)[1]])
            found = list(state.users.values())
            if "filter" in query:
                match = _EQ.match(query["filter"])
                if match is None:
                    return self.refuse(400, "invalidFilter", "only attr eq value")
                attr, value = match.groups()
                found = [u for u in found if _value(u, attr).lower() == value.lower()]
            start, count = int(query.get("startIndex", 1)), int(query.get("count", 100))
            page = found[:2] if state.ignore_paging else found[start - 1 : start - 1 + count]
            self.answer(200, {"totalResults": len(found), "Resources": page})

        def do_POST(self) -> None:
            state.requests.append(("POST", self.path))
            user = self.body()
            if any(u["userName"].lower() == user["userName"].lower() for u in state.users.values()):
                return self.refuse(409, "uniqueness", "userName taken")
            if SCHOOL_USER_SCHEMA in user.get("schemas", []) and not state.declare_school:
                return self.refuse(400, "invalidSyntax", "undeclared schema")
            user["id"] = uuid.uuid4().hex
            state.users[user["id"]] = user
            self.answer(201, user)

        def do_PATCH(self) -> None:
            state.requests.append(("PATCH", self.path))
            rid = self.path.rsplit("/", 1)[1]
            operations = self.body()["Operations"]
            for op in operations:
                if op["path"] in state.refuse_paths:
                    return self.refuse(400, "invalidValue", f"{op['path']} cannot be changed")
                if op["path"].startswith(SCHOOL_USER_SCHEMA) and not state.declare_school:
                    return self.refuse(400, "invalidPath", f"unknown {op['path']}")
            user = state.users[rid]
            for op in operations:
                target, _, leaf = op["path"].rpartition(".")
                holder = user.setdefault(target, {}) if target else user
                holder[leaf] = op.get("value")
            self.answer(200, user)

        def log_message(self, *args: Any) -> None:
            return None

    return Handler


def _value(user: dict[str, Any], attr: str) -> str:
    if attr == "emails.value":
        return " ".join(e["value"] for e in user.get("emails", []))
    return str(user.get(attr) or "")


@pytest.fixture
def strict() -> Strict:
    return Strict()


@contextmanager
def serving(state: Strict) -> Iterator[ScimPortal]:
    forget_servers()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    transport = Transport(
        build_session(),
        service="the strict portal",
        unavailable=PortalUnavailable,
        policy=RetryPolicy(attempts=2, base_delay_seconds=0.001),
    )
    try:
        yield ScimPortal(transport, f"http://127.0.0.1:{server.server_address[1]}/v2", "t")
    finally:
        server.shutdown()
        server.server_close()
        forget_servers()


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


def test_a_server_without_discovery_gets_the_rfc_attributes_and_says_so(strict: Strict) -> None:
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


def test_eq_only_filters_fall_back_and_the_fallback_is_remembered(strict: Strict) -> None:
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
) -> None:
    strict.ignore_paging = True
    with serving(strict) as portal:
        for n in range(5):
            portal.create_user({"userName": f"u{n}@s.se", "externalId": f"e{n}"})
        with pytest.raises(PortalRequestError, match="ignores startIndex"):
            list(portal.list_users())


def test_one_refused_attribute_blocks_nothing_else_and_is_not_sent_again(strict: Strict) -> None:
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


def test_a_user_name_held_by_a_managed_account_is_a_collision(strict: Strict) -> None:
    with serving(strict) as portal:
        portal.create_user({"userName": "a@s.se", "externalId": "e-someone-else"})
        with pytest.raises(ConflictError, match="collision") as caught:
            portal.create_user({"userName": "A@S.se", "externalId": "e-a"})

    assert caught.value.code == "uniqueness"
    assert len(strict.users) == 1


def test_a_server_that_stops_declaring_an_extension_is_learnt_again(strict: Strict) -> None:
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


def test_a_mapping_can_send_an_attribute_elsewhere_or_nowhere(strict: Strict) -> None:
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
