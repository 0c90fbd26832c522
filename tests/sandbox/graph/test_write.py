"""Changing the tenant as an administrator would, and the recycle bin."""

from __future__ import annotations

import secrets

from common.graph import sds
from tests.fixtures.graph import SandboxTenant


def _user_body(tenant: SandboxTenant, **extra: object) -> dict[str, object]:
    local = f"ny.person.{secrets.token_hex(3)}"
    return {
        "accountEnabled": True,
        "displayName": "Ny Person",
        "mailNickname": local,
        "userPrincipalName": f"{local}@{tenant.domain}",
        "passwordProfile": {"password": secrets.token_urlsafe(12)},
        **extra,
    }


def test_created_user_answers_201_and_can_be_read_back(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.post("/users", json=_user_body(graph_tenant))
    assert response.status_code == 201
    created = response.json()
    assert created["@odata.context"].endswith("$metadata#users/$entity")
    assert "passwordProfile" not in created
    read = graph_tenant.graph.get(f"/users/{created['id']}?$select=id,accountEnabled,userType")
    assert read.json()["accountEnabled"] is True
    assert read.json()["userType"] == "Member"


def test_creating_a_user_without_a_required_property_is_refused(
    graph_tenant: SandboxTenant,
) -> None:
    body = _user_body(graph_tenant)
    del body["mailNickname"]
    response = graph_tenant.graph.post("/users", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert "mailNickname" in response.json()["error"]["message"]


def test_user_principal_name_must_use_a_verified_domain(graph_tenant: SandboxTenant) -> None:
    body = _user_body(graph_tenant, userPrincipalName="someone@not-our-domain.example")
    response = graph_tenant.graph.post("/users", json=body)
    assert response.status_code == 400
    assert "verified domain" in response.json()["error"]["message"]


def test_a_second_user_with_the_same_principal_name_is_refused(
    graph_tenant: SandboxTenant,
) -> None:
    body = _user_body(graph_tenant)
    assert graph_tenant.graph.post("/users", json=body).status_code == 201
    body["userPrincipalName"] = str(body["userPrincipalName"]).upper()
    again = graph_tenant.graph.post("/users", json=body)
    assert again.status_code == 400
    assert "userPrincipalName already exists" in again.json()["error"]["message"]


def test_patch_changes_properties_and_answers_204(graph_tenant: SandboxTenant) -> None:
    user = graph_tenant.graph.create_student("Lova", "Berg", school_id="S1")
    response = graph_tenant.graph.patch(
        f"/users/{user['id']}", json={"surname": "Bergström", "accountEnabled": False}
    )
    assert response.status_code == 204
    read = graph_tenant.graph.get(f"/users/{user['id']}?$select=surname,accountEnabled").json()
    assert (read["surname"], read["accountEnabled"]) == ("Bergström", False)


def test_sds_extension_attributes_can_be_written_but_unregistered_ones_cannot(
    graph_tenant: SandboxTenant,
) -> None:
    user = graph_tenant.graph.create_staff("Sixten", "Lind")
    ok = graph_tenant.graph.patch(f"/users/{user['id']}", json={sds.SCHOOL_ID: "S9"})
    assert ok.status_code == 204
    unknown = "extension_00000000000000000000000000000000_Shoe"
    refused = graph_tenant.graph.patch(f"/users/{user['id']}", json={unknown: "42"})
    assert refused.status_code == 400
    assert (
        "does not exist as a declared property or extension property"
        in (refused.json()["error"]["message"])
    )


def test_soft_deleted_user_goes_to_the_recycle_bin_and_comes_back_with_its_classes(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    student = graph.create_student("Ylva", "Hansson", school_id="S1")
    klass = graph.create_class("9C", school_id="S1", students=[student])
    graph.delete_user(student["id"])
    assert graph.get(f"/users/{student['id']}").status_code == 404
    assert graph.get(f"/groups/{klass['id']}/members").json()["value"] == []
    binned = graph.get("/directory/deletedItems/microsoft.graph.user").json()["value"]
    assert [u["id"] for u in binned] == [student["id"]]
    assert binned[0]["deletedDateTime"]
    single = graph.get(f"/directory/deletedItems/{student['id']}").json()
    assert single["@odata.type"] == "#microsoft.graph.user"

    restored = graph.restore(student["id"])
    assert restored["id"] == student["id"]
    assert graph.get(f"/users/{student['id']}").status_code == 200
    members = graph.get(f"/groups/{klass['id']}/members").json()["value"]
    assert [m["id"] for m in members] == [student["id"]]
    assert graph.get("/directory/deletedItems/microsoft.graph.user").json()["value"] == []


def test_purged_user_is_gone_from_the_recycle_bin(graph_tenant: SandboxTenant) -> None:
    graph = graph_tenant.graph
    user = graph.create_staff("Gösta", "Ek")
    graph.delete_user(user["id"])
    graph.purge(user["id"])
    assert graph.get(f"/directory/deletedItems/{user['id']}").status_code == 404
    assert graph.post(f"/directory/deletedItems/{user['id']}/restore").status_code == 404


def test_microsoft_365_groups_are_soft_deleted_and_security_groups_are_not(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    klass = graph.create_class("6A", school_id="S1")
    security = graph.post(
        "/groups",
        json={
            "displayName": "IT",
            "mailNickname": "it",
            "mailEnabled": False,
            "securityEnabled": True,
        },
    ).json()
    graph.delete_group(klass["id"])
    graph.delete_group(security["id"])
    binned = graph.get("/directory/deletedItems/microsoft.graph.group").json()["value"]
    assert [g["id"] for g in binned] == [klass["id"]]
    assert graph.get(f"/directory/deletedItems/{security['id']}").status_code == 404


def test_adding_a_member_twice_or_removing_a_stranger_is_refused(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    student = graph.create_student("Klara", "Öhman", school_id="S1")
    other = graph.create_student("Vera", "Åström", school_id="S1")
    klass = graph.create_class("5B", school_id="S1", students=[student])
    again = graph.post(
        f"/groups/{klass['id']}/members/$ref",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{student['id']}"},
    )
    assert again.status_code == 400
    assert "already exist" in again.json()["error"]["message"]
    stranger = graph.delete(f"/groups/{klass['id']}/members/{other['id']}/$ref")
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "Request_ResourceNotFound"


def test_members_and_owners_can_be_bound_when_a_group_is_created(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    teacher = graph.create_teacher("Stina", "Holm", school_id="S1")
    student = graph.create_student("Hugo", "Sund", school_id="S1")
    base = "https://graph.microsoft.com/v1.0/directoryObjects/"
    created = graph.post(
        "/groups",
        json={
            "displayName": "Matematik 7",
            "mailNickname": "ma7",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "owners@odata.bind": [base + teacher["id"]],
            "members@odata.bind": [base + teacher["id"], base + student["id"]],
        },
    )
    assert created.status_code == 201
    group_id = created.json()["id"]
    members = {m["id"] for m in graph.get(f"/groups/{group_id}/members").json()["value"]}
    assert members == {teacher["id"], student["id"]}
    owners = [o["id"] for o in graph.get(f"/groups/{group_id}/owners").json()["value"]]
    assert owners == [teacher["id"]]
