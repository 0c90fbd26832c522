"""A generated municipality looks like a real school tenant, the same for the same seed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from common.graph import sds
from tests.fixtures.graph import GraphSandbox, SandboxTenant

SIZE = 1200


@pytest.fixture(scope="module")
def municipality(graph_sandbox: GraphSandbox) -> SandboxTenant:
    """Read-only: tests here only look at it."""
    return graph_sandbox.new_tenant(generate=SIZE, seed=11)


@pytest.fixture(scope="module")
def people(municipality: SandboxTenant) -> list[dict[str, Any]]:
    return municipality.graph.users()


@pytest.fixture(scope="module")
def roles(municipality: SandboxTenant) -> dict[str, str]:
    edu = municipality.graph.all_pages("/education/users?$top=999&$select=id,primaryRole")
    return {u["id"]: u["primaryRole"] for u in edu}


def test_size_and_shares_are_about_what_was_asked(
    people: list[dict[str, Any]], roles: dict[str, str]
) -> None:
    assert len(people) == SIZE
    counts = Counter(roles.values())
    assert 0.85 * SIZE < counts["student"] < 0.95 * SIZE
    assert 0.03 * SIZE < counts["teacher"] < 0.07 * SIZE
    assert counts["none"] > 0  # staff and guests


def test_classes_hold_about_25_students_and_teachers_teach_several(
    municipality: SandboxTenant,
) -> None:
    graph = municipality.graph
    classes = graph.all_pages("/education/classes?$top=999&$select=id")
    sizes, taught = [], Counter()
    for klass in classes:
        members = graph.all_pages(
            f"/education/classes/{klass['id']}/members?$select=id,primaryRole"
        )
        sizes.append(sum(1 for m in members if m["primaryRole"] == "student"))
        for teacher in graph.all_pages(f"/education/classes/{klass['id']}/teachers?$select=id"):
            taught[teacher["id"]] += 1
            assert teacher["id"] in {m["id"] for m in members}  # owners are members too
    assert 20 <= sum(sizes) / len(sizes) <= 30
    assert max(taught.values()) >= 2


def test_names_are_swedish_some_shared_and_some_mail_in_mixed_case(
    people: list[dict[str, Any]],
) -> None:
    names = [p["displayName"] for p in people]
    assert any(ch in name for name in names for ch in "åäöÅÄÖ")
    assert any(count > 1 for count in Counter(names).values())
    assert any(p["mail"] != p["mail"].lower() for p in people)
    upns = [p["userPrincipalName"].lower() for p in people]
    assert len(upns) == len(set(upns))
    assert all(p["userPrincipalName"].isascii() for p in people)


def test_both_classic_and_new_sds_schools_exist(
    people: list[dict[str, Any]], roles: dict[str, str]
) -> None:
    sds_people = [p for p in people if roles[p["id"]] in ("student", "teacher")]
    classic = [p for p in sds_people if sds.OBJECT_TYPE in p]
    new = [p for p in sds_people if sds.OBJECT_TYPE not in p]
    assert classic and new
    assert all(p.get(sds.SCHOOL_ID) for p in sds_people)
    students = [p for p in sds_people if roles[p["id"]] == "student"]
    assert all(p.get(sds.GRADE) for p in students)


def test_things_sds_did_not_create_are_there_without_sds_marks(
    municipality: SandboxTenant, people: list[dict[str, Any]], roles: dict[str, str]
) -> None:
    others = [p for p in people if roles[p["id"]] == "none"]
    assert any(p["userType"] == "Guest" for p in others)
    assert any(p["userType"] == "Member" for p in others)
    assert not any(sds.OBJECT_TYPE in p or sds.SCHOOL_ID in p for p in others)
    groups = municipality.graph.groups()
    classes = {c["id"] for c in municipality.graph.all_pages("/education/classes?$top=999")}
    manual = [g for g in groups if g["id"] not in classes]
    assert any("Unified" in g["groupTypes"] for g in manual)
    assert any("Unified" not in g["groupTypes"] for g in manual)
    assert not any(sds.OBJECT_TYPE in g for g in manual)


def test_the_same_seed_gives_the_same_municipality(graph_sandbox: GraphSandbox) -> None:
    def shape(tenant: SandboxTenant) -> list[tuple[str, str]]:
        return sorted(
            (u["displayName"], u["userPrincipalName"].split("@")[0]) for u in tenant.graph.users()
        )

    first = graph_sandbox.new_tenant(generate=300, seed=5)
    second = graph_sandbox.new_tenant(generate=300, seed=5)
    other = graph_sandbox.new_tenant(generate=300, seed=6)
    assert shape(first) == shape(second)
    assert shape(first) != shape(other)
    assert first.domain != second.domain
