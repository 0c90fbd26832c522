"""The SCIM portal client against real servers: the reference portal (``sandbox/portal``) and an
independent one (``scim2-server`` from PyPI, serving our school extension from its schema file).

Tests that take ``target`` run against both; what they check on the server they read with a
plain HTTP session of their own, never through the client under test.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from common.errors import (
    ConflictError,
    NotFound,
    PortalAuthError,
    PortalRequestError,
    PortalUnavailable,
    Throttled,
)
from common.http import RetryPolicy, Transport, build_session
from common.model import Role
from common.portal.client import ScimPortal
from common.portal.codec import parse_group, parse_user, patch_operations
from common.portal.discovery import discover
from common.portal.filters import FILTER_VALUES_PER_QUERY
from common.portal.learning import forget_servers
from common.portal.mapping import build_mapping
from common.portal.protocol import Portal
from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    PATCH_OP,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)
from common.portal.wire import PRECONDITION_RETRIES
from tests.fixtures.portal import PortalServer


def _declaring(user_ext: list[str], group_ext: list[str]) -> Any:
    """What a server without /Schemas, declaring these extensions in /ResourceTypes, says."""
    types = _resource_types(user_ext, group_ext)
    return build_mapping(discover(lambda e: types if e == "ResourceTypes" else None))


def _resource_types(user_ext: list[str], group_ext: list[str]) -> dict[str, Any]:
    """A /ResourceTypes answer declaring these extensions."""
    return {
        "Resources": [
            {
                "name": "User",
                "endpoint": "/Users",
                "schema": USER_SCHEMA,
                "schemaExtensions": [{"schema": e} for e in user_ext],
            },
            {
                "name": "Group",
                "endpoint": "/Groups",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
                "schemaExtensions": [{"schema": e} for e in group_ext],
            },
        ]
    }


#: the mapping of a portal declaring the school extension (the reference portal)
SCHOOL_MAPPING = _declaring([SCHOOL_USER_SCHEMA], [SCHOOL_GROUP_SCHEMA])

FAST_RETRIES = RetryPolicy(attempts=25, base_delay_seconds=0.001, max_delay_seconds=0.005)

ANNA = {
    "userName": "Anna.Berg@Skola.se",
    "email": "Anna.Berg@Skola.se",
    "givenName": "Anna",
    "familyName": "Berg",
    "displayName": "Anna Berg",
    "active": True,
    "role": "student",
    "schools": ("s2", "s1"),
    "schoolNames": ("Östra skolan", "Björkskolan"),
    "grade": "7",
    "externalId": "0b7c5e6a-entra-anna",
}


def client(scim_url: str, token: str, policy: RetryPolicy = FAST_RETRIES) -> ScimPortal:
    transport = Transport(
        build_session(), service="the test portal", unavailable=PortalUnavailable, policy=policy
    )
    return ScimPortal(transport, scim_url, token)


@dataclass
class Target:
    """A SCIM server under test: its base URL, token, and a plain session to look at it."""

    server: str
    scim_url: str
    token: str
    raw: requests.Session

    def read(self, path: str) -> dict[str, Any]:
        response = self.raw.get(f"{self.scim_url}{path}", timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def raw_patch(self, path: str, operations: list[dict[str, Any]]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": operations}
        response = self.raw.patch(
            f"{self.scim_url}{path}",
            data=json.dumps(body),
            headers={"Content-Type": "application/scim+json"},
            timeout=10,
        )
        assert response.status_code in (200, 204), response.text

    def raw_create_user(self, body: dict[str, Any]) -> str:
        response = self.raw.post(
            f"{self.scim_url}/Users",
            data=json.dumps({"schemas": [USER_SCHEMA], **body}),
            headers={"Content-Type": "application/scim+json"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture(params=["sandbox-portal", "scim2-server"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sandbox-portal":
        org = request.getfixturevalue("portal_org")
        scim_url, token = org.scim_url, org.token
    else:
        tenant = request.getfixturevalue("scim_tenant")
        scim_url, token = tenant.scim_url, tenant.token
    raw = requests.Session()
    raw.headers["Authorization"] = f"Bearer {token}"
    raw.headers["Accept"] = "application/scim+json"
    yield Target(request.param, scim_url, token, raw)
    raw.close()


@pytest.fixture
def portal(target: Target) -> ScimPortal:
    return client(target.scim_url, target.token)


# --- reading and writing every attribute ------------------------------------------------------


def test_scim_portal_is_a_portal(portal: ScimPortal) -> None:
    seam: Portal = portal
    assert seam is portal


def test_round_trips_every_user_attribute(portal: ScimPortal, target: Target) -> None:
    created = portal.create_user(ANNA)

    school = target.server == "sandbox-portal"
    expected = {
        "user_name": "Anna.Berg@Skola.se",
        "email": "Anna.Berg@Skola.se",
        "given_name": "Anna",
        "family_name": "Berg",
        "display_name": "Anna Berg",
        "active": True,
        "role": Role.STUDENT,
        # without the school extension: the first school's name in enterprise organization,
        # no school ids, no grade
        "school_ids": ("s1", "s2") if school else (),
        "school_names": ("Björkskolan", "Östra skolan") if school else ("Björkskolan",),
        "grade": "7" if school else None,
        "external_id": ANNA["externalId"],
    }
    for user in (created, portal.get_user(created.id), *portal.list_users()):
        assert {k: getattr(user, k) for k in expected} == expected
        assert user.id == created.id
        assert user.version
    stored = target.read(f"/Users/{created.id}")
    assert stored["emails"][0]["value"] == "Anna.Berg@Skola.se"
    assert stored["emails"][0]["primary"] is True
    assert stored["active"] is True
    if school:
        assert stored[SCHOOL_USER_SCHEMA]["role"] == "student"
        assert sorted(stored[SCHOOL_USER_SCHEMA]["schools"]) == ["s1", "s2"]
        assert stored[SCHOOL_USER_SCHEMA]["schoolNames"] == ["Björkskolan", "Östra skolan"]
    else:
        # only what the server declares is sent: nothing of ours in schemas
        assert SCHOOL_USER_SCHEMA not in stored["schemas"]
        assert stored["userType"] == "Student"
        assert stored[ENTERPRISE_USER_SCHEMA]["organization"] == "Björkskolan"


def test_round_trips_every_group_attribute_and_its_members(
    portal: ScimPortal, target: Target
) -> None:
    anna = portal.create_user(ANNA)
    bo = portal.create_user({"userName": "bo@skola.se", "email": "bo@skola.se"})

    created = portal.create_group(
        {
            "displayName": "7A",
            "externalId": "entra-7a",
            "school": "s1",
            "schoolName": "Björkskolan",
            "members": [anna.id, bo.id],
        }
    )

    for group in (created, portal.get_group(created.id), *portal.list_groups()):
        assert group.id == created.id
        assert group.display_name == "7A"
        assert group.external_id == "entra-7a"
        assert group.school_id == ("s1" if target.server == "sandbox-portal" else None)
        assert group.school_name == ("Björkskolan" if target.server == "sandbox-portal" else None)
        assert group.member_ids == {anna.id, bo.id}


@pytest.mark.slow  # two pages and more of the reference portal: 2,002 users created
def test_lists_every_user_across_pages(portal: ScimPortal, target: Target) -> None:
    many = 2 * portal.page_size() + 2 if target.server == "sandbox-portal" else 12
    for n in range(many):
        portal.create_user({"userName": f"elev{n}@skola.se", "email": f"elev{n}@skola.se"})

    names = sorted(u.user_name for u in portal.list_users())

    assert names == sorted(f"elev{n}@skola.se" for n in range(many))
    assert portal.page_size() == min(1000, portal.capabilities().max_results or 100)


# --- PATCH -------------------------------------------------------------------------------------


def test_school_names_go_where_the_school_extension_or_enterprise_organization_is() -> None:
    def attribute(name: str, *, multi: bool = False) -> dict[str, Any]:
        return {"name": name, "type": "string", "multiValued": multi, "mutability": "readWrite"}

    # a portal whose school extension predates the names: ids only, and names are not sent
    # (not to organization either: with the school extension, the extension holds schools)
    types = _resource_types([SCHOOL_USER_SCHEMA, ENTERPRISE_USER_SCHEMA], [SCHOOL_GROUP_SCHEMA])
    schemas = {
        "Resources": [
            {
                "id": SCHOOL_USER_SCHEMA,
                "attributes": [attribute("role"), attribute("schools", multi=True)],
            },
            {"id": ENTERPRISE_USER_SCHEMA, "attributes": [attribute("organization")]},
            {"id": SCHOOL_GROUP_SCHEMA, "attributes": [attribute("school")]},
        ]
    }
    answers: dict[str, Any] = {"ResourceTypes": types, "Schemas": schemas}
    older = build_mapping(discover(answers.get))
    assert older.users["schoolNames"] is None and older.groups["schoolName"] is None
    assert older.users["schools"] is not None
    assert "this portal has no attribute for school names; it is not sent" in older.notes
    assert "this portal has no attribute for a class's school name; it is not sent" in older.notes

    # the school extension in full: names beside the ids, on people and classes
    full = SCHOOL_MAPPING
    assert full.users["schoolNames"] is not None and full.users["schoolNames"].multi_valued
    assert full.groups["schoolName"] is not None
    assert patch_operations({"schoolNames": ("Ö", "B")}, full.users) == [
        (
            "schoolNames",
            {"op": "replace", "path": f"{SCHOOL_USER_SCHEMA}:schoolNames", "value": ["B", "Ö"]},
        )
    ]

    # no school extension: the first name in enterprise organization, no ids anywhere
    plain = _declaring([ENTERPRISE_USER_SCHEMA], [])
    assert plain.users["schools"] is None
    assert patch_operations({"schoolNames": ("Ö", "B")}, plain.users) == [
        (
            "schoolNames",
            {"op": "replace", "path": f"{ENTERPRISE_USER_SCHEMA}:organization", "value": "B"},
        )
    ]
    assert "schoolNames" in plain.user_fidelity().first_only


def test_patch_operations_are_lowercase_with_boolean_active_and_extension_paths() -> None:
    operations = [
        op
        for _, op in patch_operations(
            {"active": False, "grade": None, "schools": ("s2", "s1"), "email": "a@s.se"},
            SCHOOL_MAPPING.users,
        )
    ]

    assert operations == [
        {"op": "replace", "path": "active", "value": False},
        {"op": "remove", "path": f"{SCHOOL_USER_SCHEMA}:grade"},
        {"op": "replace", "path": f"{SCHOOL_USER_SCHEMA}:schools", "value": ["s1", "s2"]},
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": "a@s.se", "type": "work", "primary": True}],
        },
    ]


def test_update_writes_only_the_changed_attributes(portal: ScimPortal, target: Target) -> None:
    user = portal.create_user(ANNA)
    # someone else changes the given name after we read the user
    target.raw_patch(
        f"/Users/{user.id}", [{"op": "replace", "path": "name.givenName", "value": "Annie"}]
    )
    between = target.read(f"/Users/{user.id}")["meta"]["version"]

    updated = portal.update_user(user.id, {"displayName": "Anna B", "grade": None})

    stored = target.read(f"/Users/{user.id}")
    assert stored["displayName"] == "Anna B"
    assert stored["name"]["givenName"] == "Annie"  # a whole-object write would have undone it
    assert "grade" not in stored.get(SCHOOL_USER_SCHEMA, {})
    if target.server == "sandbox-portal":
        assert stored[SCHOOL_USER_SCHEMA]["role"] == "student"
    assert stored["meta"]["version"] not in (user.version, between)
    assert updated.display_name == "Anna B"
    assert updated.grade is None
    assert updated.version == stored["meta"]["version"]


def test_deactivates_and_reactivates_with_a_boolean(portal: ScimPortal, target: Target) -> None:
    user = portal.create_user(ANNA)

    assert portal.update_user(user.id, {"active": False}).active is False
    assert target.read(f"/Users/{user.id}")["active"] is False
    assert portal.update_user(user.id, {"active": True}).active is True
    assert target.read(f"/Users/{user.id}")["active"] is True


def test_adoption_sets_external_id_and_keeps_the_portal_id(
    portal: ScimPortal, target: Target
) -> None:
    portal_id = target.raw_create_user(
        {"userName": "cilla@skola.se", "emails": [{"value": "cilla@skola.se"}]}
    )

    adopted = portal.update_user(portal_id, {"externalId": "entra-cilla", "givenName": "Cilla"})

    assert adopted.id == portal_id
    assert adopted.external_id == "entra-cilla"
    assert target.read(f"/Users/{portal_id}")["externalId"] == "entra-cilla"


def test_update_after_a_concurrent_change_rereads_and_retries(
    portal: ScimPortal, target: Target
) -> None:
    user = portal.create_user(ANNA)
    target.raw_patch(f"/Users/{user.id}", [{"op": "replace", "path": "displayName", "value": "X"}])

    updated = portal.update_user(user.id, {"givenName": "Annie"}, version=user.version)

    stored = target.read(f"/Users/{user.id}")
    assert (stored["displayName"], stored["name"]["givenName"]) == ("X", "Annie")
    assert updated.version == stored["meta"]["version"] != user.version


def test_updates_a_group_without_touching_its_members(portal: ScimPortal, target: Target) -> None:
    anna = portal.create_user(ANNA)
    group = portal.create_group({"displayName": "7A", "externalId": "e7a", "members": [anna.id]})

    updated = portal.update_group(group.id, {"displayName": "7B", "school": "s2"})

    school = "s2" if target.server == "sandbox-portal" else None  # no home for it there
    assert (updated.display_name, updated.school_id) == ("7B", school)
    assert portal.get_group(group.id).member_ids == {anna.id}


def test_adds_and_removes_members_leaving_the_others(portal: ScimPortal) -> None:
    ids = [
        portal.create_user({"userName": f"m{n}@skola.se", "email": f"m{n}@skola.se"}).id
        for n in range(4)
    ]
    group = portal.create_group({"displayName": "7A", "externalId": "e7a", "members": ids[:2]})

    portal.add_members(group.id, ids[2:])
    assert portal.get_group(group.id).member_ids == set(ids)
    portal.remove_members(group.id, [ids[0], ids[2]])

    assert portal.get_group(group.id).member_ids == {ids[1], ids[3]}


# --- lookups ----------------------------------------------------------------------------------


def test_finds_users_by_external_id_and_by_email_in_other_letter_case(
    portal: ScimPortal, target: Target
) -> None:
    anna = portal.create_user(ANNA)
    bo = portal.create_user({"userName": "Bo@Skola.se", "email": "Bo@Skola.se"})
    only_user_name = target.raw_create_user({"userName": "Cilla@Skola.se"})
    portal.create_user({"userName": "dan@skola.se", "email": "dan@skola.se"})

    by_id = portal.find_users(external_ids=[ANNA["externalId"], "unknown"])
    # more addresses than fit in one filter: the lookup is split into several
    nobody = [f"nobody{n}@skola.se" for n in range(FILTER_VALUES_PER_QUERY)]
    by_email = portal.find_users(emails=[*nobody, "bo@SKOLA.SE", "cilla@skola.se"])

    assert [u.id for u in by_id] == [anna.id]
    assert sorted(u.id for u in by_email) == sorted([bo.id, only_user_name])


def test_finds_a_group_by_external_id_only(portal: ScimPortal) -> None:
    group = portal.create_group({"displayName": "7A", "externalId": "entra-7a"})
    portal.create_group({"displayName": "entra-7b"})

    found = portal.find_group("entra-7a")

    assert found is not None and found.id == group.id
    assert portal.find_group("entra-7b") is None


# --- errors -----------------------------------------------------------------------------------


def test_deleting_what_is_already_gone_is_no_error(portal: ScimPortal) -> None:
    user = portal.create_user(ANNA)
    group = portal.create_group({"displayName": "7A", "externalId": "e7a"})

    for _ in range(2):
        portal.delete_group(group.id)
        portal.delete_user(user.id)

    with pytest.raises(NotFound):
        portal.get_user(user.id)
    with pytest.raises(NotFound):
        portal.get_group(group.id)


def test_a_taken_user_name_is_a_conflict_naming_it(portal: ScimPortal) -> None:
    portal.create_user(ANNA)

    with pytest.raises(ConflictError, match=re.escape("anna.berg@skola.se")) as caught:
        portal.create_user({"userName": "anna.berg@skola.se", "email": "anna.berg@skola.se"})

    assert caught.value.status == 409


def test_a_taken_user_name_held_by_an_unmanaged_account_adopts_it(portal: ScimPortal) -> None:
    held = portal.create_user({"userName": "Cilla@Skola.se", "email": "Cilla@Skola.se"})

    created = portal.create_user(
        {"userName": "cilla@skola.se", "email": "cilla@skola.se", "externalId": "entra-cilla"}
    )

    assert created.id == held.id
    assert created.external_id == "entra-cilla"
    assert [u.id for u in portal.list_users()] == [held.id]


def test_a_refused_request_carries_the_scim_detail_and_type(portal: ScimPortal) -> None:
    with pytest.raises(PortalRequestError) as caught:
        portal.create_user({"email": "no-user-name@skola.se"})

    assert caught.value.status == 400
    assert str(caught.value).startswith("the portal refused creating a user (400")


def test_a_wrong_token_is_a_portal_auth_error(target: Target) -> None:
    wrong = client(target.scim_url, "not-the-token")

    with pytest.raises(PortalAuthError) as caught:
        list(wrong.list_users())

    assert "not-the-token" not in str(caught.value)


# --- the reference portal's fault knobs -------------------------------------------------------


@pytest.fixture
def knobs(portal_server: PortalServer) -> Iterator[PortalServer]:
    portal_server.reset()
    yield portal_server
    portal_server.reset()


def test_throttling_and_server_errors_are_retried_until_done(
    knobs: PortalServer, portal_org: Any
) -> None:
    portal = client(portal_org.scim_url, portal_org.token)
    knobs.set_knobs(portal_org.name, throttle_share=0.3, retry_after_seconds=0.0, error_share=0.3)

    users = [
        portal.create_user({"userName": f"k{n}@skola.se", "email": f"k{n}@skola.se"})
        for n in range(6)
    ]
    group = portal.create_group({"displayName": "7A", "externalId": "e7a"})
    portal.add_members(group.id, [u.id for u in users])
    portal.update_user(users[0].id, {"active": False})
    portal.delete_user(users[1].id)
    listed = {u.user_name: u.active for u in portal.list_users()}

    requests_seen = knobs.counters()["organisations"][portal_org.name]["requests"]
    statuses = {status for by_status in requests_seen.values() for status in by_status}
    assert {"429", "503"} <= statuses
    assert listed == {f"k{n}@skola.se": n != 0 for n in range(6) if n != 1}
    assert portal.get_group(group.id).member_ids == {u.id for u in users[2:]} | {users[0].id}


def test_a_create_whose_answer_was_lost_never_makes_a_twin(
    knobs: PortalServer, portal_org: Any
) -> None:
    portal = client(portal_org.scim_url, portal_org.token)
    knobs.set_knobs(portal_org.name, lost_answer_share=0.5, error_share=0.2)

    users = [
        portal.create_user({"userName": f"l{n}@skola.se", "externalId": f"e-l{n}"})
        for n in range(20)
    ]
    groups = [
        portal.create_group({"displayName": f"7{n}", "externalId": f"g{n}"}) for n in range(10)
    ]
    knobs.set_knobs(portal_org.name, lost_answer_share=0.0, error_share=0.0)

    counted = knobs.counters()["organisations"][portal_org.name]
    # answers were lost (the write done, 503 sent) and yet each object was created once
    assert counted["requests"]["POST"]["503"] >= 5
    listed = [u.external_id for u in portal.list_users()]
    listed_groups = [g.external_id for g in portal.list_groups()]
    assert sorted(listed) == sorted(f"e-l{n}" for n in range(20))
    assert sorted(listed_groups) == sorted(f"g{n}" for n in range(10))
    assert {u.external_id for u in users} == set(listed)
    assert {g.external_id for g in groups} == set(listed_groups)
    assert counted["writes"]["user.create"] == 20
    assert counted["writes"]["group.create"] == 10


def test_throttling_beyond_the_retries_is_throttled(knobs: PortalServer, portal_org: Any) -> None:
    portal = client(portal_org.scim_url, portal_org.token, RetryPolicy(attempts=2))
    knobs.set_knobs(portal_org.name, throttle_share=1.0, retry_after_seconds=0.0)

    with pytest.raises(Throttled):
        portal.create_user(ANNA)


def test_server_errors_beyond_the_retries_are_portal_unavailable(
    knobs: PortalServer, portal_org: Any
) -> None:
    portal = client(portal_org.scim_url, portal_org.token, RetryPolicy(attempts=2))
    knobs.set_knobs(portal_org.name, error_share=1.0)

    with pytest.raises(PortalUnavailable):
        list(portal.list_users())


# --- small strict servers (pytest-httpserver) for what the real ones above never do ------------


@pytest.fixture
def small(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver as a portal at ``/v2``: a request it was not told to expect fails the
    test; what the client learnt about it is forgotten (every test reuses its address)."""
    forget_servers()
    yield httpserver
    forget_servers()
    httpserver.check()


def _scim(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/scim+json")


def test_gives_up_with_conflict_error_when_the_user_keeps_changing(small: HTTPServer) -> None:
    # no discovery endpoints: the RFC's defaults
    small.expect_request(
        re.compile(r"^/v2/(ServiceProviderConfig|ResourceTypes|Schemas)$")
    ).respond_with_response(_scim(404, {"status": "404"}))
    versions = itertools.count(1)
    small.expect_request("/v2/Users/u1", method="GET").respond_with_handler(
        lambda _: _scim(
            200, {"id": "u1", "userName": "a@s.se", "meta": {"version": f'W/"{next(versions)}"'}}
        )
    )  # every read finds a newer version
    small.expect_request("/v2/Users/u1", method="PATCH").respond_with_response(
        _scim(412, {"status": "412", "detail": "changed"})
    )
    portal = client(small.url_for("/v2"), "t")

    with pytest.raises(ConflictError):
        portal.update_user("u1", {"displayName": "B"}, version='W/"0"')

    patches = [r for r, _ in small.log if r.method == "PATCH"]
    reads = [r for r, _ in small.log if r.method == "GET" and r.path == "/v2/Users/u1"]
    assert len(patches) == PRECONDITION_RETRIES + 1
    assert len(reads) == PRECONDITION_RETRIES
    # each retry is conditional on the version just read
    assert [r.headers["If-Match"] for r in patches] == [
        f'W/"{n}"' for n in range(PRECONDITION_RETRIES + 1)
    ]


def test_removing_a_member_who_is_already_gone_is_no_error(portal: ScimPortal) -> None:
    user = portal.create_user(ANNA)
    group = portal.create_group({"displayName": "7A", "externalId": "e7a", "members": [user.id]})

    portal.remove_members(group.id, [user.id])
    portal.remove_members(group.id, [user.id])

    assert portal.get_group(group.id).member_ids == frozenset()


def test_a_server_refusing_removal_of_a_non_member_still_gets_the_others_removed(
    small: HTTPServer,
) -> None:
    members = {"a", "b", "c"}

    def strict_members(request: Request) -> Response:
        """Refuses a whole PATCH with 400 noTarget when one removal names a non-member."""
        targets = {op["path"].split('"')[1] for op in request.get_json(force=True)["Operations"]}
        if not targets <= members:
            return _scim(400, {"status": "400", "scimType": "noTarget", "detail": "no member"})
        members.difference_update(targets)
        return Response(status=204)

    small.expect_request("/v2/Groups/g1", method="PATCH").respond_with_handler(strict_members)

    client(small.url_for("/v2"), "t").remove_members("g1", ["a", "gone", "c"])

    assert members == {"b"}


# --- parsing ----------------------------------------------------------------------------------


def test_parses_resources_tolerantly() -> None:
    user = parse_user(
        {
            "ID": "p1",
            "userName": "a@s.se",
            "Active": "False",
            "emails": [{"value": "x@s.se"}, {"value": "a@s.se", "primary": "true"}],
            "x-vendor": {"anything": 1},
            SCHOOL_USER_SCHEMA.upper(): {"role": "Teacher", "schools": "s1", "grade": 9},
        },
        SCHOOL_MAPPING,
    )
    group = parse_group(
        {"id": "g1", "displayName": "7A", SCHOOL_GROUP_SCHEMA: {"school": "s1"}}, SCHOOL_MAPPING
    )

    assert (user.id, user.active, user.email) == ("p1", False, "a@s.se")
    assert (user.role, user.school_ids, user.grade) == (Role.TEACHER, ("s1",), "9")
    assert user.external_id is None and not user.managed
    assert (group.member_ids, group.school_id, group.managed) == (frozenset(), "s1", False)
    assert parse_user({"id": "p2", "userName": "b@s.se"}, SCHOOL_MAPPING).active is True


def test_an_unreadable_resource_is_a_portal_request_error() -> None:
    with pytest.raises(PortalRequestError, match="userName"):
        parse_user({"id": "p1", "active": True}, SCHOOL_MAPPING)
