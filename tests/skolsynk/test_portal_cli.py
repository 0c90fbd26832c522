"""``skolsynk portal check`` as an administrator runs it, against real servers: the independent
ones as they ship, the reference portal, and servers that cannot serve as a portal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.fixtures.independent_scim import IndependentPortal

pytestmark = pytest.mark.slow


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skolsynk.cli", "portal", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ},
    )


def test_describes_an_independent_server_and_the_mapping_used_there(
    independent_portal: IndependentPortal,
) -> None:
    url, token = independent_portal.scim_url, independent_portal.token

    text = check(url, "--token", token)
    data = json.loads(check(url, "--token", token, "--format", "json").stdout)

    assert text.returncode == 0, text.stderr
    assert "role               -> userType" in text.stdout
    assert "grade              -> not sent" in text.stdout
    assert data["discovery"] == {
        "ServiceProviderConfig": True,
        "ResourceTypes": True,
        "Schemas": True,
    }
    assert data["mapping"]["role"] == "userType"
    assert data["filters"]['externalId eq "x"'] is True
    assert independent_portal.proxy.writes() == 0  # a check writes nothing


def test_uses_the_school_extension_where_the_portal_declares_it(portal_org: Any) -> None:
    done = check(portal_org.scim_url, "--token", portal_org.token, "--format", "json")

    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["mapping"]["role"].endswith("school:1.0:User:role")
    assert data["mapping"]["grade"].endswith("school:1.0:User:grade")


def test_a_wrong_token_is_one_sentence_and_a_failure(independent_portal: IndependentPortal) -> None:
    done = check(independent_portal.scim_url, "--token", "not-the-token")

    assert done.returncode == 1
    assert "refused the token" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.fixture
def not_scim(httpserver: HTTPServer) -> Iterator[str]:
    """An HTML page under /html, nothing under /missing, a SCIM server without /Schemas under
    /bare (pytest-httpserver; a request elsewhere fails the test)."""
    httpserver.expect_request(re.compile("^/html/")).respond_with_data(
        "<html><body>Welcome</body></html>", content_type="text/html"
    )
    httpserver.expect_request("/bare/v2/Users").respond_with_json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0,
            "Resources": [],
        },
        content_type="application/scim+json",
    )
    # registered last, so matched last: what /bare does not have, and all of /missing
    httpserver.expect_request(re.compile("^/(bare|missing)/")).respond_with_data(
        "not found", status=404, content_type="text/plain"
    )
    yield httpserver.url_for("").rstrip("/")
    httpserver.check()


@pytest.mark.parametrize(
    ("path", "sentence"),
    [
        ("/html/v2", "does not answer as a SCIM server"),
        ("/missing/v2", "has no SCIM /Users endpoint (404)"),
        ("/bare/v2", "has no /Schemas"),
    ],
)
def test_a_url_that_is_not_a_usable_scim_server_is_one_sentence_and_a_failure(
    not_scim: str, path: str, sentence: str
) -> None:
    done = check(f"{not_scim}{path}", "--token", "t")

    assert done.returncode == 1
    assert sentence in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_url_is_one_sentence_and_a_failure() -> None:
    from tests.fixtures.processes import free_port

    done = check(f"http://127.0.0.1:{free_port()}/scim/v2", "--token", "t")

    assert done.returncode == 1
    assert "could not be reached" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_mapping_set_on_the_tenant_is_shown_and_used_by_the_sync(make_world: Any) -> None:
    world = make_world(sample="classic-25")

    done = world.cli("tenant", "set", world.tenant_id, "--test-mapping", "grade=off")
    shown = world.cli("tenant", "show", world.tenant_id)
    bad = world.cli("tenant", "set", world.tenant_id, "--test-mapping", "shoe=off")
    preview = world.cli("preview", world.tenant_id)
    report = world.reconcile()

    assert done.returncode == 0, done.stderr
    assert "grade -> not sent" in done.stdout
    assert "(grade=off)" in shown.stdout and "grade -> not sent" in shown.stdout
    assert bad.returncode != 0 and "unknown attribute 'shoe'" in bad.stderr
    assert "Traceback" not in bad.stderr
    users = world.portal.users()
    assert report.outcome == "ok" and len(users) == 24
    assert not any(u.get("grade") for u in users)
    assert any(u.get("role") == "student" for u in users)
    assert "Note: this portal has no attribute for grade; it is not sent." in preview.stdout
    assert "this portal has no attribute for grade; it is not sent" in report.notes
