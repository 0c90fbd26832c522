"""Every URL form Microsoft documents for the endpoints the sandbox serves is answered as Graph
answers it. Each test names the Graph v1.0 page (learn.microsoft.com/graph/api/...) it is
written from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.graph import SandboxTenant

EVENTUAL = {"ConsistencyLevel": "eventual"}


def _school(tenant: SandboxTenant) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """A class with a teacher and two students, and a plain group as a member of it."""
    graph = tenant.graph
    teacher = graph.create_teacher("Lärare", "Ett", school_id="S1")
    students = [graph.create_student("Elev", f"Nr{i}", school_id="S1") for i in range(2)]
    klass = graph.create_class("7A", school_id="S1", teachers=[teacher], students=students)
    other = graph.create_class("7B", school_id="S1")
    graph.add_member(klass["id"], other["id"])
    return klass, [teacher, *students], other


def _ids(body: dict[str, Any]) -> set[str]:
    return {item["id"] for item in body["value"]}


# --- user: delta, group: delta -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["users", "groups"])
@pytest.mark.parametrize("spelling", ["delta()", "microsoft.graph.delta()", "graph.delta"])
def test_delta_function_call_spellings_answer_as_delta(
    graph_tenant: SandboxTenant, kind: str, spelling: str
) -> None:
    # "user: delta" / "group: delta": GET /users/delta, GET /groups/delta; the SDKs call the
    # function as /users/delta() and OData allows the namespace-qualified name
    _school(graph_tenant)
    graph = graph_tenant.graph
    plain = graph.all_pages(f"/{kind}/delta?$select=id,displayName")
    spelled = graph.get(f"/{kind}/{spelling}?$select=id,displayName")
    assert spelled.status_code == 200
    body = spelled.json()
    assert "@odata.deltaLink" in body or "@odata.nextLink" in body
    rounds = [body]
    while "@odata.nextLink" in rounds[-1]:
        rounds.append(graph.get(rounds[-1]["@odata.nextLink"]).json())
    assert {i["id"] for r in rounds for i in r["value"]} == {i["id"] for i in plain}
    assert "/delta?" in rounds[-1]["@odata.deltaLink"]  # the link Graph gives is canonical


# --- List deletedItems ---------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["microsoft.graph", "graph"])
@pytest.mark.parametrize("segment", ["deletedItems", "deleteditems"])
def test_deleted_items_type_cast_in_both_spellings(
    graph_tenant: SandboxTenant, namespace: str, segment: str
) -> None:
    # "List deletedItems (directory objects)": GET /directory/deletedItems/microsoft.graph.user
    # and .../microsoft.graph.group (written /directory/deleteditems/... on the same page);
    # "@odata.context": ".../$metadata#groups" for deleted groups
    klass, (teacher, *_), _ = _school(graph_tenant)
    graph = graph_tenant.graph
    graph.delete_user(teacher["id"])
    graph.delete_group(klass["id"])
    users = graph.get(f"/directory/{segment}/{namespace}.user").json()
    groups = graph.get(f"/directory/{segment}/{namespace}.group").json()
    assert _ids(users) == {teacher["id"]}
    assert _ids(groups) == {klass["id"]}
    assert users["@odata.context"].endswith("/$metadata#users")
    assert groups["@odata.context"].endswith("/$metadata#groups")


def test_deleted_items_without_a_type_cast_is_refused(graph_tenant: SandboxTenant) -> None:
    # "List deletedItems": "calling GET /directory/deleteditems without a type is not supported"
    assert graph_tenant.graph.get("/directory/deletedItems").status_code == 400


@pytest.mark.parametrize("action", ["restore", "microsoft.graph.restore", "graph.restore"])
def test_restore_action_spellings(graph_tenant: SandboxTenant, action: str) -> None:
    # "Restore deleted item (directory object)": POST /directory/deletedItems/{id}/restore
    student = graph_tenant.graph.create_student("Elev", "Borta", school_id="S1")
    graph_tenant.graph.delete_user(student["id"])
    restored = graph_tenant.graph.post(f"/directory/deletedItems/{student['id']}/{action}")
    assert restored.status_code == 200
    assert graph_tenant.graph.get(f"/users/{student['id']}").status_code == 200


# --- List group members ----------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["microsoft.graph", "graph"])
def test_members_type_cast_lists_only_that_type(
    graph_tenant: SandboxTenant, namespace: str
) -> None:
    # "List group members": "Use OData cast to get only members that are users":
    # GET /groups/{id}/members/microsoft.graph.user
    klass, people, other = _school(graph_tenant)
    graph = graph_tenant.graph
    users = graph.get(f"/groups/{klass['id']}/members/{namespace}.user?$select=id").json()
    groups = graph.get(f"/groups/{klass['id']}/members/{namespace}.group").json()
    assert _ids(users) == {p["id"] for p in people}
    assert _ids(groups) == {other["id"]}
    assert users["@odata.context"].endswith("/$metadata#users(id)")
    everyone = graph.get(f"/groups/{klass['id']}/members").json()
    assert _ids(everyone) == _ids(users) | _ids(groups)


def test_members_ref_adds_and_ref_delete_removes(graph_tenant: SandboxTenant) -> None:
    # "Add members": POST /groups/{id}/members/$ref with {"@odata.id": ".../directoryObjects/{id}"}
    # "Remove member": DELETE /groups/{id}/members/{directoryObjectId}/$ref, 204 both
    klass, _, _ = _school(graph_tenant)
    graph = graph_tenant.graph
    newcomer = graph.create_student("Ny", "Elev", school_id="S1")
    ref = {"@odata.id": f"{graph.graph_url}/directoryObjects/{newcomer['id']}"}
    assert graph.post(f"/groups/{klass['id']}/members/$ref", json=ref).status_code == 204
    assert newcomer["id"] in _ids(graph.get(f"/groups/{klass['id']}/members").json())
    gone = graph.delete(f"/groups/{klass['id']}/members/{newcomer['id']}/$ref")
    assert gone.status_code == 204
    assert newcomer["id"] not in _ids(graph.get(f"/groups/{klass['id']}/members").json())


# --- $count ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/$count", 3),
        ("/groups/$count", 2),
        ("/groups/{class}/members/$count", 4),
        ("/groups/{class}/members/microsoft.graph.user/$count", 3),
        ("/groups/{class}/members/graph.group/$count", 1),
        ("/directory/deletedItems/graph.user/$count", 0),
    ],
)
def test_count_segment_answers_a_plain_text_number(
    graph_tenant: SandboxTenant, path: str, expected: int
) -> None:
    # "List users" Example "Get only a count of users": GET /users/$count, ConsistencyLevel:
    # eventual, "Content-type: text/plain" and the number; "Use query parameters" (Other OData
    # URL capabilities): GET /groups/{id}/members/$count; "List deletedItems" supports $count
    klass, _, _ = _school(graph_tenant)
    response = graph_tenant.graph.get(path.format(**{"class": klass["id"]}), headers=EVENTUAL)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == str(expected)


def test_deleted_items_count_counts_the_recycle_bin(graph_tenant: SandboxTenant) -> None:
    _, (teacher, student, _), _ = _school(graph_tenant)
    graph_tenant.graph.delete_user(teacher["id"])
    graph_tenant.graph.delete_user(student["id"])
    counted = graph_tenant.graph.get(
        "/directory/deletedItems/microsoft.graph.user/$count", headers=EVENTUAL
    )
    assert counted.text == "2"


def test_count_segment_takes_a_filter(graph_tenant: SandboxTenant) -> None:
    # "List users": GET /users/$count?$filter=... with ConsistencyLevel: eventual
    _school(graph_tenant)
    response = graph_tenant.graph.get(
        "/users/$count?$filter=startswith(displayName,'Elev')", headers=EVENTUAL
    )
    assert response.text == "2"


@pytest.mark.parametrize("path", ["/users/$count", "/groups/$count"])
def test_count_segment_without_consistency_level_is_graphs_error(
    graph_tenant: SandboxTenant, path: str
) -> None:
    # "Advanced query capabilities on Microsoft Entra ID objects": $count as a URL segment is
    # an advanced query; without the header Graph answers 400 Request_BadRequest
    # "$count is not currently supported."
    response = graph_tenant.graph.get(path)
    assert response.status_code == 400
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "Request_BadRequest",
        "message": "$count is not currently supported.",
    }


def test_count_query_parameter_in_lists(graph_tenant: SandboxTenant) -> None:
    # "List users" / "List group members": $count=true with ConsistencyLevel: eventual adds
    # @odata.count; without the header the list is answered without it ("Advanced query
    # capabilities": such parameters "fail silently")
    klass, _, _ = _school(graph_tenant)
    graph = graph_tenant.graph
    counted = graph.get(f"/groups/{klass['id']}/members?$count=true", headers=EVENTUAL).json()
    assert counted["@odata.count"] == 4
    assert "@odata.count" not in graph.get(f"/groups/{klass['id']}/members?$count=true").json()


# --- Get user, Get group: keys ---------------------------------------------------------------


def test_a_user_by_id_by_user_principal_name_and_in_parentheses(
    graph_tenant: SandboxTenant,
) -> None:
    # "Get a user": GET /users/{id | userPrincipalName}; a userPrincipalName that begins with
    # "$" fails as /users/$x@y.com (400) and works as /users('$x@y.com')
    graph = graph_tenant.graph
    student = graph.create_student("Elev", "Ett", school_id="S1")
    upn = student["userPrincipalName"]
    for path in (f"/users/{student['id']}", f"/users/{upn}", f"/users('{upn}')"):
        body = graph.get(path).json()
        assert body["id"] == student["id"], path
    dollar = f"$dollar@{graph.domain}"
    created = graph.post(
        "/users",
        json={
            "accountEnabled": True,
            "displayName": "Dollar",
            "mailNickname": "dollar",
            "userPrincipalName": dollar,
            "passwordProfile": {"password": "Sandbox-Passw0rd!"},
        },
    )
    assert created.status_code == 201, created.text
    assert graph.get(f"/users('{dollar}')").json()["id"] == created.json()["id"]
    assert graph.get(f"/users/{dollar}").status_code == 400


def test_a_group_by_id_as_segment_and_in_parentheses(graph_tenant: SandboxTenant) -> None:
    # "Get group": GET /groups/{id}; OData key syntax /groups('{id}') is the same resource
    klass, _, _ = _school(graph_tenant)
    graph = graph_tenant.graph
    assert graph.get(f"/groups('{klass['id']}')").json()["id"] == klass["id"]
    assert _ids(graph.get(f"/groups('{klass['id']}')/members").json())


# --- the URL itself ----------------------------------------------------------------------------


def test_a_doubled_slash_after_the_version_is_the_same_request(graph_tenant: SandboxTenant) -> None:
    # Graph parses paths with Microsoft's OData library, which skips empty segments
    # (OData/odata.net, UriPathParser.ParsePathIntoSegments), so /v1.0//users is /v1.0/users
    _school(graph_tenant)
    graph = graph_tenant.graph
    doubled = graph.get("//users?$select=id")
    assert doubled.status_code == 200
    assert _ids(doubled.json()) == _ids(graph.get("/users?$select=id").json())


def test_batch_inner_requests_take_the_same_spellings(graph_tenant: SandboxTenant) -> None:
    # "Combine multiple requests in one HTTP call using JSON batching": each inner "url" is a
    # relative URL of any request Graph serves
    klass, _, _ = _school(graph_tenant)
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/users/delta()?$select=id"},
            {"id": "2", "method": "GET", "url": f"/groups/{klass['id']}/members/graph.user"},
            {"id": "3", "method": "GET", "url": "/users/$count", "headers": EVENTUAL},
        ]
    }
    answers = graph_tenant.graph.post("/$batch", json=body).json()["responses"]
    by_id = {a["id"]: a for a in answers}
    assert {i: a["status"] for i, a in by_id.items()} == {"1": 200, "2": 200, "3": 200}
    assert len(by_id["2"]["body"]["value"]) == 3
    assert by_id["3"]["body"] == "3"
    assert by_id["3"]["headers"]["Content-Type"].startswith("text/plain")


# URL templates of Microsoft's Python SDK (msgraph-sdk 1.65.0, msgraph/generated/**/
# *_request_builder.py, generated from Graph v1.0's OpenAPI description) for the GET requests
# of the collections the sandbox serves and the objects in them
SDK_GET_TEMPLATES = [
    "/users",
    "/users/$count",
    "/users/delta()",
    "/users/{user}",
    "/groups",
    "/groups/$count",
    "/groups/delta()",
    "/groups/{group}",
    *(
        f"/groups/{{group}}/{link}{cast}{count}"
        for link in ("members", "owners")
        for cast in ("", "/graph.user", "/graph.group")
        for count in ("", "/$count")
    ),
    "/directory/deletedItems/graph.user",
    "/directory/deletedItems/graph.user/$count",
    "/directory/deletedItems/graph.group",
    "/directory/deletedItems/graph.group/$count",
    "/education/users",
    "/education/users/$count",
    "/education/classes",
    "/education/classes/$count",
    "/education/schools",
    "/education/schools/$count",
    "/subscriptions",
]


@pytest.mark.parametrize("template", SDK_GET_TEMPLATES)
def test_every_sdk_url_template_for_what_the_sandbox_serves_answers(
    graph_tenant: SandboxTenant, template: str
) -> None:
    klass, people, _ = _school(graph_tenant)
    path = template.format(user=people[0]["id"], group=klass["id"])
    response = graph_tenant.graph.get(path, headers=EVENTUAL)
    assert response.status_code == 200, response.text
    if template.endswith("/$count"):
        assert response.text.isdigit()
    else:
        assert isinstance(response.json(), dict)
