"""SDS CSV folders load the way SDS syncs them: users, roles, classes, members, schools.

Microsoft's formats and rules: "CSV File Samples for School Data Sync" and "School Data Sync
CSV file format" (classic and UK), "SDS V2 CSV File Format", "SDS V2.1 CSV File Format" and
"Default List of Values" (learn.microsoft.com/schooldatasync).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from common.graph import sds
from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphClient, GraphSandbox, SandboxTenant, sample_format
from tests.sandbox.graph.sds_samples import SAMPLE_FOLDERS, csv_rows, expected_counts


def _load(sandbox: GraphSandbox, name: str) -> SandboxTenant:
    return sandbox.new_tenant(load=[(sample_format(name), SDS_SAMPLES / name)])


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


# --- validation as SDS validates: rejected rows create nothing, the report says why ----------


def _folder_with_bad_rows(tmp_path: Path) -> Path:
    """classic-min plus rows SDS rejects and one bad optional field."""
    folder = tmp_path / "classic-bad"
    folder.mkdir()
    for source in (SDS_SAMPLES / "classic-min").iterdir():
        (folder / source.name).write_text(source.read_text(encoding="utf-8-sig"))
    extra = {
        "Student.csv": [
            "SIS ID,School SIS ID,Username,Birthdate",
            "13901,99999,NoSchool,",  # line 24: school not in School.csv
            "13001,10001,Twin,",  # line 25: duplicate SIS ID
            "13902,10001,,",  # line 26: no Username
            "13903,10001,BadBirth,31/31/2001",  # line 27: loaded, birth date dropped
        ],
        "Section.csv": ["", "11901,99999,Nowhere"],  # line 4: school not in School.csv
        "StudentEnrollment.csv": [
            "",
            "11999,13002",  # line 46: unknown section
            "11001,13999",  # line 47: unknown student
            "11001,13901",  # line 48: a rejected student
        ],
    }
    for name, lines in extra.items():
        path = folder / name
        if name == "Student.csv":  # a file with an optional column the sample lacks
            rows = path.read_text().splitlines()
            body = [f"{r}," for r in rows[1:]]
            path.write_text("\n".join([lines[0], *body, *lines[1:]]) + "\n")
        else:
            path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(lines[1:]) + "\n")
    return folder


def test_rows_sds_rejects_create_nothing_and_the_report_names_file_line_and_reason(
    graph_sandbox: GraphSandbox, tmp_path: Path
) -> None:
    folder = _folder_with_bad_rows(tmp_path)
    tenant = graph_sandbox.new_tenant(load=[("sds-classic", folder)])
    (report,) = tenant.imports
    assert graph_sandbox.admin("GET", f"/tenants/{tenant.id}").json()["import"] == [report]
    rejected = {(p["file"], p["line"]): p["reason"] for p in report["rejected"]}
    assert set(rejected) == {
        ("Student.csv", 24),
        ("Student.csv", 25),
        ("Student.csv", 26),
        ("Section.csv", 4),
        ("StudentEnrollment.csv", 46),
        ("StudentEnrollment.csv", 47),
        ("StudentEnrollment.csv", 48),
    }
    assert "99999" in rejected["Student.csv", 24] and "School.csv" in rejected["Student.csv", 24]
    assert "duplicate SIS ID '13001'" in rejected["Student.csv", 25]
    assert "Username" in rejected["Student.csv", 26]
    assert [(w["file"], w["line"]) for w in report["warnings"]] == [("Student.csv", 27)]
    assert report["created"] == {
        "schools": 2,
        "students": 23,
        "teachers": 2,
        "classes": 2,
        "enrollments": 46,
    }
    graph = tenant.graph
    # the people SDS made (the tenant also has its administrators, who are not SDS's)
    names = {
        u["userPrincipalName"].split("@")[0]
        for u in graph.all_pages(f"/users?$select=userPrincipalName,{sds.OBJECT_TYPE}")
        if u.get(sds.OBJECT_TYPE) in ("Student", "Teacher")
    }
    assert "BadBirth" in names
    assert not names & {"NoSchool", "Twin"}
    assert len(names) == 25
    assert {c["displayName"] for c in graph.all_pages("/education/classes")} == {
        "Math - Algebra 1",
        "Math - Algebra 2",
    }
    bad_birth = graph.get(f"/users/BadBirth@{graph.domain}").json()
    assert graph.get(f"/education/users/{bad_birth['id']}").json()["student"]["birthDate"] is None


def test_a_strict_load_with_rejected_rows_creates_no_tenant(
    graph_sandbox: GraphSandbox, tmp_path: Path
) -> None:
    folder = _folder_with_bad_rows(tmp_path)
    before = graph_sandbox.admin("GET", "/tenants").json()["tenants"]
    response = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={"load": [{"format": "sds-classic", "path": str(folder)}], "strict": True},
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "7 rows rejected" in message
    assert "first: Section.csv line 4: School SIS ID '99999' is not in School.csv" in message
    assert graph_sandbox.admin("GET", "/tenants").json()["tenants"] == before


def test_a_uk_folder_read_as_classic_is_refused_naming_the_missing_column(
    graph_sandbox: GraphSandbox,
) -> None:
    response = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={"load": [{"format": "sds-classic", "path": str(SDS_SAMPLES / "uk-min")}]},
    )
    assert response.status_code == 400
    assert "School.csv has no column SIS ID" in response.json()["error"]["message"]


def test_v2_staff_roles_are_reported_and_not_loaded(graph_sandbox: GraphSandbox) -> None:
    tenant = _load(graph_sandbox, "v2")
    (report,) = tenant.imports
    warned = {(w["file"], w["line"]) for w in report["warnings"]}
    users = csv_rows(SDS_SAMPLES / "v2", "users.csv")
    staff_lines = {
        ("users.csv", index + 2)
        for index, u in enumerate(users)
        if u["role"].lower() not in {"student", "teacher", "professor"}
    }
    assert staff_lines and staff_lines <= warned
    upns = {u["userPrincipalName"].lower() for u in tenant.graph.users()}
    assert "htodd@classrmtest31.org" not in upns  # staff
    assert "tbenton@classrmtest31.org" in upns  # Professor: a teacher, whatever the case


def test_classic_term_dates_come_out_as_edm_date(graph_sandbox: GraphSandbox) -> None:
    # "CSV File Samples for School Data Sync": Term StartDate 7/1/2017; Graph's educationTerm
    # startDate and endDate are Edm.Date (educationterm resource type, v1.0)
    graph = _load(graph_sandbox, "classic-25").graph
    for klass in graph.all_pages("/education/classes"):
        assert klass["term"]["startDate"] == "2017-07-01"
        assert klass["term"]["endDate"] == "2018-06-30"


def test_v21_rows_sds_rejects_create_nothing(graph_sandbox: GraphSandbox, tmp_path: Path) -> None:
    folder = tmp_path / "v21-bad"
    folder.mkdir()
    for source in (SDS_SAMPLES / "v2.1").iterdir():
        (folder / source.name).write_text(source.read_text(encoding="utf-8-sig"))
    additions = {
        "orgs.csv": ["110009,Nowhere School,castle,"],  # line 6: not an org type
        "users.csv": [
            "114001,twin@classrmtest31.org,Twin,Craig,P,,,,",  # line 10: duplicate sourcedId
            "114009,nogiven@classrmtest31.org,,Given,P,,,,",  # line 11: no givenName
            "114010,wizard@classrmtest31.org,Wiz,Ard,P,,,,",
        ],
        "roles.csv": [
            "114010,110003,wizard,SY2021K12,10,TRUE,,",  # line 9: not an SDS role
            "114999,110003,student,SY2021K12,10,TRUE,,",  # line 10: unknown user
        ],
        "classes.csv": ["112009,110999,Ghost Class,SY2021K12,"],  # line 4: unknown org
        "enrollments.csv": ["112999,114001,student"],  # line 8: unknown class
    }
    for name, rows in additions.items():
        path = folder / name
        path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(rows) + "\n")
    tenant = graph_sandbox.new_tenant(load=[("sds-v2.1", folder)])
    (report,) = tenant.imports
    assert {(p["file"], p["line"]) for p in report["rejected"]} == {
        ("orgs.csv", 6),
        ("users.csv", 10),
        ("users.csv", 11),
        ("roles.csv", 9),
        ("roles.csv", 10),
        ("classes.csv", 4),
        ("enrollments.csv", 8),
    }
    assert report["created"] == expected_counts("v2.1")  # the sample's own rows, nothing more
    upns = {u["userPrincipalName"] for u in tenant.graph.users()}
    assert not upns & {"twin@classrmtest31.org", "nogiven@classrmtest31.org"}
    assert "wizard@classrmtest31.org" not in upns
    titles = {c["displayName"] for c in tenant.graph.all_pages("/education/classes")}
    assert "Ghost Class" not in titles
