"""Paging (startIndex, count), sorting and attribute selection."""

from __future__ import annotations

import pytest

from common.portal.scim import LIST_RESPONSE, SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg
from tests.sandbox.portal.bodies import create_group, create_user, query

MAX_RESULTS = 1000


@pytest.fixture
def twelve(portal_org: PortalOrg) -> list[str]:
    return [create_user(portal_org, f"elev{n:02}@skola.se")["id"] for n in range(12)]


def test_pages_cover_every_user_once_in_creation_order(
    portal_org: PortalOrg, twelve: list[str]
) -> None:
    pages = [query(portal_org, startIndex=start, count=5) for start in (1, 6, 11)]

    assert [p["schemas"] for p in pages] == [[LIST_RESPONSE]] * 3
    assert [p["totalResults"] for p in pages] == [12, 12, 12]
    assert [p["startIndex"] for p in pages] == [1, 6, 11]
    assert [p["itemsPerPage"] for p in pages] == [5, 5, 2]
    assert [r["id"] for p in pages for r in p["Resources"]] == twelve


def test_paging_applies_after_filtering(portal_org: PortalOrg, twelve: list[str]) -> None:
    page = query(portal_org, filter='userName sw "elev0"', startIndex=3, count=4)

    assert page["totalResults"] == 10
    assert [r["id"] for r in page["Resources"]] == twelve[2:6]


def test_count_zero_gives_only_the_total(portal_org: PortalOrg, twelve: list[str]) -> None:
    page = query(portal_org, count=0)

    assert page["totalResults"] == 12
    assert page["Resources"] == []


def test_out_of_range_values_are_clamped(portal_org: PortalOrg, twelve: list[str]) -> None:
    below = query(portal_org, startIndex=-3, count=2)
    beyond = query(portal_org, startIndex=50)
    huge = query(portal_org, count=10**9)

    assert below["startIndex"] == 1 and [r["id"] for r in below["Resources"]] == twelve[:2]
    assert beyond["totalResults"] == 12 and beyond["Resources"] == []
    assert huge["itemsPerPage"] == 12


def test_maximum_page_size_is_stated_in_service_provider_config(portal_org: PortalOrg) -> None:
    config = portal_org.scim.get("/ServiceProviderConfig").json()

    assert config["filter"] == {"supported": True, "maxResults": MAX_RESULTS}


def test_non_numeric_paging_is_400_invalid_value(portal_org: PortalOrg) -> None:
    response = portal_org.scim.get("/Users", params={"count": "many"})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_sorting_by_user_name_both_ways(portal_org: PortalOrg) -> None:
    for name in ("cecilia@s.se", "Adam@s.se", "bertil@s.se"):
        create_user(portal_org, name)

    ascending = query(portal_org, sortBy="userName")
    descending = query(portal_org, sortBy="userName", sortOrder="descending", count=2)

    assert [r["userName"] for r in ascending["Resources"]] == [
        "Adam@s.se",
        "bertil@s.se",
        "cecilia@s.se",
    ]
    assert [r["userName"] for r in descending["Resources"]] == ["cecilia@s.se", "bertil@s.se"]


def test_attributes_selects_and_always_returns_id(portal_org: PortalOrg) -> None:
    user = create_user(
        portal_org, "val@skola.se", **{SCHOOL_USER_SCHEMA: {"role": "student", "grade": "5"}}
    )

    one = portal_org.scim.get(
        f"/Users/{user['id']}",
        params={"attributes": f"userName,name.givenName,{SCHOOL_USER_SCHEMA}:grade"},
    ).json()
    listed = query(portal_org, attributes="emails.value")["Resources"][0]

    assert one == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SCHOOL_USER_SCHEMA],
        "id": user["id"],
        "userName": "val@skola.se",
        "name": {"givenName": "Åsa"},
        SCHOOL_USER_SCHEMA: {"grade": "5"},
    }
    assert listed["emails"] == [{"value": "val@skola.se"}]
    assert "meta" not in listed


def test_excluded_attributes_drops_them_but_never_id(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "utan@skola.se", **{SCHOOL_USER_SCHEMA: {"role": "teacher"}})

    got = portal_org.scim.get(
        f"/Users/{user['id']}",
        params={"excludedAttributes": f"emails,name,id,{SCHOOL_USER_SCHEMA}"},
    ).json()

    assert got["id"] == user["id"]
    assert "emails" not in got and "name" not in got
    assert SCHOOL_USER_SCHEMA not in got and SCHOOL_USER_SCHEMA not in got["schemas"]
    assert got["userName"] == "utan@skola.se"


def test_groups_can_be_listed_without_members(portal_org: PortalOrg) -> None:
    member = create_user(portal_org, "m@skola.se")
    create_group(portal_org, "9C", [member["id"]])

    with_members = query(portal_org, "/Groups")["Resources"][0]
    without = query(portal_org, "/Groups", excludedAttributes="members")["Resources"][0]

    assert [m["value"] for m in with_members["members"]] == [member["id"]]
    assert with_members["members"][0]["$ref"].endswith(f"/Users/{member['id']}")
    assert "members" not in without
