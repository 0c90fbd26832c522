"""The reference portal's modes that mimic independent SCIM servers (``sandbox.portal.modes``),
each switched on for one organisation through its knobs and checked over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.portal.scim import SCHOOL_USER_SCHEMA, USER_SCHEMA
from tests.fixtures.portal import PortalOrg, PortalServer


@pytest.fixture
def moded(portal_server: PortalServer, portal_org: PortalOrg) -> Iterator[Any]:
    def switch(*modes: str) -> PortalOrg:
        portal_server.set_knobs(portal_org.name, **dict.fromkeys(modes, 1.0))
        return portal_org

    yield switch
    portal_server.reset()


def _user(org: PortalOrg, name: str, **extra: Any) -> dict[str, Any]:
    body = {"schemas": [USER_SCHEMA], "userName": name, "emails": [{"value": name}], **extra}
    response = org.scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_without_the_school_extension_it_is_neither_declared_nor_accepted(moded: Any) -> None:
    org = moded("no_school_extension")

    schema_ids = {s["id"] for s in org.scim.get("/Schemas").json()["Resources"]}
    user_type = org.scim.get("/ResourceTypes/User").json()
    refused = org.scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA, SCHOOL_USER_SCHEMA],
            "userName": "a@s.se",
            SCHOOL_USER_SCHEMA: {"role": "student"},
        },
    )
    user = _user(org, "b@s.se")
    patched = org.scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": f"{SCHOOL_USER_SCHEMA}:role", "value": "x"}],
        },
    )

    assert SCHOOL_USER_SCHEMA not in schema_ids
    assert SCHOOL_USER_SCHEMA not in {e["schema"] for e in user_type["schemaExtensions"]}
    assert org.scim.get(f"/Schemas/{SCHOOL_USER_SCHEMA}").status_code == 404
    assert (refused.status_code, refused.json()["scimType"]) == (400, "invalidSyntax")
    assert (patched.status_code, patched.json()["scimType"]) == (400, "invalidPath")


def test_eq_only_filters_refuse_everything_else(moded: Any) -> None:
    org = moded("eq_only_filters")
    _user(org, "a@s.se")

    ok = org.scim.get("/Users", params={"filter": 'emails.value eq "a@s.se"'})
    chained = org.scim.get("/Users", params={"filter": 'userName eq "a@s.se" or userName eq "b"'})
    bracket = org.scim.get("/Users", params={"filter": 'emails[value eq "a@s.se"]'})

    assert ok.json()["totalResults"] == 1
    assert (chained.status_code, chained.json()["scimType"]) == (400, "invalidFilter")
    assert (bracket.status_code, bracket.json()["scimType"]) == (400, "invalidFilter")


def test_lowercase_emails_stores_addresses_in_lower_case(moded: Any) -> None:
    org = moded("lowercase_emails")
    user = _user(org, "Anna.Berg@Skola.se")
    patched = org.scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "replace",
                    "path": "emails",
                    "value": [{"value": "Anna.B@Skola.se", "primary": True}],
                }
            ],
        },
    )

    assert user["emails"][0]["value"] == "anna.berg@skola.se"
    assert user["userName"] == "Anna.Berg@Skola.se"
    assert patched.json()["emails"][0]["value"] == "anna.b@skola.se"


def test_case_sensitive_filters_compare_letter_case(moded: Any) -> None:
    org = moded("case_sensitive_filters")
    _user(org, "Anna.Berg@Skola.se")

    exact = org.scim.get("/Users", params={"filter": 'userName eq "Anna.Berg@Skola.se"'})
    other = org.scim.get("/Users", params={"filter": 'userName eq "anna.berg@skola.se"'})

    assert exact.json()["totalResults"] == 1
    assert other.json()["totalResults"] == 0


def test_ignore_paging_answers_the_first_page_whatever_is_asked(moded: Any) -> None:
    org = moded("ignore_paging")
    for n in range(3):
        _user(org, f"u{n}@s.se")

    page = org.scim.get("/Users", params={"startIndex": 3, "count": 1}).json()

    assert page["startIndex"] == 1
    assert [u["userName"] for u in page["Resources"]] == ["u0@s.se", "u1@s.se", "u2@s.se"]
