"""Reading Microsoft 365 state from the graph sandbox: samples, scope, single objects, failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.errors import GraphUnavailable, Throttled
from common.graph import sds
from common.graph.source import least_requests, read_class, read_tenant, read_user
from common.http import RetryPolicy
from common.model import MicrosoftState, Role, Scope
from tests.fixtures.graph_client import GraphClients, RecordedSleep, load_sample

PATIENT = RetryPolicy(attempts=12, base_delay_seconds=0.01, max_delay_seconds=0.05)
ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture
def knobs(graph_sandbox: Any) -> Iterator[Any]:
    yield graph_sandbox
    graph_sandbox.reset()


@pytest.fixture(scope="module")
def municipality(graph_sandbox: Any) -> Any:
    """A generated tenant (half classic, half new SDS, with staff, guests, other groups)."""
    return graph_sandbox.new_tenant(generate=3000, seed=11)


@pytest.fixture(scope="module")
def municipality_counts(graph_sandbox: Any, municipality: Any) -> dict[str, int]:
    response = graph_sandbox.admin("GET", f"/tenants/{municipality.id}")
    response.raise_for_status()
    counts: dict[str, int] = response.json()["counts"]
    return counts


@pytest.fixture(scope="module")
def municipality_state(graph_clients: GraphClients, municipality: Any) -> MicrosoftState:
    return read_tenant(graph_clients(municipality.id), Scope())


def roles(state: MicrosoftState) -> dict[Role, int]:
    counted = dict.fromkeys(Role, 0)
    for user in state.users.values():
        counted[user.role] += 1
    return counted


# --- SDS samples --------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["classic-25", "classic-min"])
def test_classic_sample_has_22_students_2_teachers_and_2_classes_with_their_members(
    graph_clients: GraphClients, sds_tenants: dict[str, Any], sample: str
) -> None:
    tenant = sds_tenants[sample]
    state = read_tenant(graph_clients(tenant.id), Scope())
    assert roles(state) == {Role.STUDENT: 22, Role.TEACHER: 2}
    assert state.scope_user_ids is None and state.scope_class_ids is None
    by_name = {c.display_name: c for c in state.classes.values()}
    assert sorted(by_name) == ["Math - Algebra 1", "Math - Algebra 2"]
    names = {u.id: u.display_name for u in state.users.values()}
    teachers = {u.id for u in state.users.values() if u.role is Role.TEACHER}
    for cls in by_name.values():
        assert cls.school_id == "10001"
        assert len(cls.member_ids) == 23  # 22 students and the class's teacher
        assert len(cls.member_ids & teachers) == 1
        assert cls.member_ids <= names.keys()
    assert {u.school_ids for u in state.users.values()} == {("10001",)}
    assert state.soft_deleted_user_ids == frozenset()
    # the tenant's administrators and staff are no SDS people, so out of scope
    edu = tenant.graph.all_pages("/education/users?$top=999&$select=id,primaryRole")
    staff = {u["id"] for u in edu if u["primaryRole"] == "none"}
    assert staff and state.out_of_scope_user_ids == staff


def test_classic_25_keeps_grades_and_names(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    state = read_tenant(graph_clients(sds_tenants["classic-25"].id), Scope())
    ora = next(u for u in state.users.values() if u.display_name == "Ora Klein")
    assert (ora.given_name, ora.family_name, ora.grade, ora.role) == (
        "Ora",
        "Klein",
        "9",
        Role.STUDENT,
    )
    assert ora.account_enabled


def test_v21_sample_is_read_through_the_education_api(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    state = read_tenant(graph_clients(sds_tenants["v2.1"].id), Scope())
    people = {u.display_name: (u.role, u.school_ids) for u in state.users.values()}
    assert people == {
        "Jack Craig": (Role.STUDENT, ("110003",)),
        "Fred Hutch": (Role.STUDENT, ("110003",)),
        "Alice Smithee": (Role.STUDENT, ("110003",)),
        "Simon Miller": (Role.STUDENT, ("110001",)),
        "Jason Jonzer": (Role.TEACHER, ("110002",)),
        "Kristen Fein": (Role.TEACHER, ("110003",)),
    }
    classes = {c.display_name: c for c in state.classes.values()}
    assert {n: (c.school_id, len(c.member_ids)) for n, c in classes.items()} == {
        "Biology 10": ("110003", 4),
        "Computer Science 101": ("110001", 2),
    }


# --- a municipality: what is out of scope -------------------------------------------------------


def test_staff_guests_and_ordinary_groups_stay_out(
    municipality_state: MicrosoftState, municipality_counts: dict[str, int]
) -> None:
    counts = municipality_counts
    assert roles(municipality_state) == {
        Role.STUDENT: counts["students"],
        Role.TEACHER: counts["teachers"],
    }
    assert (
        len(municipality_state.out_of_scope_user_ids)
        == counts["users"] - counts["students"] - counts["teachers"]
    )
    assert len(municipality_state.classes) == counts["classes"] < counts["groups"]
    assert municipality_state.out_of_scope_class_ids == frozenset()
    assert not any("Alla" in c.display_name for c in municipality_state.classes.values())


def test_members_of_classes_are_students_and_teachers_in_scope(
    municipality_state: MicrosoftState,
) -> None:
    for cls in municipality_state.classes.values():
        assert cls.member_ids <= municipality_state.users.keys()
        members = [municipality_state.users[m] for m in cls.member_ids]
        assert sum(m.role is Role.TEACHER for m in members) == 3
        assert all(cls.school_id in m.school_ids for m in members)


def test_both_kinds_of_sds_schools_are_read(municipality_state: MicrosoftState) -> None:
    schools = {c.school_id for c in municipality_state.classes.values()}
    assert schools == {"10000", "10001"}  # classic and new SDS alternate


# --- scope --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_scope_by_school_keeps_only_that_schools_people_and_classes(
    graph_clients: GraphClients, municipality: Any, municipality_state: MicrosoftState
) -> None:
    state = read_tenant(graph_clients(municipality.id), Scope(school_ids=frozenset({"10001"})))
    assert state.users and all(u.school_ids == ("10001",) for u in state.users.values())
    assert all(c.school_id == "10001" for c in state.classes.values())
    others = {c.id for c in municipality_state.classes.values() if c.school_id == "10000"}
    assert state.out_of_scope_class_ids == others
    everyone = municipality_state.users.keys() | municipality_state.out_of_scope_user_ids
    assert state.users.keys() | state.out_of_scope_user_ids == everyone


def test_scope_by_pattern_include_and_exclude(
    graph_clients: GraphClients, municipality: Any, municipality_state: MicrosoftState
) -> None:
    classes = sorted(municipality_state.classes.values(), key=lambda c: c.display_name)
    sevens = {c.id for c in classes if c.display_name.lower().startswith("7")}
    assert sevens
    outside = next(c for c in classes if c.id not in sevens)
    excluded = sorted(sevens)[0]
    scope = Scope(
        class_pattern="7*",
        include=frozenset({outside.display_name.upper()}),
        exclude=frozenset({excluded}),
    )
    state = read_tenant(graph_clients(municipality.id), scope)
    assert set(state.classes) == (sevens - {excluded}) | {outside.id}
    assert excluded in state.out_of_scope_class_ids
    assert state.users.keys() == municipality_state.users.keys()  # the pattern is for classes


def test_excluded_user_is_out_of_scope_and_leaves_class_members(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    client = graph_clients(sds_tenants["classic-25"].id)
    full = read_tenant(client, Scope())
    ora = next(u for u in full.users.values() if u.display_name == "Ora Klein")
    state = read_tenant(client, Scope(exclude=frozenset({ora.user_principal_name})))
    assert ora.id in state.out_of_scope_user_ids
    assert all(ora.id not in c.member_ids for c in state.classes.values())


# --- one object ---------------------------------------------------------------------------------


def test_read_user_present_soft_deleted_and_purged(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = load_sample(graph_sandbox, "classic-min")
    client = graph_clients(tenant.id)
    student = tenant.graph.create_student("Åsa", "Öberg", school_id="10001", grade="8")
    uid = student["id"]

    present = read_user(client, Scope(), uid)
    assert present.scope_user_ids == frozenset({uid})
    assert present.scope_class_ids == frozenset()
    assert (present.users[uid].display_name, present.users[uid].grade) == ("Åsa Öberg", "8")
    # one $batch call, and one more for the name of a school that only the classic attribute
    # names (the user is in no education school): what a full read calls it too
    assert client.request_count == 2
    school = next(
        s for s in tenant.graph.all_pages("/education/schools") if s["externalId"] == "10001"
    )
    assert present.users[uid].school_names == (school["displayName"],)

    elsewhere = read_user(client, Scope(school_ids=frozenset({"10002"})), uid)
    assert (elsewhere.users, elsewhere.out_of_scope_user_ids) == ({}, frozenset({uid}))

    tenant.graph.delete_user(uid)
    soft = read_user(client, Scope(), uid)
    assert (soft.users, soft.soft_deleted_user_ids) == ({}, frozenset({uid}))

    tenant.graph.purge(uid)
    purged = read_user(client, Scope(), uid)
    assert purged.users == {}
    assert purged.soft_deleted_user_ids == purged.out_of_scope_user_ids == frozenset()
    assert purged.scope_user_ids == frozenset({uid})


def test_read_user_of_staff_is_out_of_scope(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = graph_sandbox.new_tenant()
    staff = tenant.graph.create_staff("Kim", "Rektor", job_title="Rektor")
    state = read_user(graph_clients(tenant.id), Scope(), staff["id"])
    assert (state.users, state.out_of_scope_user_ids) == ({}, frozenset({staff["id"]}))


def test_read_user_of_new_sds_user_has_its_school(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    client = graph_clients(sds_tenants["v2.1"].id)
    full = read_tenant(client, Scope())
    kristen = next(u for u in full.users.values() if u.display_name == "Kristen Fein")
    assert read_user(client, Scope(), kristen.id).users == {kristen.id: kristen}


def test_read_class_present_out_of_scope_soft_deleted_and_purged(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = graph_sandbox.new_tenant()
    admin = tenant.graph
    teacher = admin.create_teacher("Lena", "Lärare", school_id="S1")
    students = [admin.create_student("Elev", str(i), school_id="S1") for i in range(3)]
    cls = admin.create_class(
        "7A Björkskolan", school_id="S1", teachers=[teacher], students=students
    )
    client = graph_clients(tenant.id)

    state = read_class(client, Scope(), cls["id"])
    assert state.scope_class_ids == frozenset({cls["id"]})
    assert state.scope_user_ids == frozenset()
    assert state.classes[cls["id"]].member_ids == {teacher["id"], *(s["id"] for s in students)}
    assert state.classes[cls["id"]].school_id == "S1"
    # a school SDS does not know (no education school has that id) is called by its id, after
    # one more read to look for it
    assert state.classes[cls["id"]].school_name == "S1"
    assert client.request_count == 2

    other = read_class(client, Scope(class_pattern="9*"), cls["id"])
    assert (other.classes, other.out_of_scope_class_ids) == ({}, frozenset({cls["id"]}))

    admin.delete_group(cls["id"])
    soft = read_class(client, Scope(), cls["id"])
    assert (soft.classes, soft.out_of_scope_class_ids) == ({}, frozenset({cls["id"]}))

    admin.purge(cls["id"])
    purged = read_class(client, Scope(), cls["id"])
    assert (purged.classes, purged.out_of_scope_class_ids) == ({}, frozenset())


def test_read_class_of_new_sds_finds_roles_through_the_education_api(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    client = graph_clients(sds_tenants["v2.1"].id)
    full = read_tenant(client, Scope())
    biology = next(c for c in full.classes.values() if c.display_name == "Biology 10")
    assert read_class(client, Scope(), biology.id).classes == {biology.id: biology}


def test_read_class_of_an_ordinary_group_is_out_of_scope(
    municipality: Any, graph_clients: GraphClients, municipality_state: MicrosoftState
) -> None:
    client = graph_clients(municipality.id)
    groups = client.list_all("/groups", {"$select": "id,displayName", "$top": 999})
    ordinary = next(g for g in groups if g["id"] not in municipality_state.classes)
    state = read_class(client, Scope(), ordinary["id"])
    assert (state.classes, state.out_of_scope_class_ids) == ({}, frozenset({ordinary["id"]}))


def test_soft_deleted_user_is_in_the_recycle_bin_set_of_a_full_read(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = load_sample(graph_sandbox, "classic-min")
    client = graph_clients(tenant.id)
    victim = sorted(read_tenant(client, Scope()).users)[0]
    tenant.graph.delete_user(victim)
    state = read_tenant(client, Scope())
    assert victim in state.soft_deleted_user_ids
    assert victim not in state.users
    assert all(victim not in c.member_ids for c in state.classes.values())


# --- failures never look complete ---------------------------------------------------------------


def test_5xx_beyond_retries_raises_and_never_returns_partial_state(
    knobs: Any, graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    tenant = sds_tenants["classic-25"]
    clean = read_tenant(graph_clients(tenant.id), Scope())
    knobs.set_knobs(tenant_id=tenant.id, error_share=1.0)
    with pytest.raises(GraphUnavailable):
        read_tenant(graph_clients(tenant.id), Scope())
    knobs.set_knobs(tenant_id=tenant.id, error_share=0.2)
    outcomes = set()
    for _ in range(8):
        try:
            state = read_tenant(graph_clients(tenant.id, policy=ONE_TRY), Scope())
        except GraphUnavailable:
            outcomes.add("raised")
        else:
            assert state == clean
            outcomes.add("complete")
    assert "raised" in outcomes


@pytest.mark.slow
def test_inner_429s_during_a_full_read_are_waited_out_to_the_same_state(
    knobs: Any, graph_clients: GraphClients, municipality: Any, municipality_state: MicrosoftState
) -> None:
    knobs.set_knobs(tenant_id=municipality.id, throttle_share=0.2, retry_after_seconds=4)
    sleep = RecordedSleep()
    client = graph_clients(municipality.id, policy=PATIENT, sleep=sleep)
    assert read_tenant(client, Scope()) == municipality_state
    assert sleep.waits and set(sleep.waits) == {4.0}


def test_throttling_that_outlasts_retries_raises_throttled(
    knobs: Any, graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    tenant = sds_tenants["classic-min"]
    knobs.set_knobs(tenant_id=tenant.id, throttle_share=1.0, retry_after_seconds=1)
    with pytest.raises(Throttled):
        read_tenant(graph_clients(tenant.id), Scope())
    with pytest.raises(Throttled):
        read_user(graph_clients(tenant.id), Scope(), "any-id")


# --- request counts -----------------------------------------------------------------------------


def test_full_read_stays_within_110_percent_of_the_least_requests(
    graph_sandbox: Any,
    graph_clients: GraphClients,
    municipality: Any,
    municipality_counts: dict[str, int],
) -> None:
    counts = municipality_counts
    least = least_requests(
        n_users=counts["users"],
        n_edu_users=counts["users"],  # every directory user is an education user
        n_groups=counts["classes"],
        n_classes=counts["classes"],
        n_schools=counts["schools"],
    )
    client = graph_clients(municipality.id)
    before = graph_sandbox.counters()["tenants"][municipality.id]["requests"]
    read_tenant(client, Scope())
    after = graph_sandbox.counters()["tenants"][municipality.id]["requests"]
    graph_side = sum(
        n - before.get(endpoint, {}).get(status, 0)
        for endpoint, by_status in after.items()
        if "/v1.0/" in endpoint
        for status, n in by_status.items()
    )
    assert client.graph_requests <= 1.1 * least
    # the sandbox counts each $batch envelope as well as the requests inside it
    assert graph_side == client.graph_requests + client.batch_count
    assert graph_side <= 1.1 * least
    assert client.request_count == client.batch_count  # every request went in a batch


# --- one rule for class members, whichever reader ---------------------------------------------


@pytest.mark.slow  # one full read per scope of a 3,000-user tenant
def test_class_reads_give_the_members_a_full_read_gives_under_any_scope(
    graph_clients: GraphClients, municipality: Any, municipality_state: MicrosoftState
) -> None:
    client = graph_clients(municipality.id)
    classes = sorted(municipality_state.classes.values(), key=lambda c: c.id)[::7][:12]
    school = sorted({s for u in municipality_state.users.values() for s in u.school_ids})[0]
    member = sorted(classes[0].member_ids)[0]
    for scope in (
        Scope(),
        Scope(school_ids=frozenset({school})),
        Scope(exclude=frozenset({member})),
    ):
        full = read_tenant(client, scope)
        for cls in classes:
            single = read_class(client, scope, cls.id)
            assert single.classes.get(cls.id) == full.classes.get(cls.id), (scope, cls.id)


def test_class_members_leave_out_guests_staff_and_out_of_scope_people_but_keep_disabled(
    graph_sandbox: Any, graph_clients: GraphClients
) -> None:
    tenant = graph_sandbox.new_tenant()
    admin = tenant.graph
    teacher = admin.create_teacher("Lena", "Lärare", school_id="S1")
    other_school = admin.create_teacher("Per", "Annan", school_id="S2")
    disabled = admin.create_student("Ida", "Avstängd", school_id="S1")
    admin.patch(f"/users/{disabled['id']}", json={"accountEnabled": False}).raise_for_status()
    staff = admin.create_staff("Siv", "Kansli")
    guest = admin.post(
        "/users",
        json={
            "accountEnabled": True,
            "displayName": "Gäst Förälder",
            "mailNickname": "gast",
            # an invited identity: #EXT# in the name, whatever its userType says
            "userPrincipalName": f"gast_example.org#EXT#@{tenant.domain}",
            "userType": "Member",
            "passwordProfile": {"password": "Gast-1234-gast"},
            sds.OBJECT_TYPE: sds.OBJECT_TYPE_STUDENT,
            sds.SCHOOL_ID: "S1",
        },
    )
    assert guest.status_code == 201, guest.text
    cls = admin.create_class(
        "7A Björkskolan",
        school_id="S1",
        teachers=[teacher, other_school],
        students=[disabled, staff, guest.json()],
    )
    client = graph_clients(tenant.id)
    scope = Scope(school_ids=frozenset({"S1"}))

    state = read_class(client, scope, cls["id"])

    assert state.classes[cls["id"]].member_ids == {teacher["id"], disabled["id"]}
    assert read_tenant(client, scope).classes[cls["id"]] == state.classes[cls["id"]]


def test_a_real_time_read_names_schools_as_the_full_read_does_in_one_batch(
    graph_clients: GraphClients, sds_tenants: dict[str, Any]
) -> None:
    for sample in ("classic-25", "v2.1"):
        client = graph_clients(sds_tenants[sample].id)
        full = read_tenant(client, Scope())
        schools = sds_tenants[sample].graph.all_pages("/education/schools")
        names = {s["displayName"] for s in schools}
        assert full.users and all(set(u.school_names) <= names for u in full.users.values())
        assert all(c.school_name in names for c in full.classes.values())
        person = sorted(full.users.values(), key=lambda u: u.id)[0]
        cls = sorted(full.classes.values(), key=lambda c: c.id)[0]
        before = client.request_count
        assert read_user(client, Scope(), person.id).users[person.id] == person
        assert read_class(client, Scope(), cls.id).classes[cls.id].school_name == cls.school_name
        assert client.request_count - before == 2  # one $batch call each
