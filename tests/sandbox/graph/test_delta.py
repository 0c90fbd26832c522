"""Delta rounds for users and groups: full first round, changes after, tokens that expire."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphClient, GraphSandbox, SandboxTenant
from tests.sandbox.graph.conftest import SHORT_DELTA_TOKEN_MAX_AGE_SECONDS

USERS_DELTA = "/users/delta?$select=displayName,givenName,surname"


def _round(graph: GraphClient, url: str) -> tuple[list[dict[str, Any]], str, int]:
    """Every item of one delta round, its deltaLink and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = graph.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        next_url = body.get("@odata.nextLink")
        if not next_url:
            return items, body["@odata.deltaLink"], pages
    raise AssertionError("unreachable")


def _members(items: list[dict[str, Any]], group_id: str) -> dict[str, bool]:
    """Member id -> present, merged over every appearance of the group in a round."""
    merged: dict[str, bool] = {}
    for item in items:
        if item["id"] == group_id:
            for ref in item.get("members@delta", []):
                merged[ref["id"]] = "@removed" not in ref
    return merged


def test_first_round_returns_every_user_over_several_pages_then_a_delta_link(
    graph_sandbox: GraphSandbox,
) -> None:
    tenant = graph_sandbox.new_tenant(generate=450, seed=7)
    items, delta_link, pages = _round(tenant.graph, "/users/delta?$top=5")
    assert pages >= 3  # 200 a page: $top is ignored on delta, as Graph does
    assert "$deltatoken=" in delta_link
    listed = {u["id"] for u in tenant.graph.users()}
    assert sorted(i["id"] for i in items) == sorted(listed)
    again, _, _ = _round(tenant.graph, delta_link)
    assert again == []


def test_round_trip_through_create_update_soft_delete_restore_and_purge(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    items, link, _ = _round(graph, USERS_DELTA)
    assert items == []

    student = graph.create_student("Moa", "Jonsson", school_id="S1")
    items, link, _ = _round(graph, link)
    assert [(i["id"], i["displayName"]) for i in items] == [(student["id"], "Moa Jonsson")]

    graph.rename_user(student["id"], "Moa", "Sjögren")
    items, link, _ = _round(graph, link)
    assert [(i["id"], i["surname"]) for i in items] == [(student["id"], "Sjögren")]

    graph.delete_user(student["id"])
    items, link, _ = _round(graph, link)
    assert items == [{"id": student["id"], "@removed": {"reason": "changed"}}]

    graph.restore(student["id"])
    items, link, _ = _round(graph, link)
    assert [(i["id"], "@removed" in i) for i in items] == [(student["id"], False)]

    graph.delete_user(student["id"])
    graph.purge(student["id"])
    items, link, _ = _round(graph, link)
    assert items == [{"id": student["id"], "@removed": {"reason": "deleted"}}]

    items, _, _ = _round(graph, link)
    assert items == []


def test_group_rounds_report_membership_changes_in_members_delta(
    graph_tenant: SandboxTenant,
) -> None:
    graph = graph_tenant.graph
    leaving = graph.create_student("Agnes", "Lund", school_id="S1")
    staying = graph.create_student("Arvid", "Lund", school_id="S1")
    klass = graph.create_class("4A", school_id="S1", students=[leaving, staying])
    items, link, _ = _round(graph, "/groups/delta?$select=displayName,members")
    assert _members(items, klass["id"]) == {leaving["id"]: True, staying["id"]: True}

    joining = graph.create_student("Alfred", "Lund", school_id="S1")
    graph.remove_member(klass["id"], leaving["id"])
    graph.add_member(klass["id"], joining["id"])
    items, link, _ = _round(graph, link)
    assert _members(items, klass["id"]) == {leaving["id"]: False, joining["id"]: True}
    removed = next(
        ref for item in items for ref in item.get("members@delta", []) if ref["id"] == leaving["id"]
    )
    assert removed == {
        "@odata.type": "#microsoft.graph.user",
        "id": leaving["id"],
        "@removed": {"reason": "deleted"},
    }

    graph.delete_group(klass["id"])
    items, _, _ = _round(graph, link)
    assert items == [{"id": klass["id"], "@removed": {"reason": "changed"}}]


def test_members_of_a_large_group_are_spread_over_pages(graph_sandbox: GraphSandbox) -> None:
    tenant = graph_sandbox.new_tenant(generate=2000, seed=3)
    groups = tenant.graph.groups()
    everyone = next(g for g in groups if g["displayName"].startswith("Alla elever"))
    listed = {m["id"] for m in tenant.graph.all_pages(f"/groups/{everyone['id']}/members?$top=999")}
    assert len(listed) > 400
    items, _, pages = _round(tenant.graph, "/groups/delta?$select=displayName,members")
    appearances = [i for i in items if i["id"] == everyone["id"]]
    assert len(appearances) >= 2  # the same group again on a later page: merge by id
    assert set(_members(items, everyone["id"])) == listed
    assert {i["id"] for i in items} == {g["id"] for g in groups}
    assert pages >= 2


def test_deltatoken_latest_skips_the_current_state(graph_tenant: SandboxTenant) -> None:
    graph = graph_tenant.graph
    graph.create_staff("Ingrid", "Berg")
    body = graph.get("/users/delta?$deltatoken=latest").json()
    assert body["value"] == []
    later = graph.create_staff("Ingrid", "Dahl")
    items, _, _ = _round(graph, body["@odata.deltaLink"])
    assert [i["id"] for i in items] == [later["id"]]


def test_delta_filter_takes_ids_only(graph_tenant: SandboxTenant) -> None:
    graph = graph_tenant.graph
    wanted = graph.create_staff("Nils", "Ek")
    graph.create_staff("Nils", "Ask")
    items, _, _ = _round(graph, f"/users/delta?$filter=id eq '{wanted['id']}'")
    assert [i["id"] for i in items] == [wanted["id"]]
    refused = graph.get("/users/delta?$filter=displayName eq 'Nils Ek'")
    assert refused.status_code == 400


def test_delta_tokens_older_than_the_maximum_age_answer_sync_state_not_found(
    short_lived_sandbox: GraphSandbox,
) -> None:
    tenant = short_lived_sandbox.new_tenant()
    _, link, _ = _round(tenant.graph, "/users/delta")
    assert tenant.graph.get(link).status_code == 200
    # time itself must pass: the token's maximum age (short, yet long enough for the request
    # above to be answered inside it on a loaded machine)
    time.sleep(SHORT_DELTA_TOKEN_MAX_AGE_SECONDS + 0.1)
    response = tenant.graph.get(link)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "syncStateNotFound"


def test_admin_can_expire_every_delta_token_now(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    _, link, _ = _round(graph_tenant.graph, "/groups/delta")
    graph_sandbox.admin("POST", f"/tenants/{graph_tenant.id}/expire-delta-tokens")
    response = graph_tenant.graph.get(link)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "syncStateNotFound"
    items, _, _ = _round(graph_tenant.graph, "/groups/delta")  # a new round works
    assert items == []


def test_delta_gone_knob_answers_410_once(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    _, link, _ = _round(graph_tenant.graph, "/users/delta")
    graph_sandbox.admin("POST", f"/tenants/{graph_tenant.id}/delta-gone")
    gone = graph_tenant.graph.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "resyncRequired"
    assert graph_tenant.graph.get(link).status_code == 200


def test_a_forged_delta_token_is_refused(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.get("/users/delta?$deltatoken=made-up")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "syncStateNotFound"


@pytest.mark.parametrize("spelling", ["delta", "delta()"])
def test_education_class_delta_reports_classes_and_their_changes_not_deleted_ones(
    graph_sandbox: GraphSandbox, spelling: str
) -> None:
    # "educationClass: delta": GET /education/classes/delta, "including membership changes";
    # "educationClass deltas do not include deleted classes"
    tenant = graph_sandbox.new_tenant(load=[("sds-classic", SDS_SAMPLES / "classic-min")])
    graph = tenant.graph
    first, link, _ = _round(graph, f"/education/classes/{spelling}?$select=id,displayName")
    assert {c["displayName"] for c in first} == {"Math - Algebra 1", "Math - Algebra 2"}
    assert all(c.keys() == {"id", "displayName"} for c in first)
    kept, gone = sorted(first, key=lambda c: c["displayName"])
    student = graph.get(f"/users/OKlein@{graph.domain}").json()
    graph.remove_member(kept["id"], student["id"])
    graph.delete_group(gone["id"])
    second, _, _ = _round(graph, link)
    assert [c["id"] for c in second] == [kept["id"]]


def test_education_user_delta_reports_users_then_the_updated_ones(
    graph_sandbox: GraphSandbox,
) -> None:
    # "educationUser: delta": GET /education/users/delta, "newly created or updated" users
    tenant = graph_sandbox.new_tenant(load=[("sds-classic", SDS_SAMPLES / "classic-min")])
    graph = tenant.graph
    first, link, _ = _round(graph, "/education/users/delta()")
    roles = [u["primaryRole"] for u in first]
    assert (roles.count("student"), roles.count("teacher")) == (22, 2)
    ora = graph.get(f"/users/OKlein@{graph.domain}").json()
    graph.rename_user(ora["id"], "Ora", "Klein-Berg")
    second, _, _ = _round(graph, link)
    assert [(u["id"], u["surname"]) for u in second] == [(ora["id"], "Klein-Berg")]


def test_education_school_delta_lists_the_schools_then_nothing(graph_sandbox: GraphSandbox) -> None:
    # "educationSchool: delta": GET /education/schools/delta; the sandbox's schools come only
    # from SDS loads, so they do not change after the first round
    tenant = graph_sandbox.new_tenant(load=[("sds-classic", SDS_SAMPLES / "classic-min")])
    first, link, _ = _round(tenant.graph, "/education/schools/delta()?$select=id,displayName")
    assert {s["displayName"] for s in first} == {"Contoso High School", "Fabrikam High School"}
    assert all(s.keys() == {"id", "displayName"} for s in first)
    second, again, _ = _round(tenant.graph, link)
    assert second == []
    assert "$deltatoken=" in again
