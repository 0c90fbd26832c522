"""Every page and action of a school refuses everyone but that school's administrators and the
operators; sessions, CSRF and headers protect them. Against the admin app running in gunicorn."""

from __future__ import annotations

import re
from typing import Any

import pytest

from admin.app import create_app
from common.config import load_config
from tests.admin.conftest import OPERATOR, AdminServer, administrator, text_of

pytestmark = pytest.mark.slow


def school_routes(env: dict[str, str]) -> list[tuple[str, str]]:
    """(method, path pattern) of every route that acts on one school."""
    app = create_app(load_config(env))
    routes = []
    for rule in app.url_map.iter_rules():
        if "tenant_id" not in rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule))
    return routes


def fill(pattern: str, tenant_id: str) -> str:
    values = {"tenant_id": tenant_id, "environment": "test", "progress_id": "abc"}
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], pattern)


def test_every_school_route_is_covered(admin_server: AdminServer) -> None:
    routes = school_routes(admin_server.env)
    # the pages of issue 13 and their actions: a new route must be added to the app's checks
    assert len(routes) >= 20
    assert ("POST", "/skola/<tenant_id>/vantande") in routes


def test_administrator_of_one_school_cannot_reach_another_by_url(
    admin_server: AdminServer, make_school: Any
) -> None:
    school_a = make_school()
    school_b = make_school()
    before = admin_server.services.registry.get(school_b.id)
    client = admin_server.client(school_a.admin)
    token = client.csrf(f"/skola/{school_a.id}/portaler")
    refused = []
    for method, pattern in school_routes(admin_server.env):
        path = fill(pattern, school_b.id)
        if method == "GET":
            answer = client.get(path)
        else:
            answer = client.post(
                path,
                {
                    "url": "https://evil.example/scim",
                    "token": "t",
                    "confirm_name": before.name,
                    "decision": "approve",
                    "scope": "all",
                    "action": "save",
                    "user": "x",
                },
                token=token,
            )
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "Du har inte behörighet till den här skolan" in text_of(answer)
        refused.append(path)
        # their own school answers the same route
    assert admin_server.services.registry.get(school_b.id) == before
    assert len(refused) == len(school_routes(admin_server.env))


def test_own_school_pages_open(admin_server: AdminServer, make_school: Any) -> None:
    school = make_school()
    client = admin_server.client(school.admin)
    for path in ("/", "portaler", "forhandsgranskning", "vantande", "logg", "person"):
        target = "/" if path == "/" else f"/skola/{school.id}/{path}"
        answer = client.get(target)
        assert answer.status_code in (200, 302), (path, answer.status_code)
    assert client.get(f"/skola/{school.id}/").status_code == 200


def test_operator_reaches_every_school_and_lists_them(
    admin_server: AdminServer, make_school: Any
) -> None:
    school = make_school()
    operator = administrator("ops-tenant-0000", "drift", global_admin=False)
    operator = type(operator)(**{**operator.to_session(), "operator": True, "username": OPERATOR})
    client = admin_server.client(operator)
    assert client.get(f"/skola/{school.id}/").status_code == 200
    listing = client.get("/skolor")
    assert school.id in listing.text


def test_a_person_who_is_no_global_administrator_is_refused(
    admin_server: AdminServer, make_school: Any
) -> None:
    school = make_school()
    user_admin = administrator(school.id, "useradmin", global_admin=False)
    answer = admin_server.client(user_admin).get(f"/skola/{school.id}/")
    assert answer.status_code == 403


def test_not_signed_in_is_sent_to_the_first_page(
    admin_server: AdminServer, make_school: Any
) -> None:
    school = make_school()
    client = admin_server.client()
    for method, pattern in school_routes(admin_server.env):
        path = fill(pattern, school.id)
        answer = client.get(path) if method == "GET" else client.post(path, {})
        if method == "GET":
            assert answer.status_code == 302 and answer.headers["Location"].endswith("/"), path
        else:
            # no session, no CSRF token: refused before anything else
            assert answer.status_code == 400, path


def test_forged_or_missing_csrf_token_saves_nothing(
    admin_server: AdminServer, make_school: Any
) -> None:
    school = make_school()
    before = admin_server.services.registry.get(school.id)
    client = admin_server.client(school.admin)
    client.csrf(f"/skola/{school.id}/portaler")
    for token in (None, "forged-token", client.csrf(f"/skola/{school.id}/portaler")[:-4] + "AAAA"):
        answer = client.post(
            f"/skola/{school.id}/portaler/test",
            {"url": "https://other.example/scim", "token": "x"},
            token=token,
        )
        assert answer.status_code == 400
        assert "inget sparades" in text_of(answer)
    assert admin_server.services.registry.get(school.id) == before


def test_headers_and_session_cookie(admin_server: AdminServer, make_school: Any) -> None:
    school = make_school()
    client = admin_server.client(school.admin)
    answer = client.get(f"/skola/{school.id}/portaler")
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    # served over plain http on loopback here: Secure is set only over HTTPS
    assert "Secure" not in cookie
    assert "<script>" not in answer.text and " style=" not in answer.text
    assert school.portal.token not in answer.text


def test_run_progress_of_another_school_is_not_found(
    admin_server: AdminServer, make_school: Any
) -> None:
    school_a, school_b = make_school(), make_school()
    progress_id = admin_server.services.redis and __import__(
        "common.state.progress", fromlist=["ProgressStore"]
    ).ProgressStore(admin_server.services.redis).start(school_b.id, environment="test")
    client = admin_server.client(school_a.admin)
    assert client.get(f"/skola/{school_a.id}/korning/{progress_id}.json").status_code == 404
    assert client.get(f"/skola/{school_b.id}/korning/{progress_id}.json").status_code == 403
