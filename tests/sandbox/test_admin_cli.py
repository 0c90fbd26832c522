"""``skolsynk sandbox graph tenant add`` and ``skolsynk sandbox portal org add`` against the
running sandboxes: what they create, the env file they write, and their word when nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.envfile import env_file_values

pytestmark = pytest.mark.slow  # each test runs the sandbox administration command


def skolsynk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", *args],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_tenant_add_creates_a_school_and_writes_its_environment(
    graph_sandbox: Any, tmp_path: Path
) -> None:
    env_file = tmp_path / "school.env"
    result = skolsynk(
        "sandbox", "graph", "tenant", "add", "--data-dir", str(graph_sandbox.data_dir),
        "--name", "Växjö kommun", "--generate", "30", "--env-file", str(env_file), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    values = env_file_values(env_file)
    assert f"Created tenant Växjö kommun: id {values['TENANT_ID']}" in result.stdout
    assert values["SKOLSYNK_CLIENT_SECRET"] == graph_sandbox.info["client_secret"]
    assert values["SKOLSYNK_CLIENT_SECRET"] not in result.stdout + result.stderr
    assert env_file.stat().st_mode & 0o077 == 0
    listed = graph_sandbox.admin("GET", "/tenants").json()["tenants"]
    assert values["TENANT_ID"] in [t["id"] for t in listed]

    again = skolsynk(
        "sandbox", "graph", "tenant", "add", "--data-dir", str(graph_sandbox.data_dir),
        "--env-file", str(env_file), cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    kept = env_file_values(env_file)
    assert kept["SKOLSYNK_SECRET_KEY"] == values["SKOLSYNK_SECRET_KEY"]  # made once, then kept
    assert kept["TENANT_ID"] != values["TENANT_ID"]


def test_org_add_creates_or_reuses_an_organisation(portal_server: Any, tmp_path: Path) -> None:
    env_file = tmp_path / "school.env"
    args = ("sandbox", "portal", "org", "add", "vaxjo", "--db", str(portal_server.db_path))
    created = skolsynk(*args, "--env-file", str(env_file), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Created organisation vaxjo: SCIM base URL" in created.stdout
    values = env_file_values(env_file)
    assert values["PORTAL_URL"] == f"{portal_server.url}/scim/v2/vaxjo"
    assert values["PORTAL_TOKEN"] not in created.stdout
    answer = requests.get(
        f"{values['PORTAL_URL']}/Users",
        headers={"Authorization": f"Bearer {values['PORTAL_TOKEN']}"},
        timeout=10,
    )
    assert answer.status_code == 200

    reused = skolsynk(*args, "--env-file", str(env_file), cwd=tmp_path)
    assert reused.returncode == 0, reused.stderr
    assert "Reusing organisation vaxjo" in reused.stdout
    assert env_file_values(env_file)["PORTAL_TOKEN"] == values["PORTAL_TOKEN"]


def test_without_a_running_sandbox_they_say_so_and_exit_1(tmp_path: Path) -> None:
    for args in (
        ("sandbox", "graph", "tenant", "add", "--data-dir", str(tmp_path / "none")),
        ("sandbox", "portal", "org", "add", "x", "--db", str(tmp_path / "none" / "p.sqlite3")),
    ):
        result = skolsynk(*args, "--wait", "1", cwd=tmp_path)
        assert result.returncode == 1
        assert "did not answer within 1 s" in result.stderr
        assert "Is it running with this data directory?" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "var").exists()
