"""Every property the sandbox answers with has Graph v1.0's name, letter case and type, and the
answers carry Graph's headers.

Types and nullability come from ``graph_metadata`` (Graph v1.0's published ``$metadata``);
values are checked as OData JSON writes them (OData JSON Format 4.01, 7.1: ``Edm.Date`` is
``YYYY-MM-DD``, ``Edm.DateTimeOffset`` an RFC 3339 timestamp; collections are never null).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.sandbox.graph.graph_metadata import ENUMS, TYPES
from tests.sandbox.graph.webhook import Receiver

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_TIME_OFFSET = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$"
)
EVENTUAL = {"ConsistencyLevel": "eventual"}


def check_entity(obj: dict[str, Any], type_name: str, where: str) -> list[str]:
    """Every way ``obj`` differs from Graph's ``type_name`` (empty when it does not)."""
    props = TYPES[type_name]
    problems = []
    for name, value in obj.items():
        if "@" in name or name.startswith("extension_"):
            continue  # annotations (@odata.type, members@delta, @removed); directory extensions
            # are declared by the app that registers them, not in Graph's metadata
        if name not in props:
            problems.append(f"{where}: {type_name} has no property {name!r}")
            continue
        edm_type, nullable = props[name]
        if value is None and not nullable:
            problems.append(f"{where}.{name}: null, but not nullable")
        problems += check_value(value, edm_type, nullable, f"{where}.{name}")
    return problems


def check_value(value: Any, edm_type: str, nullable: bool, where: str) -> list[str]:
    if edm_type.startswith("Collection("):
        if not isinstance(value, list):
            return [f"{where}: a collection is never null, got {value!r}"]
        item_type = edm_type[len("Collection(") : -1]
        if not nullable and any(v is None for v in value):
            return [f"{where}: a null element, but elements are not nullable"]
        return [p for v in value for p in check_value(v, item_type, True, where)]
    if value is None:
        return []
    checks = {
        "Edm.String": lambda v: isinstance(v, str),
        "Edm.Boolean": lambda v: isinstance(v, bool),
        "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Edm.Date": lambda v: isinstance(v, str) and bool(DATE.match(v)) and _is_date(v),
        "Edm.DateTimeOffset": lambda v: isinstance(v, str) and bool(DATE_TIME_OFFSET.match(v)),
    }
    if edm_type in checks:
        return [] if checks[edm_type](value) else [f"{where}: {value!r} is not {edm_type}"]
    if edm_type in ENUMS:
        return [] if value in ENUMS[edm_type] else [f"{where}: {value!r} not in {edm_type}"]
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not a {edm_type} object"]
    return check_entity(value, edm_type, where) if edm_type in TYPES else []


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@pytest.fixture
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    """Microsoft's classic 25-user sample (term dates 7/1/2017, birth dates 4/2/2000...) with a
    deleted student and a deleted class."""
    tenant = graph_sandbox.new_tenant(load=[("sds-classic", SDS_SAMPLES / "classic-25")])
    graph = tenant.graph
    graph.delete_user(graph.get(f"/users/OKlein@{graph.domain}").json()["id"])
    extra = graph.create_class("Extra", school_id="10001")
    graph.delete_group(extra["id"])
    return tenant


def _select_all(type_name: str) -> str:
    return ",".join(TYPES[type_name])


@pytest.mark.parametrize(
    ("path", "type_name"),
    [
        ("/users", "user"),
        ("/users?$select={user}", "user"),
        ("/groups", "group"),
        ("/groups?$select={group}", "group"),
        ("/users/delta?$select=id,displayName,accountEnabled", "user"),
        ("/groups/delta?$select=id,displayName,members", "group"),
        ("/directory/deletedItems/microsoft.graph.user", "user"),
        ("/directory/deletedItems/microsoft.graph.group?$select={group}", "group"),
        ("/education/users", "educationUser"),
        ("/education/classes", "educationClass"),
        ("/education/users/delta", "educationUser"),
        ("/education/classes/delta", "educationClass"),
        ("/education/schools", "educationSchool"),
    ],
)
def test_every_property_has_graphs_name_and_type(
    school: SandboxTenant, path: str, type_name: str
) -> None:
    items = school.graph.all_pages(
        path.format(user=_select_all("user"), group=_select_all("group"))
    )
    assert items
    problems = [p for i, item in enumerate(items) for p in check_entity(item, type_name, f"[{i}]")]
    assert problems == []


def test_dates_are_edm_date_whatever_the_csv_held(school: SandboxTenant) -> None:
    # educationTerm.startDate/endDate and educationStudent.birthDate are Edm.Date ("educationTerm
    # resource type", "educationStudent resource type"); classic-25 holds 7/1/2017 and 4/2/2000
    graph = school.graph
    klass = graph.all_pages("/education/classes")[0]
    assert (klass["term"]["startDate"], klass["term"]["endDate"]) == ("2017-07-01", "2018-06-30")
    beulah = graph.get(f"/users/BMcMillan@{graph.domain}").json()
    student = graph.get(f"/education/users/{beulah['id']}").json()["student"]
    assert student["birthDate"] == "1999-11-12"  # Student.csv: 11/12/1999


def test_a_subscription_has_graphs_names_and_types(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=60)).isoformat().replace("+00:00", "Z")
    created = graph_tenant.graph.post(
        "/subscriptions",
        json={
            "changeType": "updated,deleted",
            "notificationUrl": f"{receiver.url}/notify",
            "resource": "/users",
            "expirationDateTime": expiry,
            "clientState": "types-test",
        },
    )
    assert created.status_code == 201, created.text
    assert check_entity(created.json(), "subscription", "created") == []
    listed = graph_tenant.graph.get("/subscriptions").json()["value"]
    assert [p for s in listed for p in check_entity(s, "subscription", "listed")] == []
    # OData 4.01 Protocol 11.4.2: a 201 Created carries the Location of the new entity
    assert created.headers["Location"].endswith(f"/v1.0/subscriptions/{created.json()['id']}")
    assert graph_tenant.graph.get(created.headers["Location"]).status_code == 200


# --- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/users"), ("GET", "/users/$count"), ("GET", "/no-such-thing"), ("POST", "/$batch")],
)
def test_answers_carry_odata_version_4(graph_tenant: SandboxTenant, method: str, path: str) -> None:
    # Graph answers with OData-Version: 4.0 (OData 4.01 Protocol, 8.1.5 "OData-Version")
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users"}]}
    response = graph_tenant.graph.request(
        method, path, headers=EVENTUAL, json=body if method == "POST" else None
    )
    assert response.headers["OData-Version"] == "4.0"
    if method == "POST":
        (inner,) = response.json()["responses"]
        assert inner["headers"]["OData-Version"] == "4.0"


def test_creating_a_user_or_group_answers_201_with_graphs_location(
    graph_tenant: SandboxTenant,
) -> None:
    # Microsoft on "Create User" (microsoft-graph-docs issue 7589, "no Location header in
    # response"): location https://graph.microsoft.com/v2/{tenant}/directoryObjects/{id}/
    # Microsoft.DirectoryServices.User
    graph = graph_tenant.graph
    user = graph.post(
        "/users",
        json={
            "accountEnabled": True,
            "displayName": "Ny Person",
            "mailNickname": "nyperson",
            "userPrincipalName": f"nyperson@{graph.domain}",
            "passwordProfile": {"password": "Sandbox-Passw0rd!"},
        },
    )
    group = graph.post(
        "/groups",
        json={
            "displayName": "Ny grupp",
            "mailEnabled": False,
            "mailNickname": "nygrupp",
            "securityEnabled": True,
        },
    )
    for created, kind in ((user, "User"), (group, "Group")):
        assert created.status_code == 201
        assert created.headers["Location"].endswith(
            f"/v2/{graph_tenant.id}/directoryObjects/{created.json()['id']}"
            f"/Microsoft.DirectoryServices.{kind}"
        )


def test_odata_context_names_the_selected_properties(graph_tenant: SandboxTenant) -> None:
    # "Use query parameters" / "List deletedItems" examples: $select shows in @odata.context,
    # e.g. "$metadata#groups(id,displayName,deletedDateTime)"; one entity ends "/$entity"
    graph = graph_tenant.graph
    student = graph.create_student("Elev", "Ett", school_id="S1")
    listed = graph.get("/users?$select=id,displayName").json()
    assert listed["@odata.context"].endswith("/$metadata#users(id,displayName)")
    one = graph.get(f"/users/{student['id']}?$select=displayName").json()
    assert one["@odata.context"].endswith("/$metadata#users(displayName)/$entity")
    plain = graph.get("/users").json()
    assert plain["@odata.context"].endswith("/$metadata#users")
