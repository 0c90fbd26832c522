"""Builders for SCIM bodies used across the portal tests."""

from __future__ import annotations

from typing import Any

from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    PATCH_OP,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)
from tests.fixtures.portal import PortalOrg


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    """A User with a name, a work e-mail equal to ``user_name`` and ``extra`` attributes."""
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Åsa", "familyName": "Öberg"},
        "displayName": "Åsa Öberg",
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
    }
    body.update(extra)
    for urn in (ENTERPRISE_USER_SCHEMA, SCHOOL_USER_SCHEMA):
        if urn in body:
            body["schemas"].append(urn)
    return body


def create_user(org: PortalOrg, user_name: str, **extra: Any) -> dict[str, Any]:
    response = org.scim.post("/Users", json=user_body(user_name, **extra))
    assert response.status_code == 201, response.text
    return response.json()


def create_group(
    org: PortalOrg, name: str, members: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members or []],
        **extra,
    }
    if SCHOOL_GROUP_SCHEMA in body:
        body["schemas"].append(SCHOOL_GROUP_SCHEMA)
    response = org.scim.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def patch(org: PortalOrg, path: str, *operations: dict[str, Any], **kw: Any) -> Any:
    return org.scim.patch(path, json={"schemas": [PATCH_OP], "Operations": list(operations)}, **kw)


def query(org: PortalOrg, endpoint: str = "/Users", **params: Any) -> dict[str, Any]:
    response = org.scim.get(endpoint, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(listing: dict[str, Any]) -> set[str]:
    return {r["id"] for r in listing["Resources"]}
