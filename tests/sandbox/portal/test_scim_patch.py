"""PATCH (RFC 7644 §3.5.2): add, replace and remove, with and without paths, value paths,
extension URNs, operation names in any case, and atomicity."""

from __future__ import annotations

from typing import Any

import pytest

from common.portal.scim import ENTERPRISE_USER_SCHEMA, SCHOOL_GROUP_SCHEMA, SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg
from tests.sandbox.portal.bodies import create_group, create_user, patch


def patched(org: PortalOrg, path: str, *operations: dict[str, Any]) -> dict[str, Any]:
    response = patch(org, path, *operations)
    assert response.status_code == 200, response.text
    stored = org.scim.get(path).json()
    assert response.json() == stored
    return stored


@pytest.fixture
def user(portal_org: PortalOrg) -> dict[str, Any]:
    return create_user(
        portal_org,
        "patch@skola.se",
        **{SCHOOL_USER_SCHEMA: {"role": "student", "schools": ["S1"], "grade": "6"}},
    )


def test_replace_with_a_path(portal_org: PortalOrg, user: dict[str, Any]) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "displayName", "value": "Nytt Namn"},
        {"op": "replace", "path": "name.givenName", "value": "Ny"},
    )

    assert got["displayName"] == "Nytt Namn"
    assert got["name"] == {"givenName": "Ny", "familyName": "Öberg"}


def test_replace_without_a_path_merges_attributes(portal_org: PortalOrg, user: dict) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {
            "op": "replace",
            "value": {
                "active": False,
                "name": {"familyName": "Ek"},
                SCHOOL_USER_SCHEMA: {"grade": "7"},
            },
        },
    )

    assert got["active"] is False
    assert got["name"] == {"givenName": "Åsa", "familyName": "Ek"}
    assert got[SCHOOL_USER_SCHEMA] == {"role": "student", "schools": ["S1"], "grade": "7"}


@pytest.mark.parametrize("op", ["replace", "Replace", "REPLACE"])
@pytest.mark.parametrize("value", [False, "False", "false"])
def test_active_accepts_any_op_case_and_string_booleans(
    portal_org: PortalOrg, user: dict[str, Any], op: str, value: Any
) -> None:
    got = patched(portal_org, f"/Users/{user['id']}", {"op": op, "path": "active", "value": value})

    assert got["active"] is False


def test_add_appends_to_multi_valued_attributes(portal_org: PortalOrg, user: dict) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "Add", "path": f"{SCHOOL_USER_SCHEMA}:schools", "value": ["S2"]},
        {"op": "add", "path": "emails", "value": [{"value": "hem@hemma.se", "type": "home"}]},
    )

    assert got[SCHOOL_USER_SCHEMA]["schools"] == ["S1", "S2"]
    assert [e["value"] for e in got["emails"]] == ["patch@skola.se", "hem@hemma.se"]


def test_add_of_a_value_already_there_changes_nothing(portal_org: PortalOrg, user: dict) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "add", "path": f"{SCHOOL_USER_SCHEMA}:schools", "value": ["S1"]},
    )

    assert got[SCHOOL_USER_SCHEMA]["schools"] == ["S1"]
    assert got["meta"]["version"] == user["meta"]["version"]


def test_add_without_a_path(portal_org: PortalOrg, user: dict[str, Any]) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {
            "op": "add",
            "value": {
                "title": "Elevrådsordförande",
                ENTERPRISE_USER_SCHEMA: {"department": "Högstadiet"},
                f"{SCHOOL_USER_SCHEMA}:grade": "9",
            },
        },
    )

    assert got["title"] == "Elevrådsordförande"
    assert got[ENTERPRISE_USER_SCHEMA] == {"department": "Högstadiet"}
    assert got[SCHOOL_USER_SCHEMA]["grade"] == "9"
    assert ENTERPRISE_USER_SCHEMA in got["schemas"]


def test_value_path_with_sub_attribute_replaces_matching_values(
    portal_org: PortalOrg, user: dict[str, Any]
) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ny@skola.se"},
    )

    assert got["emails"] == [{"value": "ny@skola.se", "type": "work", "primary": True}]


def test_add_with_unmatched_value_path_creates_the_value(portal_org: PortalOrg) -> None:
    plain = create_user(portal_org, "utan@skola.se", emails=None)

    got = patched(
        portal_org,
        f"/Users/{plain['id']}",
        {"op": "add", "path": 'emails[type eq "work"].value', "value": "jobb@skola.se"},
    )

    assert got["emails"] == [{"type": "work", "value": "jobb@skola.se"}]


def test_replace_with_unmatched_value_path_is_400_no_target(
    portal_org: PortalOrg, user: dict[str, Any]
) -> None:
    response = patch(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@y.se"},
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "noTarget"


def test_primary_true_on_one_email_clears_it_on_the_others(
    portal_org: PortalOrg, user: dict[str, Any]
) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "add", "path": "emails", "value": [{"value": "ny@skola.se", "primary": True}]},
    )

    assert [(e["value"], e.get("primary")) for e in got["emails"]] == [
        ("patch@skola.se", False),
        ("ny@skola.se", True),
    ]


def test_remove_with_paths(portal_org: PortalOrg, user: dict[str, Any]) -> None:
    got = patched(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": f"{SCHOOL_USER_SCHEMA}:grade"},
        {"op": "remove", "path": 'emails[value eq "PATCH@skola.se"]'},
    )

    assert got["name"] == {"familyName": "Öberg"}
    assert got[SCHOOL_USER_SCHEMA] == {"role": "student", "schools": ["S1"]}
    assert "emails" not in got


def test_remove_of_a_whole_extension(portal_org: PortalOrg, user: dict[str, Any]) -> None:
    got = patched(portal_org, f"/Users/{user['id']}", {"op": "remove", "path": SCHOOL_USER_SCHEMA})

    assert SCHOOL_USER_SCHEMA not in got
    assert got["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]


def test_remove_without_a_path_is_400_no_target(portal_org: PortalOrg, user: dict) -> None:
    response = patch(portal_org, f"/Users/{user['id']}", {"op": "remove"})

    assert response.status_code == 400
    assert response.json()["scimType"] == "noTarget"


@pytest.fixture
def klass(portal_org: PortalOrg) -> dict[str, Any]:
    members = [create_user(portal_org, f"elev{n}@skola.se")["id"] for n in range(4)]
    group = create_group(
        portal_org, "7A", members[:2], externalId="e-7a", **{SCHOOL_GROUP_SCHEMA: {"school": "S1"}}
    )
    return {"group": group, "members": members}


def member_ids(group: dict[str, Any]) -> list[str]:
    return [m["value"] for m in group.get("members", [])]


def test_members_add_and_remove_by_value_path(portal_org: PortalOrg, klass: dict) -> None:
    a, b, c, d = klass["members"]
    path = f"/Groups/{klass['group']['id']}"

    got = patched(
        portal_org,
        path,
        {"op": "add", "path": "members", "value": [{"value": c}, {"value": d}]},
        {"op": "remove", "path": f'members[value eq "{a}"]'},
    )

    assert member_ids(got) == [b, c, d]
    assert got[SCHOOL_GROUP_SCHEMA] == {"school": "S1"}


def test_removing_an_absent_member_changes_nothing(portal_org: PortalOrg, klass: dict) -> None:
    path = f"/Groups/{klass['group']['id']}"

    got = patched(portal_org, path, {"op": "remove", "path": 'members[value eq "not-a-member"]'})

    assert member_ids(got) == klass["members"][:2]
    assert got["meta"]["version"] == klass["group"]["meta"]["version"]


def test_remove_members_listed_in_value(portal_org: PortalOrg, klass: dict) -> None:
    a, b, _, _ = klass["members"]
    path = f"/Groups/{klass['group']['id']}"

    got = patched(portal_org, path, {"op": "Remove", "path": "members", "value": [{"value": a}]})

    assert member_ids(got) == [b]


def test_replace_and_remove_all_members(portal_org: PortalOrg, klass: dict) -> None:
    _, _, c, d = klass["members"]
    path = f"/Groups/{klass['group']['id']}"

    replaced = patched(
        portal_org,
        path,
        {"op": "replace", "path": "members", "value": [{"value": d}, {"value": c}]},
    )
    emptied = patched(portal_org, path, {"op": "remove", "path": "members"})

    assert member_ids(replaced) == [d, c]
    assert "members" not in emptied


def test_group_display_name_and_school_by_replace_without_path(
    portal_org: PortalOrg, klass: dict
) -> None:
    path = f"/Groups/{klass['group']['id']}"

    got = patched(
        portal_org,
        path,
        {"op": "replace", "value": {"displayName": "7A Ma", SCHOOL_GROUP_SCHEMA: {"school": "S2"}}},
    )

    assert got["displayName"] == "7A Ma"
    assert got[SCHOOL_GROUP_SCHEMA] == {"school": "S2"}
    assert member_ids(got) == klass["members"][:2]


def test_a_failing_operation_keeps_nothing_of_the_request(
    portal_org: PortalOrg, user: dict
) -> None:
    response = patch(
        portal_org,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "displayName", "value": "Ska inte synas"},
        {"op": "replace", "path": "nosuch", "value": 1},
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidPath"
    assert portal_org.scim.get(f"/Users/{user['id']}").json() == user


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "x"}]}, "mutability"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        (
            {"op": "replace", "path": f"{SCHOOL_USER_SCHEMA}:role", "value": "rektor"},
            "invalidValue",
        ),
        ({"op": "remove", "path": "userName"}, "invalidValue"),
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[kind eq "work"].value', "value": "x"}, "invalidFilter"),
    ],
)
def test_bad_operations_name_the_problem(
    portal_org: PortalOrg, user: dict[str, Any], operation: dict[str, Any], scim_type: str
) -> None:
    response = patch(portal_org, f"/Users/{user['id']}", operation)

    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == scim_type


def test_patch_body_must_be_a_patch_op(portal_org: PortalOrg, user: dict[str, Any]) -> None:
    response = portal_org.scim.patch(
        f"/Users/{user['id']}", json={"Operations": [{"op": "remove", "path": "title"}]}
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
