"""Notifications for objects Graph no longer shows free their worker at once: the second look
(replication can lag) is a scheduled job, so an unrelated change is not kept waiting."""

from __future__ import annotations

import time

import pytest

from common.state.guards import RECHECK_DELAYS_SECONDS
from tests.fixtures.live import LiveWorld, wait_for
from tests.listener.conftest import metric

pytestmark = pytest.mark.slow

PURGED = 10
#: two workers; before, each purged object held one for 7.5 s (10 of them: about 40 s)
UNRELATED_CHANGE_SECONDS = 5.0


def test_purged_objects_free_their_workers_at_once_and_are_removed_after_the_rechecks(
    live_world,
) -> None:
    world: LiveWorld = live_world(generate=60, seed=11)
    graph = world.microsoft.graph
    students = [
        u
        for u in graph.users()
        if world.portal_user(u["id"]) is not None and u.get("jobTitle", "").lower() != "teacher"
    ]
    gone, bystander = students[:PURGED], students[PURGED]
    for user in gone:
        graph.delete_user(user["id"])
    for user in gone:
        world.wait_user(user["id"], lambda u: not u["active"], "the deleted student is inactive")

    for user in gone:
        graph.purge(user["id"])
    started = time.monotonic()
    graph.rename_user(bystander["id"], "Tove", "Lindqvist")
    world.wait_user(
        bystander["id"],
        lambda u: u["familyName"] == "Lindqvist",
        "the unrelated rename is in the portal",
    )
    assert time.monotonic() - started < UNRELATED_CHANGE_SECONDS

    # the purged students are believed gone after the bounded re-checks, and then removed
    wait_for(
        lambda: all(world.portal_user(u["id"]) is None for u in gone),
        timeout=sum(RECHECK_DELAYS_SECONDS) + 30,
        what="the purged students are gone from the portal",
    )
    text = world.stack.metrics()
    assert metric(text, "skolsynk_replication_rechecks_total", kind="user") >= PURGED * len(
        RECHECK_DELAYS_SECONDS
    )
