"""The portal's own side through /api/: portal-only users, manual groups, licences, and the
refusal to change or delete what the sync manages."""

from __future__ import annotations

import requests

from common.portal.scim import SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group, create_user, patch, query


def test_portal_users_are_unmanaged_and_visible_over_scim(portal_org: PortalOrg) -> None:
    made = portal_org.create_user(
        "Lärare.Lind@Skola.se",
        given_name="Lena",
        family_name="Lind",
        role="teacher",
        schools=["S1"],
    )

    found = query(portal_org, filter='emails[value eq "lärare.lind@skola.se"]')["Resources"]

    assert made["managed"] is False and made["externalId"] is None
    assert made["role"] == "teacher" and made["schools"] == ["S1"] and made["active"] is True
    assert [u["id"] for u in found] == [made["id"]]
    assert found[0][SCHOOL_USER_SCHEMA] == {"role": "teacher", "schools": ["S1"]}
    assert "externalId" not in found[0]


def test_portal_users_can_be_changed_and_deleted_through_the_api(portal_org: PortalOrg) -> None:
    made = portal_org.create_user("egen@skola.se")
    url = f"{portal_org.api_url}/users/{made['id']}"

    changed = portal_org.api.patch(url, json={"displayName": "Ändrad", "active": False}, timeout=10)
    deleted = portal_org.api.delete(url, timeout=10)

    assert changed.status_code == 200
    assert changed.json()["displayName"] == "Ändrad" and changed.json()["active"] is False
    assert deleted.status_code == 204
    assert portal_org.users() == []


def test_api_refuses_to_change_or_delete_a_managed_user(portal_org: PortalOrg) -> None:
    synced = create_user(portal_org, "synkad@skola.se", externalId="entra-1")
    url = f"{portal_org.api_url}/users/{synced['id']}"

    changed = portal_org.api.patch(url, json={"displayName": "Hack"}, timeout=10)
    deleted = portal_org.api.delete(url, timeout=10)

    for response in (changed, deleted):
        assert response.status_code == 409
        assert "managed by the sync" in response.json()["error"]
    assert portal_org.scim.get(f"/Users/{synced['id']}").json() == synced


def test_api_refuses_to_change_or_delete_a_managed_group(portal_org: PortalOrg) -> None:
    klass = create_group(portal_org, "7A", externalId="entra-g")
    url = f"{portal_org.api_url}/groups/{klass['id']}"

    changed = portal_org.api.patch(url, json={"displayName": "Annat"}, timeout=10)
    deleted = portal_org.api.delete(url, timeout=10)

    for response in (changed, deleted):
        assert response.status_code == 409
        assert "managed by the sync" in response.json()["error"]
    assert portal_org.scim.get(f"/Groups/{klass['id']}").json() == klass


def test_an_adopted_user_becomes_managed(portal_org: PortalOrg) -> None:
    made = portal_org.create_user("adopt@skola.se")
    patch(portal_org, f"/Users/{made['id']}", {"op": "add", "path": "externalId", "value": "e-9"})

    response = portal_org.api.delete(f"{portal_org.api_url}/users/{made['id']}", timeout=10)

    assert response.status_code == 409
    assert portal_org.users()[0]["managed"] is True


def test_manual_groups_take_any_members_and_can_be_edited(portal_org: PortalOrg) -> None:
    synced = create_user(portal_org, "s@skola.se", externalId="entra-s")
    own = portal_org.create_user("o@skola.se")
    group = portal_org.create_manual_group("Läsgrupp Ö", [synced["id"], own["id"]])
    url = f"{portal_org.api_url}/groups/{group['id']}"

    edited = portal_org.api.patch(url, json={"members": [own["id"]]}, timeout=10).json()
    scim_view = portal_org.scim.get(f"/Groups/{group['id']}").json()

    assert group["source"] == "manual" and group["managed"] is False
    assert group["members"] == [synced["id"], own["id"]]
    assert edited["members"] == [own["id"]]
    assert "externalId" not in scim_view
    assert portal_org.api.delete(url, timeout=10).status_code == 204
    assert portal_org.groups() == []


def test_manual_group_members_must_be_users_of_the_organisation(portal_org: PortalOrg) -> None:
    response = portal_org.api.post(
        f"{portal_org.api_url}/groups", json={"displayName": "X", "members": ["ghost"]}, timeout=10
    )

    assert response.status_code == 400
    assert "members" in response.json()["error"]


def test_groups_say_where_they_come_from(portal_org: PortalOrg) -> None:
    create_group(portal_org, "7A", externalId="entra-7a")
    portal_org.create_manual_group("Schack", [])

    sources = {g["displayName"]: g["source"] for g in portal_org.groups()}

    assert sources == {"7A": "microsoft", "Schack": "manual"}


def test_licences_to_users_and_groups(portal_org: PortalOrg) -> None:
    synced = create_user(portal_org, "elev@skola.se", externalId="entra-e")
    klass = create_group(portal_org, "7A", [synced["id"]], externalId="entra-7a")

    to_user = portal_org.assign_licence("Matte Direkt 7", user_id=synced["id"], by="Lena Lind")
    to_group = portal_org.assign_licence("Svenska Impuls", group_id=klass["id"])

    assert to_user["product"] == "Matte Direkt 7" and to_user["userId"] == synced["id"]
    assert to_user["assignedBy"] == "Lena Lind" and to_user["assignedAt"].endswith("Z")
    assert to_group["groupId"] == klass["id"] and to_group["userId"] is None
    assert [lic["id"] for lic in portal_org.licences()] == [to_user["id"], to_group["id"]]
    removed = portal_org.api.delete(f"{portal_org.api_url}/licences/{to_user['id']}", timeout=10)
    assert removed.status_code == 204
    assert [lic["id"] for lic in portal_org.licences()] == [to_group["id"]]


def test_licence_needs_exactly_one_existing_holder(portal_org: PortalOrg) -> None:
    user = portal_org.create_user("h@skola.se")
    url = f"{portal_org.api_url}/licences"

    neither = portal_org.api.post(url, json={"product": "P", "assignedBy": "x"}, timeout=10)
    both = portal_org.api.post(
        url,
        json={"product": "P", "assignedBy": "x", "userId": user["id"], "groupId": "g"},
        timeout=10,
    )
    ghost = portal_org.api.post(
        url, json={"product": "P", "assignedBy": "x", "userId": "ghost"}, timeout=10
    )

    assert neither.status_code == 400 and both.status_code == 400
    assert ghost.status_code == 404


def test_deactivation_keeps_licences_and_hard_delete_takes_them(portal_org: PortalOrg) -> None:
    synced = create_user(portal_org, "paus@skola.se", externalId="entra-p")
    other = create_user(portal_org, "kvar@skola.se", externalId="entra-k")
    portal_org.assign_licence("Bok A", user_id=synced["id"])
    kept = portal_org.assign_licence("Bok B", user_id=other["id"])

    patch(portal_org, f"/Users/{synced['id']}", {"op": "replace", "path": "active", "value": False})
    after_deactivation = portal_org.licences()
    portal_org.scim.delete(f"/Users/{synced['id']}")

    assert [lic["product"] for lic in after_deactivation] == ["Bok A", "Bok B"]
    assert portal_org.licences() == [kept]


def test_scim_writes_leave_licences_and_manual_groups_alone(portal_org: PortalOrg) -> None:
    synced = create_user(portal_org, "a@skola.se", externalId="entra-a")
    klass = create_group(portal_org, "7A", [synced["id"]], externalId="entra-7a")
    manual = portal_org.create_manual_group("Extra", [synced["id"]])
    portal_org.assign_licence("Bok", group_id=klass["id"])
    portal_org.assign_licence("Bok", user_id=synced["id"])
    before = portal_org.snapshot()

    patch(
        portal_org,
        f"/Users/{synced['id']}",
        {"op": "replace", "path": "displayName", "value": "Ny"},
    )
    patch(portal_org, f"/Groups/{klass['id']}", {"op": "remove", "path": "members"})
    after = portal_org.snapshot()

    assert after["licences"] == before["licences"]
    assert after["groups"][manual["id"]] == before["groups"][manual["id"]]


def test_api_needs_the_organisation_token(
    portal_server: PortalServer, portal_org: PortalOrg
) -> None:
    other = portal_server.new_organisation()

    no_token = requests.get(f"{portal_org.api_url}/users", timeout=10)
    wrong_org = requests.get(
        f"{portal_org.api_url}/users",
        headers={"Authorization": f"Bearer {other.token}"},
        timeout=10,
    )
    other.close()

    assert no_token.status_code == 401 and wrong_org.status_code == 401
    assert "error" in no_token.json()
