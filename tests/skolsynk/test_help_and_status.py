"""Help texts, ``status`` over the last 24 hours, and the demo's word on an absent Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.processes import free_port

pytestmark = pytest.mark.slow  # each test runs the command line many times


def skolsynk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_command_and_option_asked_about_has_a_description() -> None:
    descriptions = {
        ("held", "--help"): "Deactivations and deletions above a tenant's threshold",
        ("status", "--help"): "the portal writes of that run and of the last 24 hours",
        ("audit", "--help"): "Every change Skolsynk wrote",
        ("held", "approve", "--help"): "every held removal",
        ("audit", "--help", "--limit"): "only the newest N entries",
    }
    for args, text in descriptions.items():
        shown = skolsynk(*args)
        assert shown.returncode == 0, shown.stderr
        assert text in " ".join(shown.stdout.split()), args
    tenant_set = " ".join(skolsynk("tenant", "set", "--help").stdout.split())
    for option, text in {
        "--name NAME": "rename the tenant",
        "--enable": "sync again: real-time changes, the hourly reconcile",
        "--disable": "stop every write to this tenant's portal at once",
    }.items():
        assert f"{option} {text}" in tenant_set, option


def test_status_shows_the_last_24_hours_of_writes_beside_the_last_run(make_world) -> None:
    world = make_world(sample="classic-min")
    first = world.cli("reconcile", world.tenant_id)
    assert first.returncode == 0, first.stderr
    again = world.cli("reconcile", world.tenant_id)
    assert "Nothing to change" in again.stdout

    data = json.loads(world.cli("status", world.tenant_id, "--format", "json").stdout)
    assert data["last_reconcile"]["applied"] == {}
    first_writes = int(first.stdout.split("Applied: ")[0].split("applied ")[1].split(",")[0])
    assert data["writes_last_24h"] == first_writes > 24

    header, _, row = world.cli("status", world.tenant_id).stdout.splitlines()[:3]

    def column(title: str) -> str:
        start = header.index(title)
        return row[start:].split()[0]

    assert column("WRITES") == "0"  # the last run's
    assert column("LAST 24 H") == str(first_writes)


def test_the_demo_says_at_once_that_redis_is_not_reachable_at_redis_url(tmp_path: Path) -> None:
    port = free_port()
    for url, shown in (
        (f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0"),
        (f"redis://:hemligt@127.0.0.1:{port}/0", f"redis://***@127.0.0.1:{port}/0"),
    ):
        started = time.monotonic()
        result = skolsynk("demo", "--check", "--workdir", str(tmp_path), env={"REDIS_URL": url})
        took = time.monotonic() - started
        assert result.returncode != 0
        assert f"Redis is not reachable at REDIS_URL {shown}." in result.stderr, result.stderr
        assert "unset REDIS_URL" in result.stderr
        assert "hemligt" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
        assert took < 15, took
