"""SDS CSV folders load the way SDS syncs them: users, roles, classes, members, schools."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from common.graph import sds
from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphClient, GraphSandbox, SandboxTenant


def _format_of(folder_name: str) -> str:
    return "sds-v2.1" if (SDS_SAMPLES / folder_name / "users.csv").is_file() else "sds-classic"


def _load(sandbox: GraphSandbox, name: str) -> SandboxTenant:
    return sandbox.new_tenant(load=[(_format_of(name), SDS_SAMPLES / name)])


def _roles(graph: GraphClient) -> Counter[str]:
    """Students and teachers (the tenant's administrators and staff are no SDS people)."""
    people = graph.all_pages("/education/users?$top=999&$select=id,primaryRole")
    return Counter(p["primaryRole"] for p in people if p["primaryRole"] != "none")


def _class_people(graph: GraphClient) -> dict[str, dict[str, Any]]:
    out = {}
    for klass in graph.all_pages("/education/classes?$select=id,displayName,externalId"):
        members = graph.all_pages(
            f"/education/classes/{klass['id']}/members?$select=id,primaryRole"
        )
        teachers = graph.all_pages(f"/education/classes/{klass['id']}/teachers?$select=id")
        out[klass["externalId"]] = {
            "students": sum(1 for m in members if m["primaryRole"] == "student"),
            "teachers": len(teachers),
            "members": len(members),
        }
    return out


SAMPLE_FOLDERS = sorted(p.name for p in SDS_SAMPLES.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", SAMPLE_FOLDERS)
def test_every_sample_folder_loads(graph_sandbox: GraphSandbox, name: str) -> None:
    tenant = _load(graph_sandbox, name)
    roles = _roles(tenant.graph)
    assert roles["student"] > 0
    assert roles["teacher"] > 0


def test_classic_25_gives_22_students_2_teachers_2_classes_and_44_student_memberships(
    graph_sandbox: GraphSandbox,
) -> None:
    graph = _load(graph_sandbox, "classic-25").graph
    assert _roles(graph) == {"student": 22, "teacher": 2}
    assert _class_people(graph) == {
        "11001": {"students": 22, "teachers": 1, "members": 23},
        "11002": {"students": 22, "teachers": 1, "members": 23},
    }
    schools = graph.all_pages("/education/schools")
    assert sorted(s["externalId"] for s in schools) == ["10001", "10002"]


def test_classic_load_writes_the_classic_extension_attributes(
    graph_sandbox: GraphSandbox,
) -> None:
    graph = _load(graph_sandbox, "classic-25").graph
    users = graph.users()
    kinds = Counter(u.get(sds.OBJECT_TYPE) for u in users if u.get(sds.OBJECT_TYPE))
    assert kinds == {"Student": 22, "Teacher": 2}
    ora = next(u for u in users if u["displayName"] == "Ora Klein")
    assert ora[sds.SCHOOL_ID] == "10001"
    assert ora[sds.STUDENT_ID] == "13001"
    assert ora[sds.GRADE] == "9"
    assert ora["userPrincipalName"] == f"OKlein@{graph.domain}"
    sections = graph.all_pages(
        f"/groups?$select=id,displayName,{sds.SECTION_ID}&$filter={sds.OBJECT_TYPE} eq 'Section'"
    )
    assert sorted(s["displayName"] for s in sections) == ["Math - Algebra 1", "Math - Algebra 2"]
    for section in sections:  # the education class has the group's id
        assert graph.get(f"/education/classes/{section['id']}").status_code == 200


def test_classic_minimum_attributes_load_with_usernames_as_names(
    graph_sandbox: GraphSandbox,
) -> None:
    graph = _load(graph_sandbox, "classic-min").graph
    assert _roles(graph) == {"student": 22, "teacher": 2}
    assert sum(c["students"] for c in _class_people(graph).values()) == 44
    assert "OKlein" in {u["displayName"] for u in graph.users()}


def test_v21_gives_4_students_2_teachers_2_classes_and_no_guardians(
    graph_sandbox: GraphSandbox,
) -> None:
    graph = _load(graph_sandbox, "v2.1").graph
    assert _roles(graph) == {"student": 4, "teacher": 2}
    assert _class_people(graph) == {
        "112001": {"students": 1, "teachers": 1, "members": 2},  # professor counts as teacher
        "112002": {"students": 3, "teachers": 1, "members": 4},
    }
    users = graph.users()
    assert "jean.craig@outlook.com" not in {u["userPrincipalName"] for u in users}
    assert all(sds.OBJECT_TYPE not in u for u in users)  # new SDS: education API only
    jack = next(u for u in users if u["displayName"] == "Jack Craig")
    assert jack[sds.SCHOOL_ID] == "110003"
    schools = graph.all_pages("/education/schools")
    assert sorted(s["externalId"] for s in schools) == ["110001", "110002", "110003"]


def test_education_user_shows_role_grade_and_school(graph_sandbox: GraphSandbox) -> None:
    graph = _load(graph_sandbox, "classic-25").graph
    ora = graph.get("/users/OKlein@" + graph.domain).json()
    edu = graph.get(f"/education/users/{ora['id']}").json()
    assert edu["primaryRole"] == "student"
    assert edu["student"]["grade"] == "9"
    assert edu["student"]["externalId"] == "13001"
    assert edu["externalSource"] == "sis"
    schools = graph.get(f"/education/users/{ora['id']}/schools").json()["value"]
    assert [s["displayName"] for s in schools] == ["Contoso High School"]
    school_users = graph.all_pages(f"/education/schools/{schools[0]['id']}/users?$select=id")
    assert len(school_users) == 24


def test_loading_two_folders_into_one_tenant_adds_both(graph_sandbox: GraphSandbox) -> None:
    tenant = graph_sandbox.new_tenant(
        load=[("sds-classic", SDS_SAMPLES / "classic-25"), ("sds-v2.1", SDS_SAMPLES / "v2.1")]
    )
    assert _roles(tenant.graph) == {"student": 26, "teacher": 4}


def test_a_missing_folder_is_refused_by_the_admin_api(graph_sandbox: GraphSandbox) -> None:
    response = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={"load": [{"format": "sds-classic", "path": str(SDS_SAMPLES / "no-such-folder")}]},
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["error"]["message"]
