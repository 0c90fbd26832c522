"""What the listener and the workers write to their logs, read as an operator reads them."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from common.graph import sds
from tests.fixtures.live import LiveWorld, wait_for
from tests.worker.test_realtime import classic_class


def log_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


@pytest.mark.slow
def test_the_listener_log_says_where_it_listens(live_world) -> None:
    world: LiveWorld = live_world(generate=10)
    port = world.stack.listener_url.rsplit(":", 1)[1]
    events = log_events(world.stack.workdir / "listener.log")
    (listening,) = [e["event"] for e in events if e["event"].startswith("Listening at")]
    assert f"http://127.0.0.1:{port}" in listening, listening


#: rq's lines that name one job: "live: func(...) (ID)" on taking it, "Job OK (ID)" at its end
NAMES_A_JOB = re.compile(r"\(([0-9a-f-]{36})\)$")
KEPT = re.compile(r"job ([0-9a-f-]{36}) result is kept")


@pytest.mark.slow
def test_worker_lines_after_a_job_no_longer_carry_its_ids(live_world) -> None:
    world: LiveWorld = live_world()
    cls = classic_class(world)
    # three jobs on two workers: one worker takes a job after finishing another
    for n in range(3):
        student = world.microsoft.graph.create_student(
            "Logga", f"Rad {n}", school_id=cls[sds.SCHOOL_ID]
        )
        world.wait_user(student["id"], lambda u: u["active"], "the new student in the portal")

    def after_a_job() -> list[tuple[str, dict[str, Any]]]:
        """(finished job id, the worker's next line) for every job a worker finished."""
        pairs = []
        for worker in world.stack.workers:
            for done, then in itertools.pairwise(log_events(worker.log_path)):
                if kept := KEPT.search(done["event"]):
                    pairs.append((kept.group(1), then))
        return pairs

    wait_for(after_a_job, what="a worker logging on after a finished job")
    for finished, line in after_a_job():
        assert line.get("job_id") != finished, line
    for worker in world.stack.workers:
        for event in log_events(worker.log_path):
            named = NAMES_A_JOB.search(event["event"])
            if named and "job_id" in event:
                assert event["job_id"] == named.group(1), event
