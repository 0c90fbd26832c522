"""The ``skolsynk`` command as a school administrator uses it, run as a real process."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import replace

import pytest

from common.config import Secret
from tests.fixtures.engine import SyncWorld

pytestmark = pytest.mark.slow  # each test runs the command line against real processes


def add_lookalike(world: SyncWorld) -> dict:
    """An unmanaged portal account with a student's name and school but another e-mail."""
    student = next(
        u
        for u in world.microsoft.graph.users(
            select=["extension_fe2174665583431c953114ff7268b7b3_Education_SyncSource_SchoolId"]
        )
        if u.get("mail")
        and u.get("extension_fe2174665583431c953114ff7268b7b3_Education_SyncSource_SchoolId")
    )
    school = student["extension_fe2174665583431c953114ff7268b7b3_Education_SyncSource_SchoolId"]
    world.portal.create_user(
        "privat.adress@example.org",
        given_name=student["givenName"],
        family_name=student["surname"],
        schools=[school],
        role="student",
    )
    return student


def test_preview_shows_a_collision_in_text_json_and_csv(make_world) -> None:
    world = make_world(sample="classic-25")
    student = add_lookalike(world)

    text = world.cli("preview", world.tenant_id)
    assert text.returncode == 0, text.stderr
    assert "COLLISIONS (1)" in text.stdout
    assert "privat.adress@example.org" in text.stdout
    assert student["mail"] in text.stdout
    assert "Classes that will sync (2)" in text.stdout

    as_json = world.cli("preview", world.tenant_id, "--format", "json")
    data = json.loads(as_json.stdout)
    assert [c["portal_email"] for c in data["collisions"]] == ["privat.adress@example.org"]
    assert data["collisions"][0]["microsoft_email"] == student["mail"]
    assert data["counts"]["create_user"] == 24
    assert len(data["classes"]) == 2

    as_csv = world.cli("preview", world.tenant_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    collisions = [r for r in rows if r["section"] == "collision"]
    assert len(collisions) == 1
    assert collisions[0]["detail"] == "privat.adress@example.org"
    assert sum(1 for r in rows if r["kind"] == "create_user") == 24

    # a preview writes nothing
    assert len(world.portal.users()) == 1


def test_reconcile_prints_what_it_wrote_and_status_shows_it(make_world) -> None:
    world = make_world(sample="classic-min")

    dry = world.cli("reconcile", world.tenant_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would write" in dry.stdout
    assert world.portal.users() == []

    run = world.cli("reconcile", world.tenant_id)
    assert run.returncode == 0, run.stderr
    assert "24 create user" in run.stdout
    assert len(world.portal.users()) == 24

    status = world.cli("status", "--format", "json")
    data = json.loads(status.stdout)
    (tenant,) = data["tenants"]
    assert tenant["last_reconcile"]["outcome"] == "ok"
    assert tenant["last_reconcile"]["applied"]["create_user"] == 24
    assert data["queues"]["live"] == 0

    table = world.cli("status")
    assert "ok" in table.stdout and "Queues: live 0" in table.stdout

    audit = world.cli("audit", world.tenant_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(audit.stdout)))
    assert sum(1 for r in rows if r["kind"] == "create_user" and r["outcome"] == "applied") == 24


def test_bad_configuration_is_reported_whole_with_a_non_zero_exit(make_world) -> None:
    world = make_world()
    result = world.cli(
        "reconcile",
        world.tenant_id,
        env={
            "SKOLSYNK_CLIENT_ID": "",
            "SKOLSYNK_SECRET_KEY": "short",
            "SKOLSYNK_GRAPH_URL": "ftp://x",
        },
    )
    assert result.returncode != 0
    assert "SKOLSYNK_CLIENT_ID is not set" in result.stderr
    assert "SKOLSYNK_SECRET_KEY must be at least" in result.stderr
    assert "SKOLSYNK_GRAPH_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert world.env["SKOLSYNK_CLIENT_SECRET"] not in result.stderr + result.stdout


def test_an_unknown_tenant_is_a_sentence_not_a_stack_trace(make_world) -> None:
    world = make_world()
    result = world.cli("preview", "no-such-school")
    assert result.returncode != 0
    assert "No tenant 'no-such-school' is registered." in result.stderr
    assert "skolsynk tenant list" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_portal_refusing_the_token_fails_clearly_and_a_rerun_finishes(make_world) -> None:
    world = make_world(sample="classic-25")
    good_token = world.portal.token
    refused = world.cli("tenant", "set", world.tenant_id, "--test-token", "wrong-token")
    assert refused.returncode != 0 and "refused the token" in refused.stderr
    # a token the portal revokes after it was set
    tenant = world.services.registry.get(world.tenant_id)
    revoked = replace(tenant.portals["test"], token=Secret("wrong-token"))
    world.services.registry.save(replace(tenant, portals={"test": revoked}))

    result = world.cli("reconcile", world.tenant_id)

    assert result.returncode != 0
    assert "token" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert "wrong-token" not in result.stderr
    assert world.portal.users() == []

    fixed = world.cli("tenant", "set", world.tenant_id, "--test-token", good_token)
    assert fixed.returncode == 0, fixed.stderr
    rerun = world.cli("reconcile", world.tenant_id)
    assert rerun.returncode == 0, rerun.stderr
    assert len(world.portal.users()) == 24


def test_tenant_commands_register_show_and_remove_without_showing_tokens(make_world) -> None:
    world = make_world()
    tenant_x = str(uuid.uuid4())
    own = world.portal_server.new_organisation()  # one portal organisation per tenant
    added = world.cli(
        "tenant",
        "add",
        tenant_x,
        "--name",
        "Växjö kommun",
        "--test-portal",
        own.scim_url,
        "--test-token",
        own.token,
        "--school",
        "S1",
        "--class-pattern",
        "7*",
    )
    assert added.returncode == 0, added.stderr
    assert "test portal" in added.stdout
    assert "answers as a SCIM server" in added.stdout

    shown = world.cli("tenant", "show", "växjö kommun", "--format", "json")
    data = json.loads(shown.stdout)
    assert data["environment"] == "test"
    assert data["scope"]["schools"] == ["S1"]
    assert data["portals"]["test"]["token"] == "***"
    assert world.portal.token not in shown.stdout
    text = world.cli("tenant", "show", "växjö kommun").stdout
    assert "role -> urn:skolsynk:params:scim:schemas:extension:school:1.0:User:role" in text

    listed = world.cli("tenant", "list")
    assert "Växjö kommun" in listed.stdout

    to_production = world.cli("tenant", "set", tenant_x, "--environment", "production")
    assert to_production.returncode != 0
    assert "--environment production needs a production portal" in to_production.stderr

    removed = world.cli("tenant", "remove", tenant_x)
    assert removed.returncode == 0
    assert "Växjö kommun" not in world.cli("tenant", "list").stdout
