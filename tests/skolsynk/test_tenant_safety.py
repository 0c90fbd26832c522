"""Never duplicate, never cross, as an operator meets it: ``skolsynk`` run as real processes
against the sandbox tenant, the reference portal and a private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from common.state import leases
from common.state.dispatch import RECONCILE_QUEUE, Dispatcher
from tests.fixtures.engine import SyncWorld
from tests.fixtures.live import wait_for

#: while the second process starts, every portal request of the first takes this long, so the
#: first holds its lease for many seconds however loaded the machine is; it is reset as soon as
#: the second has had its say, so the first then finishes quickly
STALLED_PORTAL_MS = 5000


def stall_portal(world: SyncWorld, *, stalled: bool = True) -> None:
    world.portal_server.set_knobs(world.portal.name, latency_ms=STALLED_PORTAL_MS if stalled else 0)


def skolsynk(
    world: SyncWorld, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **world.env, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def start_skolsynk(world: SyncWorld, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **world.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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


def test_a_second_tenant_on_the_same_portal_is_refused_however_its_url_is_written(
    make_world,
) -> None:
    world = make_world()
    url = world.portal.scim_url  # http://127.0.0.1:PORT/scim/v2/ORG
    scheme, rest = url.split("://", 1)
    host, path = rest.split("/", 1)
    spellings = [
        url + "/",
        f"{scheme}://{host}/{path.upper()}",
        f"{scheme.upper()}://{host}//{path}/",
        f"{scheme}://{host}/scim/v2/./{path.rsplit('/', 1)[1]}",
    ]
    before = skolsynk(world, "tenant", "list", "--format", "json").stdout
    for spelling in spellings:
        added = skolsynk(
            world,
            "tenant",
            "add",
            str(uuid.uuid4()),
            "--name",
            "Malmö stad",
            "--test-portal",
            spelling,
            "--test-token",
            "some-token-value",
        )
        assert added.returncode == 1, (spelling, added.stdout)
        assert f"is already the test portal of tenant Skola {world.microsoft.name}" in (
            added.stderr
        ), spelling
        assert "Traceback" not in added.stderr
    assert skolsynk(world, "tenant", "list", "--format", "json").stdout == before

    # tenant set is held to the same rule
    other = world.portal_server.new_organisation()
    second = str(uuid.uuid4())
    assert skolsynk(
        world, "tenant", "add", second, "--name", "Malmö stad",
        "--test-portal", other.scim_url, "--test-token", other.token,
    ).returncode == 0  # fmt: skip
    moved = skolsynk(world, "tenant", "set", second, "--test-portal", url + "/")
    assert moved.returncode == 1
    assert "one portal organisation belongs to one tenant" in moved.stderr


def test_https_default_port_is_the_same_portal(make_world) -> None:
    world = make_world()
    first = str(uuid.uuid4())
    common = ("--test-token", "tok-1234567890")
    assert skolsynk(
        world, "tenant", "add", first, "--name", "A",
        "--test-portal", "https://Portal.Example/scim/v2/lund", *common,
    ).returncode == 0  # fmt: skip
    again = skolsynk(
        world, "tenant", "add", str(uuid.uuid4()), "--name", "B",
        "--test-portal", "https://portal.example:443/scim/v2/lund/", *common,
    )  # fmt: skip
    assert again.returncode == 1
    assert "already the test portal of tenant A" in again.stderr


def test_a_tenant_given_by_its_domain_is_looked_up_and_cannot_be_registered_twice(
    make_world,
) -> None:
    world = make_world()  # registered under its id
    other = world.portal_server.new_organisation()
    by_domain = skolsynk(
        world, "tenant", "add", world.microsoft.domain, "--name", "Again",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert by_domain.returncode == 1
    assert f"Tenant {world.tenant_id} is already registered" in by_domain.stderr

    fresh = world.graph_sandbox.new_tenant()
    added = skolsynk(
        world, "tenant", "add", fresh.domain.upper(), "--name", "Ny skola",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"({fresh.id}, looked up from {fresh.domain.upper()})" in added.stdout
    shown = json.loads(skolsynk(world, "tenant", "show", "Ny skola", "--format", "json").stdout)
    assert shown["id"] == fresh.id

    unknown = skolsynk(
        world, "tenant", "add", "ingen-sadan.onmicrosoft.com", "--name", "X",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "No Microsoft 365 tenant owns the domain 'ingen-sadan.onmicrosoft.com'" in (
        unknown.stderr
    )


@pytest.mark.parametrize("given", ["tenant-x", "lund", "1234", "{" + "0" * 36 + "}"])
def test_a_tenant_id_that_is_no_guid_is_refused(make_world, given: str) -> None:
    world = make_world()
    other = world.portal_server.new_organisation()
    added = skolsynk(
        world, "tenant", "add", given, "--name", "X",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert added.returncode == 1
    assert f"{given!r} is not a Microsoft 365 tenant id." in added.stderr
    assert "a GUID such as" in added.stderr


def test_tokens_come_from_a_file_or_standard_input(make_world, tmp_path: Path) -> None:
    world = make_world(sample="classic-min")
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token-from-a-file\n")
    from_file = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token-file", str(token_file)
    )
    assert from_file.returncode == 0, from_file.stderr
    refused = skolsynk(world, "reconcile", world.tenant_id)
    assert refused.returncode == 1 and "token" in refused.stderr.lower()

    from_stdin = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token", "-",
        stdin=world.portal.token + "\n",
    )  # fmt: skip
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 0
    assert len(world.portal.users()) == 24

    empty = skolsynk(world, "tenant", "set", world.tenant_id, "--test-token", "-", stdin="")
    assert empty.returncode == 1
    assert "--test-token - (standard input) gave an empty token." in empty.stderr
    missing = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token-file", str(tmp_path / "nope")
    )
    assert missing.returncode == 1
    assert "--test-token-file" in missing.stderr and "cannot read it" in missing.stderr


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


def test_tenant_options_are_checked_as_options(make_world) -> None:
    world = make_world()
    empty = skolsynk(world, "tenant", "set", world.tenant_id, "--test-portal", "")
    assert empty.returncode == 1
    assert "--test-portal is empty" in empty.stderr

    again = skolsynk(world, "tenant", "add", world.tenant_id, "--name", "Någon annan")
    assert again.returncode == 1
    assert f"Tenant {world.tenant_id} is already registered" in again.stderr

    no_portal = skolsynk(world, "tenant", "add", str(uuid.uuid4()), "--name", "Ny")
    assert no_portal.returncode == 1
    assert "needs its test portal: add --test-portal URL" in no_portal.stderr
    assert "variables" not in no_portal.stderr

    token_only = skolsynk(world, "tenant", "set", world.tenant_id, "--production-token", "x" * 20)
    assert token_only.returncode == 1
    assert "--production-token was given, but tenant" in token_only.stderr
    assert "add --production-portal URL" in token_only.stderr

    share = skolsynk(world, "tenant", "set", world.tenant_id, "--max-removal-share", "5")
    assert share.returncode == 1 and "--max-removal-share must be" in share.stderr

    add_help = skolsynk(world, "tenant", "add", "--help").stdout
    assert "--all-schools" not in add_help and "--clear-lists" not in add_help
    assert "exit codes:" in add_help and "3  the configuration" in add_help
    assert "exit codes:" in skolsynk(world, "--help").stdout


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
