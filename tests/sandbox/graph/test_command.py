"""``skolsynk sandbox graph`` from the command line: sandbox.json, several tenants, restarts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import start_graph_sandbox
from tests.fixtures.processes import skolsynk_command

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
