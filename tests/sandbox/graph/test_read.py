"""Reading the directory as Graph serves it: paging, $select, $filter, members, $batch."""

from __future__ import annotations

from typing import Any

import pytest

from common.graph import sds
from tests.fixtures.graph import SandboxTenant


def _people(tenant: SandboxTenant, count: int) -> list[dict[str, Any]]:
    return [tenant.graph.create_student("Elev", f"Nummer{i}", school_id="S1") for i in range(count)]


def test_listing_pages_with_next_links_until_every_user_was_seen(
    graph_tenant: SandboxTenant,
) -> None:
    created = {p["id"] for p in _people(graph_tenant, 5)}
    first = graph_tenant.graph.get("/users?$top=2&$select=id").json()
    assert len(first["value"]) == 2
    assert "$top=2" in first["@odata.nextLink"] and "$skiptoken=" in first["@odata.nextLink"]
    seen = graph_tenant.graph.all_pages("/users?$top=2&$select=id")
    assert sorted(u["id"] for u in seen) == sorted(created)  # each user once


def test_top_above_999_is_refused(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.get("/users?$top=1000")
    assert response.status_code == 400
    assert "between 1 and 999" in response.json()["error"]["message"]


def test_extension_attributes_only_appear_when_selected(graph_tenant: SandboxTenant) -> None:
    student = graph_tenant.graph.create_student("Märta", "Åberg", school_id="S1", grade="7")
    plain = graph_tenant.graph.get(f"/users/{student['id']}").json()
    assert sds.OBJECT_TYPE not in plain
    assert plain["displayName"] == "Märta Åberg"
    assert "accountEnabled" not in plain  # not a default property
    chosen = graph_tenant.graph.get(
        f"/users/{student['id']}?$select=id,accountEnabled,{sds.OBJECT_TYPE},{sds.GRADE}"
    ).json()
    assert {k for k in chosen if not k.startswith("@odata")} == {
        "id",
        "accountEnabled",
        sds.OBJECT_TYPE,
        sds.GRADE,
    }
    assert chosen[sds.OBJECT_TYPE] == "Student"
    assert chosen[sds.GRADE] == "7"


def test_selecting_an_unknown_property_is_refused(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.get("/users?$select=id,shoeSize")
    assert response.status_code == 400
    assert "shoeSize" in response.json()["error"]["message"]


def test_filters_the_product_uses(graph_tenant: SandboxTenant) -> None:
    graph = graph_tenant.graph
    anna = graph.create_student("Anna", "Lind", school_id="S1", mail=f"Anna.Lind@{graph.domain}")
    teacher = graph.create_teacher("Björn", "Ek", school_id="S2")
    staff = graph.create_staff("Östen", "Ström")

    def ids(query: str, **kw: Any) -> set[str]:
        response = graph.get(f"/users?$select=id&{query}", **kw)
        assert response.status_code == 200, response.text
        return {u["id"] for u in response.json()["value"]}

    assert ids(f"$filter=mail eq 'anna.lind@{graph.domain.upper()}'") == {anna["id"]}
    assert ids("$filter=startswith(displayName,'Ö')") == {staff["id"]}
    assert ids(f"$filter={sds.OBJECT_TYPE} eq 'Teacher'") == {teacher["id"]}
    assert ids(f"$filter=id in ('{anna['id']}','{staff['id']}')") == {anna["id"], staff["id"]}
    assert ids(f"$filter={sds.SCHOOL_ID} eq 'S1' or {sds.SCHOOL_ID} eq 'S2'") == {
        anna["id"],
        teacher["id"],
    }
    assert ids(f"$filter=userType eq 'Member' and {sds.OBJECT_TYPE} eq 'Student'") == {anna["id"]}
    klass = graph.create_class("7A", school_id="S1", students=[anna])
    groups = graph.get("/groups?$select=id&$filter=groupTypes/any(c:c eq 'Unified')").json()
    assert [g["id"] for g in groups["value"]] == [klass["id"]]


def test_advanced_filters_need_consistency_level_eventual(graph_tenant: SandboxTenant) -> None:
    graph_tenant.graph.create_staff("Åke", "Hägg")
    query = "/users?$filter=endswith(displayName,'Hägg')"
    refused = graph_tenant.graph.get(query)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    allowed = graph_tenant.graph.get(query, headers={"ConsistencyLevel": "eventual"})
    assert [u["displayName"] for u in allowed.json()["value"]] == ["Åke Hägg"]


def test_users_are_found_by_id_and_by_principal_name(graph_tenant: SandboxTenant) -> None:
    staff = graph_tenant.graph.create_staff("Jöns", "Källström")
    by_upn = graph_tenant.graph.get(f"/users/{staff['userPrincipalName'].upper()}").json()
    assert by_upn["id"] == staff["id"]
    assert by_upn["@odata.context"].endswith("$metadata#users/$entity")


def test_members_and_owners_are_listed_as_typed_directory_objects(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    teacher = graph.create_teacher("Karin", "Nyström", school_id="S1")
    students = _people(graph_tenant, 3)
    klass = graph.create_class("8B", school_id="S1", teachers=[teacher], students=students)
    members = graph.all_pages(f"/groups/{klass['id']}/members?$top=2")
    assert {m["id"] for m in members} == {teacher["id"], *(s["id"] for s in students)}
    assert {m["@odata.type"] for m in members} == {"#microsoft.graph.user"}
    owners = graph.get(f"/groups/{klass['id']}/owners").json()["value"]
    assert [o["id"] for o in owners] == [teacher["id"]]


def test_batch_answers_each_request_by_id_with_outer_200(graph_tenant: SandboxTenant) -> None:
    staff = graph_tenant.graph.create_staff("Sölve", "Öhman")
    requests_ = [
        {"id": "a", "method": "GET", "url": f"/users/{staff['id']}?$select=id,displayName"},
        {"id": "b", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        {"id": "c", "method": "GET", "url": "/groups?$top=1"},
    ]
    response = graph_tenant.graph.post("/$batch", json={"requests": requests_})
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["a"]["status"] == 200
    assert answers["a"]["body"]["displayName"] == "Sölve Öhman"
    assert answers["b"]["status"] == 404
    assert answers["b"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert answers["c"]["status"] == 200


def test_batch_of_more_than_twenty_requests_is_refused(graph_tenant: SandboxTenant) -> None:
    requests_ = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    response = graph_tenant.graph.post("/$batch", json={"requests": requests_})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize("path", ["/users", "/groups", "/education/users", "/subscriptions"])
def test_empty_collections_answer_an_empty_page(graph_tenant: SandboxTenant, path: str) -> None:
    body = graph_tenant.graph.get(path).json()
    assert body["value"] == []
    assert "@odata.nextLink" not in body


def test_count_needs_consistency_level_eventual(graph_tenant: SandboxTenant) -> None:
    # "Advanced query capabilities on Microsoft Entra ID objects": without the header,
    # GET /users?$count=true answers 200 with no @odata.count (the parameter "fails silently")
    _people(graph_tenant, 3)
    silent = graph_tenant.graph.get("/users?$count=true&$top=1")
    assert silent.status_code == 200
    assert "@odata.count" not in silent.json()
    counted = graph_tenant.graph.get(
        "/users?$count=true&$top=1", headers={"ConsistencyLevel": "eventual"}
    ).json()
    assert counted["@odata.count"] == 3
    assert len(counted["value"]) == 1
