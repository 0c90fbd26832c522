"""A user's groups as Graph v1.0 lists them: "List a user's direct memberships"
(learn.microsoft.com/graph/api/user-list-memberof) and "List ownedObjects"
(learn.microsoft.com/graph/api/user-list-ownedobjects)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.graph import SandboxTenant

EVENTUAL = {"ConsistencyLevel": "eventual"}


def _school(tenant: SandboxTenant) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A teacher who owns two classes (and, as SDS makes her, is a member of them) and owns a
    third without being a member; a student in the three classes."""
    graph = tenant.graph
    teacher = graph.create_teacher("Lärare", "Ett", school_id="S1")
    student = graph.create_student("Elev", "Ett", school_id="S1")
    classes = [
        graph.create_class(name, school_id="S1", teachers=[teacher] if i < 2 else [])
        for i, name in enumerate(("7A", "7B", "7C"))
    ]
    for cls in classes:
        graph.add_member(cls["id"], student["id"])
    graph.add_owner(classes[2]["id"], teacher["id"])
    return teacher, student, classes


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["value"]]


def test_member_of_lists_the_direct_groups_as_directory_objects(
    graph_tenant: SandboxTenant,
) -> None:
    # "HTTP request": GET /users/{id | userPrincipalName}/memberOf; the response is a
    # collection of directoryObject, each with its @odata.type
    teacher, student, classes = _school(graph_tenant)
    graph = graph_tenant.graph
    body = graph.get(f"/users/{student['id']}/memberOf").json()
    assert sorted(_ids(body)) == sorted(c["id"] for c in classes)
    assert {i["@odata.type"] for i in body["value"]} == {"#microsoft.graph.group"}
    assert body["@odata.context"].endswith("/$metadata#directoryObjects")
    by_upn = graph.get(f"/users/{student['userPrincipalName']}/memberOf").json()
    assert sorted(_ids(by_upn)) == sorted(_ids(body))
    # the teacher owns the third class without being a member: owning is not membership
    assert sorted(_ids(graph.get(f"/users/{teacher['id']}/memberOf").json())) == sorted(
        c["id"] for c in classes[:2]
    )


@pytest.mark.parametrize("namespace", ["microsoft.graph", "graph"])
def test_member_of_cast_to_groups_with_select(graph_tenant: SandboxTenant, namespace: str) -> None:
    # "Optional query parameters": OData cast is enabled ("/memberOf/microsoft.graph.group");
    # $select; the context is that of groups
    _, student, classes = _school(graph_tenant)
    body = graph_tenant.graph.get(
        f"/users/{student['id']}/memberOf/{namespace}.group?$select=id,displayName"
    ).json()
    assert sorted((i["id"], i["displayName"]) for i in body["value"]) == sorted(
        (c["id"], c["displayName"]) for c in classes
    )
    assert all(set(i) <= {"@odata.type", "id", "displayName"} for i in body["value"])
    assert "$metadata#groups(id,displayName)" in body["@odata.context"]


def test_member_of_pages_with_next_links(graph_tenant: SandboxTenant) -> None:
    # paging: $top with @odata.nextLink, as every directory relationship listing
    _, student, classes = _school(graph_tenant)
    graph = graph_tenant.graph
    first = graph.get(f"/users/{student['id']}/memberOf?$top=2").json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first
    rest = graph.get(first["@odata.nextLink"]).json()
    assert "@odata.nextLink" not in rest
    assert sorted(_ids(first) + _ids(rest)) == sorted(c["id"] for c in classes)


def test_member_of_count_needs_consistency_level(graph_tenant: SandboxTenant) -> None:
    # "$count" with "ConsistencyLevel: eventual" (advanced query capabilities)
    _, student, _ = _school(graph_tenant)
    graph = graph_tenant.graph
    url = f"/users/{student['id']}/memberOf/microsoft.graph.group/$count"
    assert graph.get(url).status_code == 400
    counted = graph.get(url, headers=EVENTUAL)
    assert counted.status_code == 200 and counted.text.strip() == "3"


def test_owned_objects_lists_the_groups_a_user_owns(graph_tenant: SandboxTenant) -> None:
    # "List ownedObjects": GET /users/{id | userPrincipalName}/ownedObjects; cast to groups
    teacher, student, classes = _school(graph_tenant)
    graph = graph_tenant.graph
    owned = graph.get(f"/users/{teacher['id']}/ownedObjects").json()
    assert sorted(_ids(owned)) == sorted(c["id"] for c in classes)
    cast = graph.get(f"/users/{teacher['id']}/ownedObjects/microsoft.graph.group?$select=id")
    assert sorted(_ids(cast.json())) == sorted(c["id"] for c in classes)
    assert _ids(graph.get(f"/users/{student['id']}/ownedObjects").json()) == []


def test_left_deleted_and_unknown(graph_tenant: SandboxTenant) -> None:
    # a group the user left, or one in the recycle bin, is not listed; an unknown user is 404
    teacher, student, classes = _school(graph_tenant)
    graph = graph_tenant.graph
    graph.remove_member(classes[2]["id"], student["id"])
    graph.delete_group(classes[1]["id"])
    assert _ids(graph.get(f"/users/{student['id']}/memberOf").json()) == [classes[0]["id"]]
    owned = _ids(graph.get(f"/users/{teacher['id']}/ownedObjects").json())
    assert sorted(owned) == sorted([classes[0]["id"], classes[2]["id"]])
    missing = graph.get("/users/00000000-0000-0000-0000-000000000000/memberOf")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
