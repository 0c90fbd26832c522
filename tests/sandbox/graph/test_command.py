"""``skolsynk sandbox graph`` from the command line: sandbox.json, several tenants, restarts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import start_graph_sandbox
from tests.fixtures.processes import skolsynk_command

pytestmark = pytest.mark.slow  # each test runs the sandbox command and waits for it

INFO_KEYS = {
    "authority",
    "graph_url",
    "ca_bundle",
    "client_id",
    "client_secret",
    "admin_url",
    "admin_token",
    "tenants",
    "people_password",
    "apps",
}


def test_command_writes_sandbox_json_and_builds_each_tenant(tmp_path: Path) -> None:
    sandbox = start_graph_sandbox(
        tmp_path,
        "--tenants",
        "2",
        "--generate",
        "300",
        "--seed",
        "4",
        "--load",
        f"sds-classic:{SDS_SAMPLES / 'classic-25'}",
    )
    try:
        info = json.loads((tmp_path / "sandbox.json").read_text())
        assert set(info) == INFO_KEYS
        assert info["graph_url"] == info["authority"] + "/v1.0"
        assert info["admin_url"] == info["authority"] + "/_sandbox"
        assert Path(info["ca_bundle"]).is_absolute()
        assert len(info["tenants"]) == 2
        assert len({t["domain"] for t in info["tenants"]}) == 2
        for entry in info["tenants"]:
            counts = sandbox.admin("GET", f"/tenants/{entry['id']}").json()["counts"]
            assert counts["users"] == 300 + 24
            assert counts["teachers"] >= 2
        log = sandbox.process.log_tail(20)
        assert info["client_secret"] not in log
        assert info["admin_token"] not in log
        assert info["tenants"][0]["id"] in log
    finally:
        sandbox.stop()
    assert not (tmp_path / "sandbox.json").exists()


def test_ca_keys_and_app_survive_a_restart(tmp_path: Path) -> None:
    first = start_graph_sandbox(tmp_path)
    info = dict(first.info)
    ca = Path(info["ca_bundle"]).read_bytes()
    first.stop()
    second = start_graph_sandbox(tmp_path)
    try:
        assert second.info["client_id"] == info["client_id"]
        assert second.info["client_secret"] == info["client_secret"]
        assert second.info["tenants"] == info["tenants"]
        assert second.info["apps"] == info["apps"]  # the portal's app too
        assert second.info["people_password"] == info["people_password"]
        assert Path(second.info["ca_bundle"]).read_bytes() == ca
        assert second.new_tenant().graph.get("/users").status_code == 200
    finally:
        second.stop()


def test_a_bad_load_argument_stops_the_command_with_a_sentence(tmp_path: Path) -> None:
    result = subprocess.run(
        skolsynk_command("sandbox", "graph", "--data-dir", str(tmp_path), "--load", "csv:/x"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "FORMAT:PATH" in result.stderr


def test_the_command_prints_an_import_report_and_strict_refuses_rejected_rows(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "uk"
    folder.mkdir()
    for source in (SDS_SAMPLES / "uk-min").iterdir():
        (folder / source.name).write_text(source.read_text(encoding="utf-8-sig"))
    with (folder / "Student.csv").open("a") as handle:
        handle.write("13999,55555,Nobody\n")
    sandbox = start_graph_sandbox(tmp_path / "run", "--load", f"sds-uk:{folder}")
    try:
        log = sandbox.process.log_tail(40)
        assert f"Import sds-uk {folder}: created 2 schools, 22 students, 2 teachers" in log
        assert "1 rows rejected" in log
        assert "rejected Student.csv line 24: School DfE Number '55555' is not in School.csv" in log
    finally:
        sandbox.stop()
    result = subprocess.run(
        skolsynk_command(
            "sandbox",
            "graph",
            "--data-dir",
            str(tmp_path / "strict"),
            "--strict",
            "--load",
            f"sds-uk:{folder}",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "1 rows rejected, nothing loaded (strict)" in result.stderr
    assert "Traceback" not in result.stderr
