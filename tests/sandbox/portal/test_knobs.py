"""Realism knobs (latency, 429 with Retry-After, 5xx) and request counters."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_user, user_body


@pytest.fixture
def clean(portal_server: PortalServer) -> Iterator[PortalServer]:
    portal_server.reset()
    yield portal_server
    portal_server.reset()


def test_latency_is_added_to_one_organisation_only(clean: PortalServer) -> None:
    slow, fast = clean.new_organisation(), clean.new_organisation()
    clean.set_knobs(slow.name, latency_ms=300)

    started = time.monotonic()
    slow.scim.get("/Users")
    slow_seconds = time.monotonic() - started
    started = time.monotonic()
    fast.scim.get("/Users")
    fast_seconds = time.monotonic() - started
    slow.close()
    fast.close()

    assert slow_seconds >= 0.3
    assert fast_seconds < 0.3


def test_throttled_requests_are_429_with_retry_after_and_change_nothing(
    clean: PortalServer, portal_org: PortalOrg
) -> None:
    clean.set_knobs(portal_org.name, throttle_share=1.0, retry_after_seconds=7)

    response = portal_org.scim.post("/Users", json=user_body("strypt@skola.se"))
    clean.set_knobs(portal_org.name, throttle_share=0.0)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["status"] == "429"
    assert portal_org.scim.get("/Users").json()["totalResults"] == 0


def test_failures_are_5xx_and_change_nothing(clean: PortalServer, portal_org: PortalOrg) -> None:
    user = create_user(portal_org, "fel@skola.se")
    clean.set_knobs(portal_org.name, error_share=1.0, error_status=500)

    response = portal_org.scim.delete(f"/Users/{user['id']}")
    clean.set_knobs(portal_org.name, error_share=0.0)

    assert response.status_code == 500
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert portal_org.scim.get(f"/Users/{user['id']}").status_code == 200


def test_a_share_of_requests_fails(clean: PortalServer, portal_org: PortalOrg) -> None:
    clean.set_knobs(portal_org.name, error_share=0.5)

    statuses = [portal_org.scim.get("/Users").status_code for _ in range(60)]

    assert set(statuses) == {200, 503}
    assert 10 <= statuses.count(503) <= 50


def test_global_knobs_apply_to_every_organisation_and_reset(
    clean: PortalServer, portal_org: PortalOrg
) -> None:
    knobs = clean.set_knobs(throttle_share=1.0)

    throttled = portal_org.scim.get("/Users").status_code
    clean.reset()
    after_reset = portal_org.scim.get("/Users").status_code

    assert knobs["throttle_share"] == 1.0
    assert (throttled, after_reset) == (429, 200)


def test_knobs_are_checked(clean: PortalServer) -> None:
    url = f"{clean.url}/_sandbox/knobs"

    unknown = clean.admin.put(url, json={"speed": 1}, timeout=10)
    out_of_range = clean.admin.put(url, json={"error_share": 2}, timeout=10)

    assert unknown.status_code == 400 and out_of_range.status_code == 400
    assert clean.admin.get(url, timeout=10).json()["error_share"] == 0.0


def test_counters_per_organisation_method_status_and_write_kind(
    clean: PortalServer, portal_org: PortalOrg
) -> None:
    user = create_user(portal_org, "r@skola.se")
    portal_org.scim.get(f"/Users/{user['id']}")
    portal_org.scim.get("/Users/none")
    portal_org.scim.post("/Users", json=user_body("r@skola.se"))
    portal_org.scim.delete(f"/Users/{user['id']}")

    counters = clean.counters()["organisations"][portal_org.name]

    assert counters["requests"] == {
        "POST": {"201": 1, "409": 1},
        "GET": {"200": 1, "404": 1},
        "DELETE": {"204": 1},
    }
    assert counters["writes"] == {"user.create": 1, "user.delete": 1}
    assert counters["total"] == 5


def test_counters_can_be_cleared(clean: PortalServer, portal_org: PortalOrg) -> None:
    portal_org.scim.get("/Users")

    clean.admin.delete(f"{clean.url}/_sandbox/counters", timeout=10)

    assert clean.counters()["total"] == 0


def test_lost_answers_come_after_the_write(clean: PortalServer, portal_org: PortalOrg) -> None:
    clean.set_knobs(portal_org.name, lost_answer_share=1.0, error_status=502)

    created = portal_org.scim.post("/Users", json=user_body("borttappad@skola.se"))
    read = portal_org.scim.get("/Users")
    clean.set_knobs(portal_org.name, lost_answer_share=0.0)

    assert created.status_code == 502
    assert read.status_code == 200
    assert [u["userName"] for u in read.json()["Resources"]] == ["borttappad@skola.se"]
