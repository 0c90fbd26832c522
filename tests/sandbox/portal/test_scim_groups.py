"""Group integrity: members are existing users of the same organisation; deleting a user removes
it from every group; deleting a group leaves its members."""

from __future__ import annotations

from common.portal.scim import GROUP_SCHEMA, PATCH_OP
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group, create_user


def test_members_must_exist(portal_org: PortalOrg) -> None:
    response = portal_org.scim.post(
        "/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "7A", "members": [{"value": "ghost"}]},
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert portal_org.scim.get("/Groups").json()["totalResults"] == 0


def test_members_of_another_organisation_are_refused(
    portal_server: PortalServer, portal_org: PortalOrg
) -> None:
    other = portal_server.new_organisation()
    stranger = create_user(other, "annan@skola.se")
    group = create_group(portal_org, "7A")

    response = portal_org.scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": stranger["id"]}]}],
        },
    )
    other.close()

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_groups_cannot_be_members(portal_org: PortalOrg) -> None:
    inner = create_group(portal_org, "Inre")

    response = portal_org.scim.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Yttre",
            "members": [{"value": inner["id"], "type": "Group"}],
        },
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_deleting_a_user_removes_it_from_every_group(portal_org: PortalOrg) -> None:
    leaving = create_user(portal_org, "slutar@skola.se")
    staying = create_user(portal_org, "stannar@skola.se")
    groups = [
        create_group(portal_org, name, [leaving["id"], staying["id"]]) for name in ("7A", "Schack")
    ]

    assert portal_org.scim.delete(f"/Users/{leaving['id']}").status_code == 204

    for group in groups:
        members = portal_org.scim.get(f"/Groups/{group['id']}").json()["members"]
        assert [m["value"] for m in members] == [staying["id"]]


def test_deleting_a_group_keeps_its_members(portal_org: PortalOrg) -> None:
    member = create_user(portal_org, "kvar@skola.se")
    group = create_group(portal_org, "8C", [member["id"]])

    assert portal_org.scim.delete(f"/Groups/{group['id']}").status_code == 204

    assert portal_org.scim.get(f"/Users/{member['id']}").status_code == 200


def test_user_lists_its_groups_read_only(portal_org: PortalOrg) -> None:
    member = create_user(portal_org, "med@skola.se")
    group = create_group(portal_org, "Kör", [member["id"]])

    user = portal_org.scim.get(f"/Users/{member['id']}").json()

    assert user["groups"] == [
        {
            "value": group["id"],
            "$ref": f"{portal_org.scim_url}/Groups/{group['id']}",
            "display": "Kör",
            "type": "direct",
        }
    ]
