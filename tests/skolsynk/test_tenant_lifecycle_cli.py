"""A tenant's life after registration, as an operator meets it: key rotation, switching to
production, disabling and removing; ``skolsynk`` run as a process."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from common.state.dispatch import RECONCILE_QUEUE, Dispatcher
from tests.fixtures.cli import skolsynk

pytestmark = pytest.mark.slow  # each test runs the command line and a reconcile


def test_a_rotated_secret_key_keeps_everything_working_and_a_wrong_one_only_what_needs_tokens(
    make_world,
) -> None:
    world = make_world(sample="classic-min")
    old = world.env["SKOLSYNK_SECRET_KEY"]
    rotated = {
        "SKOLSYNK_SECRET_KEY": "a-brand-new-secret-key-42",
        "SKOLSYNK_SECRET_KEY_PREVIOUS": old,
    }
    assert skolsynk(world, "reconcile", world.tenant_id, env=rotated).returncode == 0
    rekeyed = skolsynk(world, "tenant", "rekey", env=rotated)
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "Encrypted 1 portal tokens" in rekeyed.stdout
    assert "SKOLSYNK_SECRET_KEY_PREVIOUS is no longer needed." in rekeyed.stdout
    only_new = {"SKOLSYNK_SECRET_KEY": "a-brand-new-secret-key-42"}
    assert skolsynk(world, "preview", world.tenant_id, env=only_new).returncode == 0

    wrong = {"SKOLSYNK_SECRET_KEY": "not-the-key-it-was-written-with"}
    for command in (
        ("tenant", "list"),
        ("tenant", "show", world.tenant_id),
        ("status",),
        ("tenant", "set", world.tenant_id, "--class-pattern", "*"),
    ):
        result = skolsynk(world, *command, env=wrong)
        assert result.returncode == 0, (command, result.stderr)
    shown = skolsynk(world, "tenant", "show", world.tenant_id, env=wrong)
    assert "cannot be decrypted" in shown.stdout
    needs_token = skolsynk(world, "reconcile", world.tenant_id, env=wrong)
    assert needs_token.returncode == 1
    assert "cannot be decrypted" in needs_token.stderr
    assert "SKOLSYNK_SECRET_KEY_PREVIOUS" in needs_token.stderr
    assert "Traceback" not in needs_token.stderr
    fixed = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token", "-",
        stdin=world.portal.token, env=wrong,
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert skolsynk(world, "reconcile", world.tenant_id, env=wrong).returncode == 0


def test_switching_to_production_fills_the_production_portal_and_status_shows_both(
    make_world,
) -> None:
    world = make_world(sample="classic-min")
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 0
    production = world.portal_server.new_organisation()

    queued = skolsynk(
        world, "tenant", "set", world.tenant_id, "--production-portal", production.scim_url,
        "--production-token", production.token, "--environment", "production",
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    assert "switched to the production portal, so a full reconcile against" in queued.stdout
    assert "is queued" in queued.stdout
    queue = Queue(RECONCILE_QUEUE, connection=world.services.redis, serializer=JSONSerializer)
    assert [(j.func_name, j.args, j.meta["why"]) for j in queue.get_jobs()] == [
        ("worker.jobs.full_reconcile", [world.tenant_id], "environment switch")
    ]
    status = json.loads(skolsynk(world, "status", world.tenant_id, "--format", "json").stdout)
    assert status["last_reconcile"] is None  # nothing ran against production yet
    assert status["environments"]["test"]["last_reconcile"]["outcome"] == "ok"

    queue.empty()
    world.services.redis.delete(f"skolsynk:reconcile:pending:{world.tenant_id}")
    back = skolsynk(world, "tenant", "set", world.tenant_id, "--environment", "test")
    assert back.returncode == 0
    here = skolsynk(
        world, "tenant", "set", world.tenant_id, "--environment", "production", "--reconcile"
    )
    assert here.returncode == 0, here.stderr
    assert "Reconciled against the production portal: ok, 28 changes written." in here.stdout
    assert len(production.users()) == 24

    status = json.loads(skolsynk(world, "status", world.tenant_id, "--format", "json").stdout)
    assert status["environment"] == "production"
    assert status["last_reconcile"]["environment"] == "production"
    assert set(status["environments"]) == {"test", "production"}
    text = skolsynk(world, "status", world.tenant_id).stdout
    assert "test portal" in text and "production portal" in text


def test_disabling_stops_writes_and_reconciles_until_enabled(make_world) -> None:
    world = make_world(sample="classic-min")
    off = skolsynk(world, "tenant", "set", world.tenant_id, "--disable")
    assert off.returncode == 0
    assert "nothing is written to its portal until `--enable`" in off.stdout
    refused = skolsynk(world, "reconcile", world.tenant_id)
    assert refused.returncode == 1
    assert "is disabled: nothing is written to its portal" in refused.stderr
    assert world.portal.users() == []
    on = skolsynk(world, "tenant", "set", world.tenant_id, "--enable")
    assert "enabled again, so a full reconcile against" in on.stdout
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 0
    assert len(world.portal.users()) == 24


def test_removing_a_tenant_drops_its_queued_work_and_keeps_its_audit_log(make_world) -> None:
    world = make_world(sample="classic-min")
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 0
    client: redis.Redis = world.services.redis
    dispatcher = Dispatcher(client)
    dispatcher.enqueue_change(world.tenant_id, "user", str(uuid.uuid4()))
    dispatcher.enqueue_reconcile(world.tenant_id, why="schedule")
    other = str(uuid.uuid4())
    dispatcher.enqueue_change(other, "user", str(uuid.uuid4()))

    removed = skolsynk(world, "tenant", "remove", world.tenant_id)
    assert removed.returncode == 0, removed.stderr
    assert "dropped 2 queued jobs" in removed.stdout
    assert dispatcher.live.count == 1  # the other tenant's job stays
    assert not list(client.scan_iter(match=f"skolsynk:pending:{world.tenant_id}:*"))
    audit = skolsynk(world, "audit", world.tenant_id, "--format", "json")
    assert audit.returncode == 0, audit.stderr
    assert sum(1 for e in json.loads(audit.stdout) if e["kind"] == "create_user") == 24
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 1
