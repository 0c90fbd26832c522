"""Errors are SCIM error bodies (RFC 7644 §3.12) with the right status and scimType."""

from __future__ import annotations

import pytest
import requests

from common.portal.scim import ERROR, USER_SCHEMA
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import user_body


def assert_error(response: requests.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    assert body.get("scimType") == scim_type


@pytest.mark.parametrize("token", [None, "wrong", "Basic dXNlcjpwYXNz"])
def test_requests_without_a_valid_token_are_401(portal_org: PortalOrg, token: str | None) -> None:
    headers = (
        {} if token is None else {"Authorization": token if " " in token else f"Bearer {token}"}
    )

    response = requests.get(f"{portal_org.scim_url}/Users", headers=headers, timeout=10)

    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_organisation_is_404(portal_server: PortalServer, portal_org: PortalOrg) -> None:
    response = portal_org.scim.get(f"{portal_server.url}/scim/v2/no-such-school/Users")

    assert_error(response, 404)


@pytest.mark.parametrize("path", ["/Nothing", "/Users/a/b", "/"])
def test_unknown_endpoints_are_404(portal_org: PortalOrg, path: str) -> None:
    assert_error(portal_org.scim.get(path), 404)


def test_methods_an_endpoint_does_not_take_are_405(portal_org: PortalOrg) -> None:
    response = portal_org.scim.delete("/Schemas")

    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"userName": "no-schemas@skola.se"}',
        b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x"}',
    ],
)
def test_malformed_bodies_are_400_invalid_syntax(portal_org: PortalOrg, body: bytes) -> None:
    response = portal_org.scim.post(
        "/Users", data=body, headers={"Content-Type": "application/scim+json"}
    )

    assert_error(response, 400, "invalidSyntax")


@pytest.mark.parametrize(
    "extra",
    [
        {"userName": None},
        {"userName": 42},
        {"active": "kanske"},
        {"emails": {"value": "not-a-list@skola.se"}},
        {"emails": [{"type": "work"}]},
        {"emails": [{"value": "a@s.se", "primary": True}, {"value": "b@s.se", "primary": True}]},
        {"favouriteColour": "blå"},
        {"name": "Åsa Öberg"},
        {"urn:skolsynk:params:scim:schemas:extension:school:1.0:User": {"role": "rektor"}},
        {"urn:example:params:scim:schemas:extension:other:1.0:User": {"x": 1}},
    ],
)
def test_bad_values_are_400_invalid_value(portal_org: PortalOrg, extra: dict) -> None:
    body = user_body("fel@skola.se", **extra)

    assert_error(portal_org.scim.post("/Users", json=body), 400, "invalidValue")


def test_unsupported_media_type_is_415(portal_org: PortalOrg) -> None:
    response = portal_org.scim.post(
        "/Users", data="userName=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert_error(response, 415)


def test_read_only_attributes_in_a_body_are_ignored(portal_org: PortalOrg) -> None:
    body = {**user_body("ro@skola.se"), "groups": [{"value": "g1"}], "schemas": [USER_SCHEMA]}

    response = portal_org.scim.post("/Users", json=body)

    assert response.status_code == 201
    assert "groups" not in response.json()
