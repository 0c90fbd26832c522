"""Filters over HTTP (RFC 7644 §3.4.2.2): every operator, logic, brackets, value paths."""

from __future__ import annotations

from typing import Any

import pytest

from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg
from tests.sandbox.portal.bodies import create_group, create_user, ids, query


@pytest.fixture
def people(portal_org: PortalOrg) -> dict[str, str]:
    """Three users with differing attributes; name -> id."""
    anna = create_user(
        portal_org,
        "Anna.Berg@Skola.se",
        displayName="Anna Berg",
        emails=[
            {"value": "anna.berg@skola.se", "type": "work", "primary": True},
            {"value": "anna@hemma.se", "type": "home"},
        ],
        externalId="entra-anna",
        **{
            SCHOOL_USER_SCHEMA: {"role": "student", "schools": ["S1"], "grade": "7"},
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "100"},
        },
    )
    bo = create_user(
        portal_org,
        "bo.ek@skola.se",
        displayName="Bo Ek",
        active=False,
        title="Rektor",
        **{SCHOOL_USER_SCHEMA: {"role": "teacher", "schools": ["S1", "S2"]}},
    )
    cia = create_user(
        portal_org,
        "cia.lund@annan.se",
        displayName="Cia Lund",
        emails=[{"value": "cia.lund@annan.se", "type": "home"}],
        **{SCHOOL_USER_SCHEMA: {"role": "student", "schools": ["S2"], "grade": "9"}},
    )
    return {"anna": anna["id"], "bo": bo["id"], "cia": cia["id"]}


def found(org: PortalOrg, text: str, endpoint: str = "/Users") -> set[str]:
    return ids(query(org, endpoint, filter=text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "anna.berg@skola.se"', {"anna"}),
        ('USERNAME EQ "ANNA.BERG@SKOLA.SE"', {"anna"}),
        ('userName ne "anna.berg@skola.se"', {"bo", "cia"}),
        ('displayName co "ber"', {"anna"}),
        ('userName sw "BO."', {"bo"}),
        ('userName ew "@skola.se"', {"anna", "bo"}),
        ("title pr", {"bo"}),
        ('userName gt "bo"', {"bo", "cia"}),
        ('userName ge "bo.ek@skola.se"', {"bo", "cia"}),
        ('userName lt "bo"', {"anna"}),
        ('userName le "bo.ek@skola.se"', {"anna", "bo"}),
        ("active eq false", {"bo"}),
        ('externalId eq "entra-anna"', {"anna"}),
        ('externalId eq "ENTRA-ANNA"', set()),
        ('name.familyName eq "öberg"', {"anna", "bo", "cia"}),
    ],
)
def test_attribute_operators(
    portal_org: PortalOrg, people: dict[str, str], text: str, expected: set[str]
) -> None:
    assert found(portal_org, text) == {people[n] for n in expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName sw "anna" or userName sw "cia"', {"anna", "cia"}),
        ('userName sw "a" and active eq true', {"anna"}),
        ('not (userName sw "a")', {"bo", "cia"}),
        # and binds tighter than or
        ('userName sw "cia" or userName sw "bo" and active eq true', {"cia"}),
        ('(userName sw "cia" or userName sw "bo") and active eq true', {"cia"}),
        ('not (active eq true) or userName sw "anna"', {"anna", "bo"}),
    ],
)
def test_logical_operators_and_brackets(
    portal_org: PortalOrg, people: dict[str, str], text: str, expected: set[str]
) -> None:
    assert found(portal_org, text) == {people[n] for n in expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('emails[type eq "work" and value eq "anna.berg@skola.se"]', {"anna"}),
        ('emails[type eq "home" and value eq "anna.berg@skola.se"]', set()),
        ('emails[value eq "ANNA@HEMMA.SE"]', {"anna"}),
        ('emails.value eq "cia.lund@annan.se"', {"cia"}),
        ('emails[type eq "home"]', {"anna", "cia"}),
        ('emails[not (type eq "home")]', {"anna", "bo"}),
        ('emails co "hemma"', {"anna"}),
    ],
)
def test_value_paths_on_emails(
    portal_org: PortalOrg, people: dict[str, str], text: str, expected: set[str]
) -> None:
    assert found(portal_org, text) == {people[n] for n in expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'{SCHOOL_USER_SCHEMA}:role eq "student"', {"anna", "cia"}),
        (f'{SCHOOL_USER_SCHEMA}:schools eq "S2"', {"bo", "cia"}),
        (f"{SCHOOL_USER_SCHEMA}:grade pr", {"anna", "cia"}),
        (f'{ENTERPRISE_USER_SCHEMA}:employeeNumber eq "100"', {"anna"}),
        (f'schemas eq "{ENTERPRISE_USER_SCHEMA}"', {"anna"}),
    ],
)
def test_extension_attributes_by_urn(
    portal_org: PortalOrg, people: dict[str, str], text: str, expected: set[str]
) -> None:
    assert found(portal_org, text) == {people[n] for n in expected}


def test_meta_dates_compare_chronologically(portal_org: PortalOrg, people: dict[str, str]) -> None:
    newest = portal_org.scim.get(f"/Users/{people['cia']}").json()["meta"]["created"]

    assert found(portal_org, f'meta.created lt "{newest}"') == {people["anna"], people["bo"]}
    assert found(portal_org, 'meta.lastModified gt "2000-01-01T00:00:00Z"') == set(people.values())


def test_user_name_lookup_is_case_insensitive_for_swedish_letters(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "Örjan.Åström@Skola.se")

    assert found(portal_org, 'userName eq "örjan.åström@skola.se"') == {user["id"]}


def test_groups_filter_by_display_name_external_id_and_member(portal_org: PortalOrg) -> None:
    anna = create_user(portal_org, "anna@skola.se")
    bo = create_user(portal_org, "bo@skola.se")
    klass = create_group(portal_org, "7A Matematik", [anna["id"], bo["id"]], externalId="e-7a")
    other = create_group(portal_org, "8B Svenska", [bo["id"]])

    assert found(portal_org, 'displayName eq "7a matematik"', "/Groups") == {klass["id"]}
    assert found(portal_org, 'externalId eq "e-7a"', "/Groups") == {klass["id"]}
    assert found(portal_org, f'members[value eq "{anna["id"]}"]', "/Groups") == {klass["id"]}
    assert found(portal_org, f'members.value eq "{bo["id"]}"', "/Groups") == {
        klass["id"],
        other["id"],
    }


@pytest.mark.parametrize(
    "text",
    [
        'userName regex "a"',
        'userName eq "a" and',
        "userName eq",
        '(userName eq "a"',
        'nosuchattribute eq "x"',
        'active eq "true"',
        "userName gt true",
        'emails[type eq "work"',
        'emails[value eq "x" and emails[type eq "y"]]',
        'meta.created gt "yesterday"',
        'urn:example:unknown:1.0:User:x eq "y"',
    ],
)
def test_invalid_filters_are_400_invalid_filter(portal_org: PortalOrg, text: str) -> None:
    response = portal_org.scim.get("/Users", params={"filter": text})

    assert response.status_code == 400
    body: dict[str, Any] = response.json()
    assert body["scimType"] == "invalidFilter"
    assert body["status"] == "400"
    assert body["detail"]


def test_search_by_post_takes_the_same_filters(
    portal_org: PortalOrg, people: dict[str, str]
) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'emails[value eq "anna.berg@skola.se"]',
        "attributes": ["userName"],
    }

    listing = portal_org.scim.post("/Users/.search", json=body).json()

    assert [r["id"] for r in listing["Resources"]] == [people["anna"]]
    assert set(listing["Resources"][0]) == {"schemas", "id", "userName"}
