"""Bad sign-in input gets Entra's answers: error pages where the app cannot be trusted, errors
sent back where it can, the form shown again for a wrong password; never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.browser import FormBrowser, forms_of
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.sandbox.graph.test_signin import REDIRECT_URI, a_student, app_info, authorize_url


@pytest.fixture(scope="module")
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    return graph_sandbox.new_tenant(generate=40, seed=41)


@pytest.fixture
def browser(graph_sandbox: GraphSandbox) -> Any:
    form_browser = FormBrowser(graph_sandbox.ca_bundle)
    yield form_browser
    form_browser.close()


def raw_authorize(sandbox: GraphSandbox, tenant_key: str, query: dict[str, str]) -> Any:
    return sandbox.session().get(
        f"{sandbox.info['authority']}/{tenant_key}/oauth2/v2.0/authorize?{urlencode(query)}",
        allow_redirects=False,
    )


@pytest.mark.parametrize(
    ("redirect_uri", "accepted"),
    [
        ("https://portal.example/auth/callback", False),
        ("http://portal.example/auth/callback", False),
        ("http://127.0.0.1:9/any/path", True),
        ("http://localhost/cb", True),
        ("https://127.0.0.1:9/cb", False),
    ],
)
def test_only_registered_or_loopback_redirect_uris_are_used(
    graph_sandbox: GraphSandbox, school: SandboxTenant, redirect_uri: str, accepted: bool
) -> None:
    response = graph_sandbox.session().get(
        authorize_url(graph_sandbox, school.id, redirect_uri=redirect_uri), allow_redirects=False
    )
    if accepted:
        assert response.status_code == 200 and "loginfmt" in response.text
    else:
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert "AADSTS50011" in response.text
        assert "text/html" in response.headers["Content-Type"]


def test_a_redirect_uri_registered_through_the_admin_api_is_accepted(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    uri = "https://portal.example/registered/callback"
    added = graph_sandbox.admin("POST", "/apps/portal/redirect-uris", json={"uri": uri})
    assert uri in added.json()["redirect_uris"]
    response = graph_sandbox.session().get(
        authorize_url(graph_sandbox, school.id, redirect_uri=uri), allow_redirects=False
    )
    assert response.status_code == 200 and "loginfmt" in response.text
    bad = graph_sandbox.admin("POST", "/apps/portal/redirect-uris", json={"uri": "not a uri"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("change", "aadsts"),
    [
        ({"client_id": ""}, "AADSTS900144"),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, "AADSTS700016"),
        ({"state": "x" * 9000}, "AADSTS90015"),
    ],
)
def test_requests_that_cannot_be_trusted_get_an_error_page(
    graph_sandbox: GraphSandbox, school: SandboxTenant, change: dict[str, str], aadsts: str
) -> None:
    query = {
        "client_id": app_info(graph_sandbox, "portal")["client_id"],
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        **change,
    }
    response = raw_authorize(graph_sandbox, school.id, query)
    assert response.status_code == 400
    assert aadsts in response.text
    assert "Location" not in response.headers


def test_an_unknown_tenant_gets_an_error_page_and_an_entra_token_error(
    graph_sandbox: GraphSandbox,
) -> None:
    page = graph_sandbox.session().get(
        authorize_url(graph_sandbox, "no-such-tenant.example"), allow_redirects=False
    )
    assert page.status_code == 400 and "AADSTS90002" in page.text
    token = graph_sandbox.session().post(
        f"{graph_sandbox.info['authority']}/no-such-tenant.example/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "code": "x"},
    )
    assert token.status_code == 400
    assert "AADSTS90002" in token.json()["error_description"]


@pytest.mark.parametrize(
    ("change", "error", "aadsts"),
    [
        ({"response_type": ""}, "invalid_request", "AADSTS900144"),
        ({"response_type": "token"}, "unsupported_response_type", "AADSTS700054"),
        ({"scope": ""}, "invalid_request", "AADSTS900144"),
        ({"scope": "openid Not.A.Permission"}, "invalid_client", "AADSTS650053"),
        ({"scope": "openid api://other-app/.default"}, "invalid_resource", "AADSTS500011"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request", ""),
        ({"code_challenge": "a" * 43, "code_challenge_method": "S512"}, "invalid_request", ""),
        ({"prompt": "sometimes"}, "invalid_request", ""),
        ({"response_mode": "carrier-pigeon"}, "invalid_request", ""),
    ],
)
def test_malformed_requests_go_back_to_the_app_with_an_entra_error_and_the_state(
    graph_sandbox: GraphSandbox,
    school: SandboxTenant,
    change: dict[str, str],
    error: str,
    aadsts: str,
) -> None:
    query = {
        "client_id": app_info(graph_sandbox, "portal")["client_id"],
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "keep-me",
        **change,
    }
    response = raw_authorize(graph_sandbox, school.id, query)
    assert response.status_code == 302, response.text[:300]
    back = FormBrowser.redirect(response)
    assert back.url == REDIRECT_URI
    assert back.params["error"] == error
    assert back.params["error_description"].startswith(aadsts or "AADSTS")
    assert back.params["state"] == "keep-me"


def test_a_wrong_password_or_unknown_user_shows_the_form_again(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    student = a_student(school)
    page = browser.get(authorize_url(graph_sandbox, school.id))
    wrong = browser.submit(page, loginfmt=student["userPrincipalName"], passwd="wrong")
    assert wrong.status_code == 200
    assert "Your account or password is incorrect" in wrong.text
    assert "AADSTS50126" in wrong.text
    unknown = browser.submit(page, loginfmt=f"nobody@{school.domain}", passwd="x")
    assert "AADSTS50034" in unknown.text
    assert forms_of(unknown.text)[0].fields["loginfmt"] == f"nobody@{school.domain}"
    right = browser.submit(
        wrong,
        loginfmt=student["userPrincipalName"].upper(),
        passwd=graph_sandbox.info["people_password"],
    )
    assert right.status_code == 302 and "code" in FormBrowser.redirect(right).params


def test_a_replayed_or_tampered_sign_in_post_is_refused(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    student = a_student(school)
    page = browser.get(authorize_url(graph_sandbox, school.id))
    login = {
        "loginfmt": student["userPrincipalName"],
        "passwd": graph_sandbox.info["people_password"],
    }
    assert browser.submit(page, **login).status_code == 302
    replay = browser.submit(page, **login)
    assert replay.status_code == 400 and "AADSTS90100" in replay.text
    flow = forms_of(page.text)[0].fields["flowToken"]
    tampered = browser.submit(page, flowToken=flow[:-3] + "AAA", **login)
    assert tampered.status_code == 400 and "AADSTS90100" in tampered.text
    empty = browser.submit(page, flowToken="", **login)
    assert empty.status_code == 400


def test_a_disabled_account_cannot_sign_in(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    student = a_student(school)
    school.graph.patch(f"/users/{student['id']}", json={"accountEnabled": False})
    try:
        answer = browser.sign_in(
            authorize_url(graph_sandbox, school.id),
            student["userPrincipalName"],
            graph_sandbox.info["people_password"],
        )
        assert answer.status_code == 400 and "AADSTS50057" in answer.text
    finally:
        school.graph.patch(f"/users/{student['id']}", json={"accountEnabled": True})


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"grant_type": "authorization_code"},
        {"grant_type": "refresh_token", "refresh_token": "nope"},
        {"grant_type": "authorization_code", "code": "\x00" * 5000},
    ],
)
def test_malformed_token_requests_get_entra_errors_not_500(
    graph_sandbox: GraphSandbox, school: SandboxTenant, form: dict[str, str]
) -> None:
    app = app_info(graph_sandbox, "portal")
    data = {"client_id": app["client_id"], "client_secret": app["client_secret"], **form}
    response = graph_sandbox.session().post(
        f"{graph_sandbox.info['authority']}/{school.id}/oauth2/v2.0/token", data=data
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"]
    assert response.json()["error_description"].startswith("AADSTS")


def test_garbage_on_every_sign_in_endpoint_never_answers_500(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    session = graph_sandbox.session()
    authority = graph_sandbox.info["authority"]
    for method, path in [
        ("GET", f"/{school.id}/oauth2/v2.0/authorize?%ff%fe=%00"),
        ("POST", f"/{school.id}/oauth2/v2.0/authorize"),
        ("POST", f"/{school.id}/login"),
        ("POST", "/organizations/consent/set"),
        ("GET", "/organizations/adminconsent?client_id=%00"),
        ("GET", f"/{school.id}/v2.0/adminconsent"),
        ("GET", "/common/oauth2/v2.0/logout?post_logout_redirect_uri=javascript:alert(1)"),
    ]:
        response = session.request(
            method, authority + path, data=b"\xff\xfe garbage", allow_redirects=False
        )
        assert response.status_code < 500, (path, response.status_code)
        assert "javascript:" not in response.headers.get("Location", "")


AUTHORIZE_PARAMETERS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "domain_hint",
    "response_mode",
)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(
        st.sampled_from(AUTHORIZE_PARAMETERS),
        st.text(max_size=60),
        max_size=len(AUTHORIZE_PARAMETERS),
    ),
    keep_client=st.booleans(),
)
def test_any_authorize_request_gets_a_page_or_a_redirect_never_a_500(
    graph_sandbox: GraphSandbox, school: SandboxTenant, values: dict[str, str], keep_client: bool
) -> None:
    query = dict(values)
    if keep_client:
        query.update(
            client_id=app_info(graph_sandbox, "portal")["client_id"], redirect_uri=REDIRECT_URI
        )
    response = raw_authorize(graph_sandbox, school.id, query)
    assert response.status_code in (200, 302, 400), (query, response.status_code)
    if response.status_code == 302:
        assert response.headers["Location"].startswith(REDIRECT_URI)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    grant=st.sampled_from(
        ["authorization_code", "refresh_token", "client_credentials", "password"]
    ),
    values=st.dictionaries(
        st.sampled_from(["code", "refresh_token", "redirect_uri", "code_verifier", "scope"]),
        st.text(max_size=80),
    ),
    authenticated=st.booleans(),
)
def test_any_token_request_gets_an_entra_error_never_a_500(
    graph_sandbox: GraphSandbox,
    school: SandboxTenant,
    grant: str,
    values: dict[str, str],
    authenticated: bool,
) -> None:
    app = app_info(graph_sandbox, "portal")
    form = {"grant_type": grant, **values}
    if authenticated:
        form.update(client_id=app["client_id"], client_secret=app["client_secret"])
    response = graph_sandbox.session().post(
        f"{graph_sandbox.info['authority']}/{school.id}/oauth2/v2.0/token", data=form
    )
    assert response.status_code in (400, 401), (form, response.status_code)
    assert response.json()["error_description"].startswith("AADSTS")
