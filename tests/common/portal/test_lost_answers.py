"""Issue 15.1 against the reference portal: creates whose answers were lost (the write done,
then a 5xx) during a first sync never make a twin."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_a_first_sync_under_lost_answers_makes_no_two_objects_with_one_external_id(
    make_world: Any,
) -> None:
    world = make_world(generate=300, seed=11)
    world.portal_server.set_knobs(world.portal.name, lost_answer_share=0.3)

    report = world.reconcile()
    counters = world.portal_server.counters()["organisations"][world.portal.name]
    world.portal_server.set_knobs(world.portal.name, lost_answer_share=0.0)

    users, groups = world.portal.users(), world.portal.groups()
    user_ids = Counter(u["externalId"] for u in users)
    group_ids = Counter(g["externalId"] for g in groups)
    lost = counters["requests"]["POST"].get("503", 0)
    print(
        f"created {len(users)} users and {len(groups)} classes; answers lost: {lost}; "
        f"duplicates: {sum(n - 1 for n in (user_ids + group_ids).values())}"
    )
    assert report.outcome == "ok", (report.message, report.failed[:3])
    assert lost >= 10
    assert max(user_ids.values()) == 1 and max(group_ids.values()) == 1
    assert counters["writes"]["user.create"] == len(users) == report.microsoft_users
    assert counters["writes"]["group.create"] == len(groups) == report.microsoft_classes
    assert world.reconcile().written == 0
