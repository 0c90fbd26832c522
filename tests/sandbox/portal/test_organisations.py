"""Organisations: created by the admin API, each with its own SCIM base URL and token, kept
apart."""

from __future__ import annotations

import requests

from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_user, query


def test_admin_creates_an_organisation_with_url_and_token(portal_server: PortalServer) -> None:
    response = portal_server.admin.post(
        f"{portal_server.url}/api/organisations", json={"name": "nyskolan-1"}, timeout=10
    )

    created = response.json()
    assert response.status_code == 201
    assert created["name"] == "nyskolan-1"
    assert created["scim_url"] == f"{portal_server.url}/scim/v2/nyskolan-1"
    assert len(created["token"]) >= 32


def test_organisation_names_are_checked_and_unique(portal_server: PortalServer) -> None:
    url = f"{portal_server.url}/api/organisations"
    portal_server.admin.post(url, json={"name": "dubbel"}, timeout=10)

    again = portal_server.admin.post(url, json={"name": "dubbel"}, timeout=10)
    bad = portal_server.admin.post(url, json={"name": "Har Mellanslag"}, timeout=10)
    reserved = portal_server.admin.post(url, json={"name": "api"}, timeout=10)

    assert again.status_code == 409
    assert bad.status_code == 400 and reserved.status_code == 400


def test_creating_organisations_needs_the_admin_token(
    portal_server: PortalServer, portal_org: PortalOrg
) -> None:
    response = requests.post(
        f"{portal_server.url}/api/organisations",
        json={"name": "utan-admin"},
        headers={"Authorization": f"Bearer {portal_org.token}"},
        timeout=10,
    )

    assert response.status_code == 401


def test_organisations_are_kept_apart(portal_server: PortalServer, portal_org: PortalOrg) -> None:
    other = portal_server.new_organisation()
    mine = create_user(portal_org, "samma@skola.se")
    theirs = create_user(other, "samma@skola.se")

    cross_read = portal_org.scim.get(f"/Users/{theirs['id']}")
    cross_token = requests.get(
        f"{portal_org.scim_url}/Users",
        headers={"Authorization": f"Bearer {other.token}"},
        timeout=10,
    )
    listed = query(portal_org)
    other.close()

    assert mine["id"] != theirs["id"]
    assert cross_read.status_code == 404
    assert cross_token.status_code == 401
    assert [r["id"] for r in listed["Resources"]] == [mine["id"]]
