"""The command line as an operator reads it: pipes, portal URL errors, what a reconcile did,
the audit export and held removals. Every command runs as a real process against the sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from common.model import Action, ActionKind
from common.state.registry import Thresholds
from tests.fixtures.engine import SyncWorld
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.slow  # each test runs the command line against real processes

#: hold every removal above two (and above 1 % of the managed objects)
LOW_THRESHOLDS = Thresholds(max_removals=2, max_removal_share=0.01)
EXPECTED = "Expected a SCIM base URL such as https://host/scim/v2/ORG."


def piped_into_head(world: SyncWorld, *args: str) -> tuple[str, str, int]:
    """``skolsynk ARGS | head -1`` in a shell: what head printed, skolsynk's stderr and exit."""
    command = " ".join([sys.executable, "-m", "skolsynk.cli", *args])
    done = subprocess.run(
        ["bash", "-c", f'{command} | head -1; echo "exit ${{PIPESTATUS[0]}}" >&2'],
        env={**os.environ, **world.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    stderr, _, code = done.stderr.rpartition("exit ")
    return done.stdout, stderr, int(code)


def fake_entries(count: int) -> list[tuple[Action, str, str, str | None]]:
    return [
        (
            Action(
                ActionKind.UPDATE_USER,
                f"id-{n}",
                f"elev{n}@skola.example",
                "name changed",
                portal_id=f"p-{n}",
                changes={"displayName": f"Elev {n}"},
            ),
            "applied",
            "",
            None,
        )
        for n in range(count)
    ]


# --- 2: pipes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_output_piped_into_head_ends_quietly(make_world) -> None:
    # output far beyond a pipe's 64 KiB, so that head has gone before skolsynk is done writing
    world = make_world(generate=400)
    world.services.audit.record_many(
        world.tenant_id, fake_entries(4000), why="reconcile", run_id="r1"
    )

    for args in (
        ("audit", world.tenant_id),
        ("audit", world.tenant_id, "--format", "csv"),
        ("audit", world.tenant_id, "--format", "json"),
        ("preview", world.tenant_id, "--format", "json"),
        ("preview", world.tenant_id, "--format", "csv"),
    ):
        assert len(world.cli(*args).stdout) > 100_000, args
        shown, stderr, code = piped_into_head(world, *args)
        assert shown.count("\n") == 1, args
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, (args, stderr)
        # nothing but the preview's progress sentences
        assert all(line.endswith("…") for line in stderr.splitlines()), (args, stderr)
        # without a word; 141 as a Unix tool stopped by SIGPIPE, or 0 when the interpreter's
        # last write was cut short by the closed pipe without an error
        assert code in (0, 141), args


# --- 3: portal URLs -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_wrong_portal_url_is_named_with_what_was_expected(make_world) -> None:
    world = make_world(sample="classic-min")
    base = world.portal.scim_url
    host = base.split("/scim/")[0]
    cases = {
        host: "is a bare host",
        f"{base}/Users": "names the /Users endpoint",
        f"{host}/scim/v2/no-such-org": "is not a SCIM base URL",
    }
    for url, sentence in cases.items():
        world.cli("tenant", "set", world.tenant_id, "--test-portal", url)
        for command in ("preview", "reconcile"):
            result = world.cli(command, world.tenant_id)
            assert result.returncode == 1, (url, result.stdout, result.stderr)
            assert sentence in result.stderr, (url, result.stderr)
            assert url in result.stderr
            assert EXPECTED in result.stderr
            assert f"skolsynk tenant set {world.tenant_id} --test-portal URL" in result.stderr
            assert "Traceback" not in result.stderr
    # a URL with a space is refused where it is given, and nothing is stored
    spaced = f"{host}/scim/v2/my school"
    refused = world.cli("tenant", "set", world.tenant_id, "--test-portal", spaced)
    assert refused.returncode == 1, refused.stdout
    assert "whitespace" in refused.stderr
    assert "Traceback" not in refused.stderr
    shown = world.cli("tenant", "show", world.tenant_id)
    assert spaced not in shown.stdout
    assert world.portal.users() == []


def test_a_portal_refusing_connections_is_said_at_once(make_world) -> None:
    world = make_world(sample="classic-min")
    url = f"http://127.0.0.1:{free_port()}/scim/v2/skola"
    world.cli("tenant", "set", world.tenant_id, "--test-portal", url)

    started = time.monotonic()
    result = world.cli("preview", world.tenant_id)
    took = time.monotonic() - started

    assert result.returncode == 4, result.stderr
    assert f"the test portal at {url} could not be reached" in result.stderr
    assert f"Check that the test portal answers at {url}, or change it with" in result.stderr
    assert "Traceback" not in result.stderr
    # one attempt, not a minute of retries (the rest is the interpreter starting)
    assert took < 10, took


# --- 5: what a reconcile did --------------------------------------------------------------


def held_world(make_world, removed: int = 4) -> tuple[SyncWorld, list[dict]]:
    """A synced school whose next reconcile holds ``removed`` deactivations."""
    world = make_world(sample="classic-25", tenant_changes={"thresholds": LOW_THRESHOLDS})
    world.reconcile()
    students = sorted(
        (u for u in world.portal.users() if u["role"] == "student"), key=lambda u: u["userName"]
    )[:removed]
    for user in students:
        world.microsoft.graph.delete_user(user["externalId"])
    return world, students


def test_reconcile_with_held_removals_says_what_happened(make_world) -> None:
    world, _ = held_world(make_world)

    result = world.cli("reconcile", world.tenant_id)

    assert result.returncode == 0, result.stderr
    assert "Nothing to change" not in result.stdout
    # the deleted students also leave their classes: those changes are applied
    planned, applied = map(
        int,
        re.search(
            r"Planned (\d+) changes: applied (\d+), held 4, skipped 0, failed 0\.", result.stdout
        ).groups(),
    )
    assert planned == applied + 4 and applied > 0
    assert f"Applied: {applied} remove members." in result.stdout
    assert "Held for approval: 4 removals" in result.stdout
    assert f"skolsynk held list {world.tenant_id}" in result.stdout
    assert all(u["active"] for u in world.portal.users())


def test_a_reconcile_with_nothing_to_do_says_so(make_world) -> None:
    world = make_world(sample="classic-min")
    world.reconcile()
    again = world.cli("reconcile", world.tenant_id)
    assert again.returncode == 0, again.stderr
    assert "Nothing to change: the portal matches Microsoft 365." in again.stdout
    assert "Planned" not in again.stdout


# --- 6: the audit export ------------------------------------------------------------------


@pytest.mark.slow
def test_audit_export_in_time_order_newest_n_and_members_named(make_world) -> None:
    world = make_world(sample="classic-25")
    world.reconcile()
    users = {u["externalId"]: u["userName"] for u in world.portal.users()}

    full = json.loads(world.cli("audit", world.tenant_id, "--format", "json").stdout)
    times = [e["at"] for e in full]
    assert times == sorted(times) and len(full) > 24
    memberships = [e for e in full if e["kind"] == "add_members"]
    assert memberships, [e["kind"] for e in full]
    for entry in memberships:
        assert isinstance(entry["member_count"], int) and entry["member_count"] > 0
        assert len(entry["members"]) == entry["member_count"]
        for member in entry["members"]:
            assert member["email"] == users[member["id"]]

    text = world.cli("audit", world.tenant_id).stdout.splitlines()[2:]
    assert [line.split()[0] for line in text] == times

    newest = json.loads(
        world.cli("audit", world.tenant_id, "--format", "json", "--limit", "3").stdout
    )
    assert [e["id"] for e in newest] == [e["id"] for e in full[-3:]]

    for bad in ("0", "-1", "many"):
        refused = world.cli("audit", world.tenant_id, "--limit", bad)
        assert refused.returncode == 2
        assert "--limit" in refused.stderr and "Traceback" not in refused.stderr

    raw = world.cli("audit", world.tenant_id, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(raw.splitlines()) == len(rows) + 1  # one line per entry
    assert all(isinstance(json.loads(r["changes"]), dict) for r in rows)
    member_rows = [r for r in rows if r["kind"] == "add_members"]
    some_email = memberships[0]["members"][0]["email"]
    assert any(some_email in r["members"] for r in member_rows)


def test_preview_csv_details_read_as_values_not_python(make_world) -> None:
    world = make_world(sample="classic-25")
    raw = world.cli("preview", world.tenant_id, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(raw)))
    details = [r["detail"] for r in rows if r["section"] == "action"]
    assert details
    joined = " ".join(details)
    for repr_word in ("None", "True", "False", "('", "['"):
        assert repr_word not in joined, repr_word
    assert "active=true" in joined


# --- 7: held removals ---------------------------------------------------------------------


@pytest.mark.slow
def test_held_approve_and_reject_ask_or_need_all_and_take_short_ids(make_world) -> None:
    world, students = held_world(make_world)
    world.reconcile()
    held = {h.action.object_id: h for h in world.services.safety.held(world.tenant_id)}
    assert len(held) == 4

    refused = world.cli("held", "approve", world.tenant_id)
    assert refused.returncode == 2
    assert "or --all to approve all 4 of them" in refused.stderr
    assert len(world.services.safety.held(world.tenant_id)) == 4

    declined = on_terminal(world, "n\n", "held", "reject", world.tenant_id)
    assert "Reject all 4 held removals" in declined
    assert "Nothing was rejected." in declined
    assert len(world.services.safety.held(world.tenant_id)) == 4

    listed = world.cli("held", "list", world.tenant_id).stdout
    first, second, *_ = students
    short = first["externalId"][:8]
    assert short in listed and first["externalId"] not in listed

    by_short = world.cli("held", "approve", world.tenant_id, short)
    assert by_short.returncode == 0, by_short.stderr
    assert "Approved 1 held removals" in by_short.stdout
    by_email = world.cli("held", "approve", world.tenant_id, second["userName"].upper())
    assert "Approved 1 held removals" in by_email.stdout, by_email.stderr
    inactive = {u["userName"] for u in world.portal.users() if not u["active"]}
    assert inactive == {first["userName"], second["userName"]}

    unknown = world.cli("held", "reject", world.tenant_id, "ZZZZ")
    assert unknown.returncode == 1
    assert "Nothing held matches ZZZZ." in unknown.stderr
    assert f"skolsynk held list {world.tenant_id}" in unknown.stderr

    rest = world.cli("held", "reject", world.tenant_id, "--all")
    assert "Rejected 2 held removals" in rest.stdout, rest.stderr
    assert world.services.safety.held(world.tenant_id) == []


def on_terminal(world: SyncWorld, answer: str, *args: str) -> str:
    """Run ``skolsynk ARGS`` with a terminal as stdin and stdout, type ``answer``; its output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **world.env},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    sent = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"[y/N]" in output:
            os.write(leader, answer.encode())
            sent = True
    process.wait(timeout=60)
    os.close(leader)
    return output.decode(errors="replace")
