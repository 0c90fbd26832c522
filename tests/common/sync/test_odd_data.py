"""Odd data from Microsoft 365 reaches the portal as the README decides, and stays put: names
in any Unicode (decomposed in Microsoft 365, composed in the portal), a 256-character display
name, a student with no school, a guest in an SDS class, a class whose teacher is gone."""

from __future__ import annotations

import unicodedata

from common.graph import sds
from tests.fixtures.engine import SyncWorld

LONG_NAME = ("Maja-" + "Ö" * 245 + " Lind")[:256]


def test_odd_people_and_classes_reach_the_portal_and_a_second_run_writes_nothing(
    make_world,
) -> None:
    world: SyncWorld = make_world()
    graph = world.microsoft.graph
    teacher = graph.create_teacher("Lena", "Lärare", school_id="S1")
    nfd = graph.create_student("Asa", "Oberg", school_id="S1")
    given, family = (unicodedata.normalize("NFD", n) for n in ("Åsa", "Öberg-Nguyễn"))
    graph.patch(
        f"/users/{nfd['id']}",
        json={"givenName": given, "surname": family, "displayName": f"{given} {family}"},
    ).raise_for_status()
    long = graph.create_student("Maja", "Lind", school_id="S1")
    graph.patch(f"/users/{long['id']}", json={"displayName": LONG_NAME}).raise_for_status()
    nowhere = graph.create_student("Nils", "Utan", school_id="S1")
    graph.patch(f"/users/{nowhere['id']}", json={sds.SCHOOL_ID: None}).raise_for_status()
    guest = graph.post(
        "/users",
        json={
            "accountEnabled": True,
            "displayName": "Gäst",
            "mailNickname": "gast",
            "userPrincipalName": f"gast_example.org#EXT#@{world.microsoft.domain}",
            "userType": "Guest",
            "passwordProfile": {"password": "Gast-1234-gast"},
        },
    ).json()
    graph.create_class(
        unicodedata.normalize("NFD", "7Ä Ämnesval"),
        school_id="S1",
        teachers=[teacher],
        students=[nfd, long, nowhere, guest],
    )
    graph.delete_user(teacher["id"])
    graph.purge(teacher["id"])  # the class's teacher is gone for good

    first = world.reconcile()

    assert first.outcome == "ok", first.message
    users = {u["externalId"]: u for u in world.portal.users()}
    assert set(users) == {nfd["id"], long["id"], nowhere["id"]}  # no guest
    assert (users[nfd["id"]]["givenName"], users[nfd["id"]]["familyName"]) == (
        "Åsa",
        "Öberg-Nguyễn",
    )
    assert users[long["id"]]["displayName"] == LONG_NAME
    assert users[nowhere["id"]].get("schools") in (None, [])
    (group,) = world.portal.groups()
    assert group["displayName"] == "7Ä Ämnesval"
    assert {users[e]["id"] for e in users} == set(group["members"])

    second = world.reconcile()
    assert (second.written, second.planned) == (0, {})
