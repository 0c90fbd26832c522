"""``/metrics`` after a small sync: what operations alert on is there, and counts what happened."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.graph import sds
from common.state.dispatch import OBJECT_RETRY_INTERVALS_SECONDS
from tests.fixtures.live import CHANGE_TIMEOUT_SECONDS, LiveWorld, wait_for
from tests.worker.test_realtime import classic_class

pytestmark = pytest.mark.slow  # the live stack: the listener under gunicorn and rq workers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


#: syncs of one student while Graph throttles 30 % of its answers (a request fails only after
#: four 429s in a row, 1 in 120); all 20 syncs unthrottled: about 1 in 10^3 at one request a sync
#: and far less at the several a sync makes
MAX_RENAMES = 20
#: a sync whose request met four 429s in a row fails, and rq runs it again after 30 s
#: (``OBJECT_RETRY_INTERVALS_SECONDS``): a change under throttling may take that long more
THROTTLED_CHANGE_SECONDS = OBJECT_RETRY_INTERVALS_SECONDS[0] + CHANGE_TIMEOUT_SECONDS


def throttled_count(world: LiveWorld) -> float:
    found = samples(world.stack.metrics())
    return found.get(("skolsynk_graph_requests_total", (("status", "429"),)), 0)


def test_metrics_after_a_small_sync_count_what_happened(live_world) -> None:
    world: LiveWorld = live_world()
    cls = classic_class(world)
    # throttle Graph a little, so that 429s happen and are counted
    world.graph_sandbox.set_knobs(world.tenant_id, throttle_share=0.3, retry_after_seconds=0)
    graph = world.microsoft.graph
    student = graph.create_student("Elsa", "Nyström", school_id=cls[sds.SCHOOL_ID])
    world.wait_user(
        student["id"],
        lambda u: u["active"],
        "the student arrived",
        timeout=THROTTLED_CHANGE_SECONDS,
    )
    # each sync meets a throttled answer at even odds: change the student until one has
    for attempt in range(MAX_RENAMES):
        if throttled_count(world) > 0:
            break
        family = f"Nyström-{attempt}"
        graph.rename_user(student["id"], "Elsa", family)
        world.wait_user(
            student["id"],
            lambda u, f=family: u["familyName"] == f,
            "renamed",
            timeout=THROTTLED_CHANGE_SECONDS,
        )
    world.graph_sandbox.set_knobs(world.tenant_id, throttle_share=0.0)

    found = wait_for(
        lambda: throttled_count(world) > 0 and samples(world.stack.metrics()),
        what="a 429 is counted",
    )

    assert value(found, "skolsynk_state_up") == 1
    assert value(found, "skolsynk_notifications_received_total", endpoint="notifications") > 0
    assert value(found, "skolsynk_notifications_accepted_total") > 0
    assert value(found, "skolsynk_sync_runs_total", kind="reconcile", outcome="ok") >= 1
    assert value(found, "skolsynk_sync_runs_total", kind="live", outcome="ok") >= 1
    assert value(found, "skolsynk_graph_requests_total", status="200") > 0
    assert value(found, "skolsynk_portal_writes_total", kind="create_user") > 0
    assert value(found, "skolsynk_run_seconds_count", kind="live") > 0
    assert value(found, "skolsynk_queue_depth", queue="live") >= 0
    assert value(found, "skolsynk_held_actions", tenant=world.tenant_id) == 0
    for resource in ("/users", "/groups"):
        expires = value(
            found,
            "skolsynk_subscription_expiry_timestamp_seconds",
            tenant=world.tenant_id,
            resource=resource,
        )
        assert expires > time.time() + 86400
    assert value(found, "skolsynk_last_reconcile_ok", tenant=world.tenant_id) == 1
    assert value(found, "skolsynk_last_reconcile_duration_seconds", tenant=world.tenant_id) > 0
