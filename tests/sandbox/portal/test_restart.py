"""The portal keeps everything across a restart, and its start-up contract (portal.json,
--org/--token, what it prints)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.portal import PortalServer
from tests.fixtures.processes import skolsynk_command
from tests.sandbox.portal.bodies import create_group, create_user

pytestmark = pytest.mark.slow  # each test starts (and restarts) a portal process


def test_data_tokens_and_versions_survive_a_restart(tmp_path: Path) -> None:
    server = PortalServer(tmp_path)
    server.start("--org", "skola", "--token", "fast-token-for-skola")
    org = server.organisation("skola")
    user = create_user(org, "kvar@skola.se", externalId="entra-kvar")
    group = create_group(org, "7A", [user["id"]], externalId="entra-7a")
    licence = org.assign_licence("Bok", user_id=user["id"])
    manual = org.create_manual_group("Egen", [user["id"]])
    admin_token, first_url = server.admin_token, server.url
    org.close()
    server.stop()

    server.start("--port", first_url.rsplit(":", 1)[1])  # a restart keeps its address
    org = server.organisation("skola")
    try:
        assert org.token == "fast-token-for-skola"
        assert server.admin_token == admin_token
        assert org.scim.get(f"/Users/{user['id']}").json()["meta"] == user["meta"]
        stored_group = org.scim.get(f"/Groups/{group['id']}").json()
        assert [m["value"] for m in stored_group["members"]] == [user["id"]]
        assert stored_group["meta"]["version"] == group["meta"]["version"]
        assert org.licences() == [licence]
        assert manual["id"] in {g["id"] for g in org.groups()}
        assert server.url == first_url
    finally:
        org.close()
        server.close()


def test_start_up_writes_portal_json_and_prints_no_tokens(tmp_path: Path) -> None:
    server = PortalServer(tmp_path)
    server.start("--org", "norra", "--org", "sodra", "--token", "norra-token")
    try:
        info = json.loads(server.info_path.read_text(encoding="utf-8"))
        printed = (tmp_path / "portal.log").read_text(encoding="utf-8")
        by_name = {o["name"]: o for o in info["organisations"]}

        assert set(info) == {"url", "admin_token", "organisations"}
        assert set(by_name) == {"norra", "sodra"}
        assert by_name["norra"]["token"] == "norra-token"
        assert by_name["sodra"]["scim_url"] == f"{info['url']}/scim/v2/sodra"
        assert stat.S_IMODE(server.info_path.stat().st_mode) == 0o600
        assert f"{info['url']}/scim/v2/norra" in printed
        assert str(server.info_path.resolve()) in printed
        for secret in (info["admin_token"], by_name["sodra"]["token"], "norra-token"):
            assert secret not in printed
    finally:
        server.close()


def test_show_tokens_prints_them(tmp_path: Path) -> None:
    server = PortalServer(tmp_path)
    server.start("--show-tokens")
    try:
        printed = (tmp_path / "portal.log").read_text(encoding="utf-8")

        assert [o["name"] for o in server.info["organisations"]] == ["skola"]
        assert server.info["organisations"][0]["token"] in printed
    finally:
        server.close()


def run_portal(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``skolsynk sandbox portal ARGS`` with its database in ``tmp_path``, to its end."""
    return subprocess.run(
        skolsynk_command("sandbox", "portal", "--db", str(tmp_path / "p.sqlite3"), *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_more_tokens_than_organisations_is_refused(tmp_path: Path) -> None:
    done = run_portal(tmp_path, "--token", "t1")

    assert done.returncode != 0
    assert "--token" in done.stderr
    assert not (tmp_path / "portal.json").exists()


def test_bad_organisation_name_is_refused(tmp_path: Path) -> None:
    done = run_portal(tmp_path, "--org", "Ä B")

    assert done.returncode != 0
    assert "cannot name an organisation" in done.stderr
