"""The HTML pages, rendered by a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from common.portal.scim import SCHOOL_GROUP_SCHEMA, SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group, create_user, patch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium)")
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def school(portal_org: PortalOrg) -> PortalOrg:
    """Managed and unmanaged users, a class and a manual group, licences to both kinds."""
    elev = create_user(
        portal_org,
        "åsa.öberg@skola.se",
        externalId="entra-asa",
        **{SCHOOL_USER_SCHEMA: {"role": "student", "schools": ["Ängskolan"], "grade": "7"}},
    )
    larare = create_user(
        portal_org,
        "björn.lärare@skola.se",
        displayName="Björn Ström",
        externalId="entra-bjorn",
        **{SCHOOL_USER_SCHEMA: {"role": "teacher", "schools": ["Ängskolan"]}},
    )
    patch(portal_org, f"/Users/{larare['id']}", {"op": "replace", "path": "active", "value": False})
    egen = portal_org.create_user("gammal@skola.se", given_name="Göran", family_name="Gammal")
    klass = create_group(
        portal_org,
        "7A Svenska",
        [elev["id"], larare["id"]],
        externalId="entra-7a",
        **{SCHOOL_GROUP_SCHEMA: {"school": "Ängskolan"}},
    )
    portal_org.create_manual_group("Läsfrämjande", [elev["id"], egen["id"]])
    portal_org.assign_licence("Svenska Impuls 7", group_id=klass["id"], by="Björn Ström")
    portal_org.assign_licence("Matte Direkt Ö", user_id=elev["id"], by="Björn Ström")
    return portal_org


def test_pages_are_utf8_html(portal_server: PortalServer, school: PortalOrg) -> None:
    index = requests.get(f"{portal_server.url}/", timeout=10)
    page = requests.get(f"{portal_server.url}/{school.name}/", timeout=10)

    assert index.status_code == 200 and page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert school.name in index.text
    assert "Åsa Öberg" in page.text
    assert school.token not in page.text and school.token not in index.text


@pytest.mark.slow
def test_chromium_renders_users_groups_and_licences(
    portal_server: PortalServer, school: PortalOrg, tmp_path: Path
) -> None:
    url = f"{portal_server.url}/{school.name}/"

    dom = chromium(url, tmp_path / "profile-dom", "--dump-dom").stdout
    screenshot = tmp_path / "portal.png"
    chromium(url, tmp_path / "profile-shot", f"--screenshot={screenshot}")

    for text in (
        "Åsa Öberg",
        "Björn Ström",
        "Göran Gammal",
        "elev",
        "lärare",
        "inaktiv",
        "synkad",
        "portalens egen",
        "7A Svenska",
        "från Microsoft",
        "Läsfrämjande",
        "manuell",
        "Svenska Impuls 7",
        "Matte Direkt Ö",
        "Ängskolan",
    ):
        assert text in dom, f"{text!r} is not on the rendered page"
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    assert screenshot.stat().st_size > 10_000
