"""ETags: meta.version, If-Match (412 when stale) and If-None-Match (304)."""

from __future__ import annotations

from tests.fixtures.portal import PortalOrg
from tests.sandbox.portal.bodies import create_group, create_user, patch, user_body

RENAME = {"op": "replace", "path": "displayName", "value": "Nytt"}


def test_etag_header_equals_meta_version_and_changes_on_write(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "etag@skola.se")

    read = portal_org.scim.get(f"/Users/{user['id']}")
    after = patch(portal_org, f"/Users/{user['id']}", RENAME)

    assert read.headers["ETag"] == read.json()["meta"]["version"] == user["meta"]["version"]
    assert after.headers["ETag"] == after.json()["meta"]["version"] != user["meta"]["version"]


def test_if_none_match_with_the_current_version_is_304(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "cache@skola.se")
    version = user["meta"]["version"]

    same = portal_org.scim.get(f"/Users/{user['id']}", headers={"If-None-Match": version})
    patch(portal_org, f"/Users/{user['id']}", RENAME)
    changed = portal_org.scim.get(f"/Users/{user['id']}", headers={"If-None-Match": version})

    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == version
    assert changed.status_code == 200
    assert changed.json()["displayName"] == "Nytt"


def test_stale_if_match_is_412_and_changes_nothing(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "stale@skola.se")
    stale = user["meta"]["version"]
    patch(portal_org, f"/Users/{user['id']}", RENAME)
    current = portal_org.scim.get(f"/Users/{user['id']}").json()

    responses = [
        patch(
            portal_org,
            f"/Users/{user['id']}",
            {"op": "replace", "path": "title", "value": "x"},
            headers={"If-Match": stale},
        ),
        portal_org.scim.put(
            f"/Users/{user['id']}", json=user_body("stale@skola.se"), headers={"If-Match": stale}
        ),
        portal_org.scim.delete(f"/Users/{user['id']}", headers={"If-Match": stale}),
    ]

    for response in responses:
        assert response.status_code == 412
        assert response.json()["status"] == "412"
    assert portal_org.scim.get(f"/Users/{user['id']}").json() == current


def test_current_if_match_lets_the_write_through(portal_org: PortalOrg) -> None:
    group = create_group(portal_org, "8B")
    version = group["meta"]["version"]

    changed = patch(
        portal_org,
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "8B Sv"},
        headers={"If-Match": version},
    )
    deleted = portal_org.scim.delete(
        f"/Groups/{group['id']}", headers={"If-Match": changed.headers["ETag"]}
    )

    assert changed.status_code == 200
    assert deleted.status_code == 204


def test_if_match_star_matches_any_version(portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "star@skola.se")

    response = patch(portal_org, f"/Users/{user['id']}", RENAME, headers={"If-Match": "*"})

    assert response.status_code == 200


def test_a_member_leaving_by_user_deletion_gives_the_group_a_new_version(
    portal_org: PortalOrg,
) -> None:
    member = create_user(portal_org, "lamnar@skola.se")
    group = create_group(portal_org, "9A", [member["id"]])

    portal_org.scim.delete(f"/Users/{member['id']}")
    after = portal_org.scim.get(f"/Groups/{group['id']}").json()

    assert after["meta"]["version"] != group["meta"]["version"]
    assert "members" not in after
