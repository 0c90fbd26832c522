"""People sign in to the sandbox tenant: MSAL's auth-code flow end to end, PKCE, codes, nonce
and state, ID tokens, refresh tokens and the discovery documents of common/organizations."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import msal
import pytest

from tests.fixtures.browser import FormBrowser
from tests.fixtures.graph import GraphSandbox, SandboxTenant

REDIRECT_URI = "http://127.0.0.1:8765/auth/callback"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@pytest.fixture(scope="module")
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    """A small generated municipality: students, teachers, staff and its administrators."""
    return graph_sandbox.new_tenant(generate=60, seed=12)


@pytest.fixture(scope="module")
def other_school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    return graph_sandbox.new_tenant(generate=40, seed=13)


@pytest.fixture
def browser(graph_sandbox: GraphSandbox) -> Any:
    form_browser = FormBrowser(graph_sandbox.ca_bundle)
    yield form_browser
    form_browser.close()


def app_info(sandbox: GraphSandbox, name: str) -> dict[str, Any]:
    return next(a for a in sandbox.info["apps"] if a["name"] == name)


def msal_app(sandbox: GraphSandbox, authority_tenant: str, name: str = "portal") -> Any:
    app = app_info(sandbox, name)
    return msal.ConfidentialClientApplication(
        app["client_id"],
        client_credential=app["client_secret"],
        authority=f"{sandbox.info['authority']}/{authority_tenant}",
        instance_discovery=False,
        http_client=sandbox.session(),
    )


def a_student(tenant: SandboxTenant) -> dict[str, Any]:
    edu = tenant.graph.all_pages("/education/users?$top=50&$select=id,primaryRole")
    student_id = next(u["id"] for u in edu if u["primaryRole"] == "student")
    return tenant.graph.get(f"/users/{student_id}").json()


def tenant_entry(sandbox: GraphSandbox, tenant: SandboxTenant) -> dict[str, Any]:
    return sandbox.admin("GET", f"/tenants/{tenant.id}").json()


def keys_of(sandbox: GraphSandbox, tenant_key: str) -> dict[str, Any]:
    config = (
        sandbox.session()
        .get(f"{sandbox.info['authority']}/{tenant_key}/v2.0/.well-known/openid-configuration")
        .json()
    )
    return sandbox.session().get(config["jwks_uri"]).json()


def verified_claims(sandbox: GraphSandbox, token: str, audience: str) -> dict[str, Any]:
    keys = keys_of(sandbox, "organizations")
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys["keys"] if k["kid"] == kid))
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def authorize_url(sandbox: GraphSandbox, tenant_key: str, **params: str) -> str:
    app = app_info(sandbox, "portal")
    query = {
        "client_id": app["client_id"],
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access User.Read",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        **params,
    }
    return f"{sandbox.info['authority']}/{tenant_key}/oauth2/v2.0/authorize?{urlencode(query)}"


def redeem(sandbox: GraphSandbox, tenant_key: str, **form: str) -> Any:
    app = app_info(sandbox, "portal")
    data = {
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT_URI,
        **form,
    }
    return sandbox.session().post(
        f"{sandbox.info['authority']}/{tenant_key}/oauth2/v2.0/token", data=data
    )


# --- MSAL end to end ----------------------------------------------------------------------------


@pytest.mark.parametrize("authority", ["tenant", "organizations", "common"])
def test_msal_auth_code_flow_signs_a_student_in_end_to_end(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser, authority: str
) -> None:
    student = a_student(school)
    app = msal_app(graph_sandbox, school.id if authority == "tenant" else authority)
    flow = app.initiate_auth_code_flow(
        ["User.Read", "email"],
        redirect_uri=REDIRECT_URI,
        login_hint=student["userPrincipalName"],
        response_mode="form_post",
    )
    answer = browser.sign_in(
        flow["auth_uri"], student["userPrincipalName"], graph_sandbox.info["people_password"]
    )
    back = FormBrowser.redirect(answer)
    assert back.url == REDIRECT_URI
    assert back.params["state"] == flow["state"]

    result = app.acquire_token_by_auth_code_flow(flow, back.params)
    assert "access_token" in result, result.get("error_description")
    claims = result["id_token_claims"]
    assert claims["oid"] == student["id"]
    assert claims["tid"] == school.id
    assert claims["preferred_username"] == student["userPrincipalName"]
    assert claims["name"] == student["displayName"]
    assert claims["email"] == student["mail"]

    verified = verified_claims(graph_sandbox, result["id_token"], app.client_id)
    assert verified["iss"] == f"{graph_sandbox.info['authority']}/{school.id}/v2.0"
    assert verified["nbf"] <= time.time() < verified["exp"]
    assert verified["sub"] and verified["sub"] != student["id"]

    me = graph_sandbox.session().get(
        f"{graph_sandbox.info['graph_url']}/me",
        headers={"Authorization": f"Bearer {result['access_token']}"},
    )
    assert me.status_code == 200, me.text
    assert me.json()["id"] == student["id"]
    access = verified_claims(graph_sandbox, result["access_token"], "https://graph.microsoft.com")
    assert "User.Read" in access["scp"].split()
    assert access["idtyp"] == "user"

    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [student["userPrincipalName"]]


def test_refresh_token_gives_new_tokens_through_msal(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    student = a_student(school)
    app = msal_app(graph_sandbox, "organizations")
    flow = app.initiate_auth_code_flow(
        ["User.Read"], redirect_uri=REDIRECT_URI, response_mode="form_post"
    )
    back = FormBrowser.redirect(
        browser.sign_in(
            flow["auth_uri"], student["userPrincipalName"], graph_sandbox.info["people_password"]
        )
    )
    first = app.acquire_token_by_auth_code_flow(flow, back.params)
    assert "refresh_token" in first
    again = app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
    assert "access_token" in again, again.get("error_description")
    assert again["access_token"] != first["access_token"]
    assert again["id_token_claims"]["oid"] == student["id"]


def test_discovery_for_common_and_organizations_has_the_tenantid_issuer_template(
    graph_sandbox: GraphSandbox,
) -> None:
    authority = graph_sandbox.info["authority"]
    for key in ("common", "organizations"):
        config = (
            graph_sandbox.session()
            .get(f"{authority}/{key}/v2.0/.well-known/openid-configuration")
            .json()
        )
        assert config["issuer"] == f"{authority}/{{tenantid}}/v2.0"
        assert config["authorization_endpoint"] == f"{authority}/{key}/oauth2/v2.0/authorize"
        assert config["token_endpoint"] == f"{authority}/{key}/oauth2/v2.0/token"
        assert keys_of(graph_sandbox, key)["keys"][0]["kty"] == "RSA"


# --- the protocol by hand ----------------------------------------------------------------------


def signed_in_code(
    sandbox: GraphSandbox, browser: FormBrowser, tenant_key: str, login: str, **params: str
) -> dict[str, str]:
    answer = browser.sign_in(
        authorize_url(sandbox, tenant_key, **params), login, sandbox.info["people_password"]
    )
    return FormBrowser.redirect(answer).params


def test_state_and_nonce_are_echoed_and_wids_name_the_administrators_roles(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    verifier, challenge = pkce()
    administrator = tenant_entry(graph_sandbox, school)["administrator"]
    back = signed_in_code(
        graph_sandbox,
        browser,
        school.id,
        administrator,
        state="my-state-123",
        nonce="my-nonce-456",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert back["state"] == "my-state-123"
    tokens = redeem(graph_sandbox, school.id, code=back["code"], code_verifier=verifier)
    assert tokens.status_code == 200, tokens.text
    claims = verified_claims(
        graph_sandbox, tokens.json()["id_token"], app_info(graph_sandbox, "portal")["client_id"]
    )
    assert claims["nonce"] == "my-nonce-456"
    assert GLOBAL_ADMINISTRATOR in claims["wids"]
    assert USER_ADMINISTRATOR not in claims["wids"]


def test_a_wrong_pkce_verifier_fails_and_burns_the_code(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    verifier, challenge = pkce()
    back = signed_in_code(
        graph_sandbox,
        browser,
        school.id,
        a_student(school)["userPrincipalName"],
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    wrong = redeem(graph_sandbox, school.id, code=back["code"], code_verifier=verifier + "x")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "AADSTS501481" in wrong.json()["error_description"]
    right = redeem(graph_sandbox, school.id, code=back["code"], code_verifier=verifier)
    assert right.status_code == 400  # a code is single-use, whatever the first outcome


def test_a_code_works_once(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    verifier, challenge = pkce()
    back = signed_in_code(
        graph_sandbox,
        browser,
        school.id,
        a_student(school)["userPrincipalName"],
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    first = redeem(graph_sandbox, school.id, code=back["code"], code_verifier=verifier)
    assert first.status_code == 200, first.text
    second = redeem(graph_sandbox, school.id, code=back["code"], code_verifier=verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "AADSTS54005" in second.json()["error_description"]


def test_a_tampered_code_is_invalid_grant(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    response = redeem(graph_sandbox, school.id, code="1.Anot-a-code", code_verifier="x" * 43)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_form_post_response_mode_posts_code_and_state(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    back = signed_in_code(
        graph_sandbox,
        browser,
        "organizations",
        a_student(school)["userPrincipalName"],
        response_mode="form_post",
        state="posted",
    )
    assert back["state"] == "posted"
    assert back["code"]


def test_the_session_signs_in_again_without_the_form_and_prompt_none_needs_it(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    silent = browser.get(authorize_url(graph_sandbox, school.id, prompt="none", state="s1"))
    assert silent.status_code == 302
    back = FormBrowser.redirect(silent).params
    assert back["error"] == "login_required"
    assert "AADSTS50058" in back["error_description"]
    assert back["state"] == "s1"

    signed_in_code(graph_sandbox, browser, school.id, a_student(school)["userPrincipalName"])
    again = browser.get(authorize_url(graph_sandbox, school.id, prompt="none", state="s2"))
    assert again.status_code == 302
    assert "code" in FormBrowser.redirect(again).params
    forced = browser.get(authorize_url(graph_sandbox, school.id, prompt="login"))
    assert forced.status_code == 200 and "loginfmt" in forced.text
