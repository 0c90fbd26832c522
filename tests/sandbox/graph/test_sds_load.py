"""SDS CSV folders load the way SDS syncs them: users, roles, classes, members, schools.

Microsoft's formats and rules: "CSV File Samples for School Data Sync" and "School Data Sync
CSV file format" (classic and UK), "SDS V2 CSV File Format", "SDS V2.1 CSV File Format" and
"Default List of Values" (learn.microsoft.com/schooldatasync).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from common.graph import sds
from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphClient, GraphSandbox, SandboxTenant, sample_format


def _load(sandbox: GraphSandbox, name: str) -> SandboxTenant:
    return sandbox.new_tenant(load=[(sample_format(name), SDS_SAMPLES / name)])


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def expected_counts(name: str) -> dict[str, int]:
    """What SDS creates from a sample folder, counted from its files: every person, section and
    enrollment row for classic and UK files; for v2 and v2.1, students (role student) and
    teachers (teacher, professor), schools (org type school, college or department), classes,
    and enrollments of those people as student, teacher or professor."""
    folder = SDS_SAMPLES / name
    if sample_format(name) in ("sds-classic", "sds-uk"):
        return {
            "schools": len(_csv(folder, "School.csv")),
            "students": len(_csv(folder, "Student.csv")),
            "teachers": len(_csv(folder, "Teacher.csv")),
            "classes": len(_csv(folder, "Section.csv")),
            "enrollments": len(_csv(folder, "StudentEnrollment.csv"))
            + len(_csv(folder, "TeacherRoster.csv")),
        }
    role_rows = _csv(folder, "roles.csv") if (folder / "roles.csv").is_file() else None
    roles: dict[str, set[str]] = {}
    for row in role_rows if role_rows is not None else _csv(folder, "users.csv"):
        user = row["userSourcedId"] if role_rows is not None else row["sourcedId"]
        roles.setdefault(user, set()).add(row["role"].lower())
    kinds = {
        user: "student" if "student" in r else "teacher" if r & {"teacher", "professor"} else ""
        for user, r in roles.items()
    }
    schools = [o for o in _csv(folder, "orgs.csv") if o["type"] in SCHOOL_TYPES]
    enrolled = [
        e
        for e in _csv(folder, "enrollments.csv")
        if kinds.get(e["userSourcedId"])
        and e["role"].lower() in {"student", "teacher", "professor"}
    ]
    return {
        "schools": len(schools),
        "students": list(kinds.values()).count("student"),
        "teachers": list(kinds.values()).count("teacher"),
        "classes": len(_csv(folder, "classes.csv")),
        "enrollments": len(enrolled),
    }


SCHOOL_TYPES = {"school", "college", "department"}


def _roles(graph: GraphClient) -> Counter[str]:
    people = graph.all_pages("/education/users?$top=999&$select=id,primaryRole")
    return Counter(p["primaryRole"] for p in people)


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
def test_every_sample_folder_loads_with_the_counts_of_its_files(
    graph_sandbox: GraphSandbox, name: str
) -> None:
    expected = expected_counts(name)
    tenant = _load(graph_sandbox, name)
    (report,) = tenant.imports
    assert report["format"] == sample_format(name)
    assert report["created"] == expected
    assert report["rejected"] == []
    assert _roles(tenant.graph) == {
        "student": expected["students"],
        "teacher": expected["teachers"],
    }
    classes = _class_people(tenant.graph)
    assert len(classes) == expected["classes"]
    assert sum(c["members"] for c in classes.values()) == expected["enrollments"]
    assert len(tenant.graph.all_pages("/education/schools")) == expected["schools"]


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
    kinds = Counter(u.get(sds.OBJECT_TYPE) for u in users)
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
