"""One full reconcile per tenant at a time, as operators meet it: ``skolsynk reconcile``
processes, an rq worker and ``tenant set`` against the sandbox, the portal and a private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from common.state import leases
from common.state.dispatch import RECONCILE_QUEUE, Dispatcher
from tests.fixtures.cli import skolsynk, start_skolsynk
from tests.fixtures.engine import SyncWorld
from tests.fixtures.live import wait_for

#: while the second process starts, every portal request of the first takes this long, so the
#: first holds its lease for many seconds however loaded the machine is; it is reset as soon as
#: the second has had its say, so the first then finishes quickly
STALLED_PORTAL_MS = 5000


def stall_portal(world: SyncWorld, *, stalled: bool = True) -> None:
    world.portal_server.set_knobs(world.portal.name, latency_ms=STALLED_PORTAL_MS if stalled else 0)


def no_twins(world: SyncWorld) -> tuple[int, int]:
    """Portal users and groups, after checking that no two share an ``externalId``."""
    users, groups = world.portal.users(), world.portal.groups()
    for kind, objects in (("users", users), ("groups", groups)):
        twins = [e for e, n in Counter(o.get("externalId") for o in objects).items() if n > 1]
        assert not twins, f"{kind} with the same externalId: {twins}"
    return len(users), len(groups)


@pytest.mark.slow
def test_two_reconciles_started_together_write_once_and_one_names_the_other(
    make_world,
) -> None:
    world = make_world(sample="classic-min")
    stall_portal(world)

    first = start_skolsynk(world, "reconcile", world.tenant_id)
    second = start_skolsynk(world, "reconcile", world.tenant_id)
    wait_for(
        lambda: first.poll() is not None or second.poll() is not None,
        timeout=120,
        what="one of the two reconciles ends",
    )
    stall_portal(world, stalled=False)
    results = [(p.wait(120), *p.communicate()) for p in (first, second)]

    assert [code for code, _, _ in results] == [0, 0], results
    refused = [out for _, out, _ in results if "already running" in out]
    assert len(refused) == 1, results
    assert (
        f"A reconcile of Skola {world.microsoft.name} is already running, started " in (refused[0])
    )
    assert " on " in refused[0] and "(pid " in refused[0]  # which process, on which machine
    assert no_twins(world) == (24, 2)
    audit = skolsynk(world, "audit", world.tenant_id, "--format", "json")
    creates = [e for e in json.loads(audit.stdout) if e["kind"] == "create_user"]
    assert len(creates) == 24


@pytest.mark.slow
def test_a_cli_reconcile_during_a_queued_reconcile_writes_nothing_and_says_so(
    make_world, tmp_path: Path
) -> None:
    world = make_world(sample="classic-min")
    stall_portal(world)
    client = world.services.redis
    Dispatcher(client).enqueue_reconcile(world.tenant_id, why="schedule")
    rq = str(Path(sys.executable).with_name("rq"))
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [
                rq,
                "worker",
                "--burst",
                "--serializer",
                "rq.serializers.JSONSerializer",
                "--url",
                world.env["REDIS_URL"],
                RECONCILE_QUEUE,
            ],
            env={**os.environ, **world.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: leases.reconcile_running(client, world.tenant_id), what="rq reconciles")
        by_hand = skolsynk(world, "reconcile", world.tenant_id)
        stall_portal(world, stalled=False)
        assert worker.wait(120) == 0
    finally:
        worker.kill()
        worker.wait(10)

    assert by_hand.returncode == 0, by_hand.stderr
    assert "is already running, started " in by_hand.stdout
    assert "by the scheduler; this one wrote nothing." in by_hand.stdout
    assert no_twins(world) == (24, 2)
    status = json.loads(skolsynk(world, "status", "--format", "json").stdout)
    (tenant,) = status["tenants"]
    assert tenant["last_reconcile"]["applied"]["create_user"] == 24


@pytest.mark.slow
def test_a_tenant_disabled_while_its_reconcile_reads_gets_nothing_written(make_world) -> None:
    world = make_world(sample="classic-min")
    world.graph_sandbox.set_knobs(world.tenant_id, latency_ms=STALLED_PORTAL_MS)
    run = start_skolsynk(world, "reconcile", world.tenant_id)
    client = world.services.redis
    wait_for(lambda: leases.reconcile_running(client, world.tenant_id), what="it reconciles")
    assert skolsynk(world, "tenant", "set", world.tenant_id, "--disable").returncode == 0
    world.graph_sandbox.set_knobs(world.tenant_id, latency_ms=0)
    run.wait(120)
    out, _ = run.communicate()
    assert "was disabled during the run; nothing was written." in out
    assert world.portal.users() == []
