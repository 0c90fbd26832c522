"""Admin consent and directory roles: only a Global (or Privileged Role) Administrator consents,
client credentials work only after consent and stop after a revoke; ``wids`` and Graph's
directory-role reads agree; tenants keep to themselves."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fixtures.browser import FormBrowser
from tests.fixtures.graph import GraphSandbox, SandboxTenant, start_graph_sandbox
from tests.fixtures.processes import skolsynk_command
from tests.sandbox.graph.test_signin import (
    GLOBAL_ADMINISTRATOR,
    REDIRECT_URI,
    USER_ADMINISTRATOR,
    a_student,
    app_info,
    authorize_url,
    redeem,
    verified_claims,
)

PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


@pytest.fixture
def browser(graph_sandbox: GraphSandbox) -> Any:
    form_browser = FormBrowser(graph_sandbox.ca_bundle)
    yield form_browser
    form_browser.close()


def unconsented(sandbox: GraphSandbox) -> SandboxTenant:
    created = sandbox.admin("POST", "/tenants", json={"generate": 40, "seed": 21, "consent": False})
    assert created.status_code == 201, created.text
    body = created.json()
    return SandboxTenant(body["id"], body["domain"], body["name"], None)  # type: ignore[arg-type]


def client_credentials(sandbox: GraphSandbox, tenant_id: str) -> Any:
    return sandbox.session().post(
        f"{sandbox.info['authority']}/{tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.info["client_id"],
            "client_secret": sandbox.info["client_secret"],
            "scope": GRAPH_DEFAULT,
        },
    )


def consent_url(
    sandbox: GraphSandbox, tenant_key: str, *, v2: bool = True, state: str = "c1"
) -> str:
    query = {"client_id": sandbox.info["client_id"], "redirect_uri": REDIRECT_URI, "state": state}
    if v2:
        query["scope"] = GRAPH_DEFAULT
    path = "v2.0/adminconsent" if v2 else "adminconsent"
    return f"{sandbox.info['authority']}/{tenant_key}/{path}?{urlencode(query)}"


def user_administrator(sandbox: GraphSandbox, tenant_id: str) -> str:
    graph_url = sandbox.info["graph_url"]
    token = client_credentials_token(sandbox, tenant_id)
    assignments = (
        sandbox.session()
        .get(
            f"{graph_url}/roleManagement/directory/roleAssignments",
            params={"$filter": f"roleDefinitionId eq '{USER_ADMINISTRATOR}'"},
            headers={"Authorization": f"Bearer {token}"},
        )
        .json()["value"]
    )
    user = (
        sandbox.session()
        .get(
            f"{graph_url}/users/{assignments[0]['principalId']}",
            headers={"Authorization": f"Bearer {token}"},
        )
        .json()
    )
    return str(user["userPrincipalName"])


def client_credentials_token(sandbox: GraphSandbox, tenant_id: str) -> str:
    response = client_credentials(sandbox, tenant_id)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def consent_as(browser: FormBrowser, sandbox: GraphSandbox, url: str, login: str, decision: str):
    page = browser.sign_in(url, login, sandbox.info["people_password"])
    assert page.status_code == 200, page.text
    return FormBrowser.redirect(browser.submit(page, button=decision))


def test_client_credentials_fail_until_a_global_administrator_consents_and_after_a_revoke(
    graph_sandbox: GraphSandbox, browser: FormBrowser
) -> None:
    tenant = unconsented(graph_sandbox)
    refused = client_credentials(graph_sandbox, tenant.id)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client"
    assert "AADSTS7000229" in refused.json()["error_description"]

    administrator = graph_sandbox.admin("GET", f"/tenants/{tenant.id}").json()["administrator"]
    back = consent_as(
        browser, graph_sandbox, consent_url(graph_sandbox, tenant.id), administrator, "accept"
    )
    assert back.url == REDIRECT_URI
    assert back.params == {
        "admin_consent": "True",
        "tenant": tenant.id,
        "scope": GRAPH_DEFAULT,
        "state": "c1",
    }
    assert client_credentials(graph_sandbox, tenant.id).status_code == 200

    revoked = graph_sandbox.admin("DELETE", f"/tenants/{tenant.id}/consent", json={})
    assert revoked.json() == {"consented": []}
    assert client_credentials(graph_sandbox, tenant.id).status_code == 400


def test_a_user_administrator_cannot_consent(
    graph_sandbox: GraphSandbox, browser: FormBrowser
) -> None:
    tenant = unconsented(graph_sandbox)
    graph_sandbox.admin("POST", f"/tenants/{tenant.id}/consent", json={})
    login = user_administrator(graph_sandbox, tenant.id)
    graph_sandbox.admin("DELETE", f"/tenants/{tenant.id}/consent", json={})

    page = browser.sign_in(
        consent_url(graph_sandbox, "organizations"), login, graph_sandbox.info["people_password"]
    )
    assert "Need admin approval" in page.text
    back = FormBrowser.redirect(browser.submit(page, button="accept"))  # forcing it does not help
    assert back.params["error"] == "access_denied"
    assert "AADSTS90094" in back.params["error_description"]
    assert back.params["state"] == "c1"
    assert client_credentials(graph_sandbox, tenant.id).status_code == 400


def test_a_privileged_role_administrator_can_consent_and_a_declined_consent_says_so(
    graph_sandbox: GraphSandbox, browser: FormBrowser
) -> None:
    tenant = unconsented(graph_sandbox)
    graph_sandbox.admin("POST", f"/tenants/{tenant.id}/consent", json={})
    login = user_administrator(graph_sandbox, tenant.id)
    graph_sandbox.admin("DELETE", f"/tenants/{tenant.id}/consent", json={})
    made = graph_sandbox.admin(
        "PUT", f"/tenants/{tenant.id}/roles/{PRIVILEGED_ROLE_ADMINISTRATOR}/members/{login}"
    )
    assert PRIVILEGED_ROLE_ADMINISTRATOR in made.json()["roles"]

    declined = consent_as(
        browser, graph_sandbox, consent_url(graph_sandbox, tenant.id, v2=False), login, "cancel"
    )
    assert declined.params["error"] == "access_denied"
    assert "AADSTS65004" in declined.params["error_description"]
    assert client_credentials(graph_sandbox, tenant.id).status_code == 400

    page = browser.get(consent_url(graph_sandbox, tenant.id, v2=False, state="again"))
    back = FormBrowser.redirect(browser.submit(page, button="accept"))  # signed in already
    assert back.params == {"admin_consent": "True", "tenant": tenant.id, "state": "again"}
    assert client_credentials(graph_sandbox, tenant.id).status_code == 200


def test_a_consent_form_cannot_be_replayed(
    graph_sandbox: GraphSandbox, browser: FormBrowser
) -> None:
    tenant = unconsented(graph_sandbox)
    administrator = graph_sandbox.admin("GET", f"/tenants/{tenant.id}").json()["administrator"]
    page = browser.sign_in(
        consent_url(graph_sandbox, tenant.id), administrator, graph_sandbox.info["people_password"]
    )
    first = browser.submit(page, button="cancel")
    assert FormBrowser.redirect(first).params["error"] == "access_denied"
    replay = browser.submit(page, button="accept")
    assert replay.status_code == 400
    assert "AADSTS90100" in replay.text
    assert client_credentials(graph_sandbox, tenant.id).status_code == 400


# --- roles in tokens and in Graph ----------------------------------------------------------------


def signed_in_tokens(
    sandbox: GraphSandbox, browser: FormBrowser, tenant_key: str, login: str, scope: str
) -> dict[str, Any]:
    answer = browser.sign_in(
        authorize_url(sandbox, tenant_key, scope=scope), login, sandbox.info["people_password"]
    )
    code = FormBrowser.redirect(answer).params["code"]
    response = redeem(sandbox, tenant_key, code=code)
    assert response.status_code == 200, response.text
    return dict(response.json())


def graph_get(sandbox: GraphSandbox, token: str, path: str, **params: str) -> Any:
    return sandbox.session().get(
        f"{sandbox.info['graph_url']}{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture(scope="module")
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    return graph_sandbox.new_tenant(generate=60, seed=31)


@pytest.mark.parametrize("who", ["administrator", "user administrator", "student"])
def test_wids_and_transitive_member_of_agree(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser, who: str
) -> None:
    login = {
        "administrator": lambda: graph_sandbox.admin("GET", f"/tenants/{school.id}").json()[
            "administrator"
        ],
        "user administrator": lambda: user_administrator(graph_sandbox, school.id),
        "student": lambda: a_student(school)["userPrincipalName"],
    }[who]()
    tokens = signed_in_tokens(graph_sandbox, browser, school.id, login, "openid profile User.Read")
    claims = verified_claims(
        graph_sandbox, tokens["id_token"], app_info(graph_sandbox, "portal")["client_id"]
    )
    roles = graph_get(
        graph_sandbox,
        tokens["access_token"],
        "/me/transitiveMemberOf/microsoft.graph.directoryRole",
    )
    assert roles.status_code == 200, roles.text
    templates = {r["roleTemplateId"] for r in roles.json()["value"]}
    expected = {
        "administrator": {GLOBAL_ADMINISTRATOR},
        "user administrator": {USER_ADMINISTRATOR},
        "student": set(),
    }[who]
    assert templates == expected
    assert templates <= set(claims["wids"])
    assert not {GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR} - templates & set(claims["wids"])

    app_token = client_credentials_token(graph_sandbox, school.id)
    assigned = graph_get(
        graph_sandbox,
        app_token,
        "/roleManagement/directory/roleAssignments",
        **{"$filter": f"principalId eq '{claims['oid']}'"},
    ).json()["value"]
    assert {a["roleDefinitionId"] for a in assigned} == expected
    by_app = graph_get(
        graph_sandbox,
        app_token,
        f"/users/{claims['oid']}/transitiveMemberOf/microsoft.graph.directoryRole",
    ).json()["value"]
    assert {r["roleTemplateId"] for r in by_app} == expected


def test_organization_lists_the_verified_domains(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    tokens = signed_in_tokens(
        graph_sandbox,
        browser,
        school.id,
        a_student(school)["userPrincipalName"],
        "openid User.Read",
    )
    org = graph_get(graph_sandbox, tokens["access_token"], "/organization").json()["value"][0]
    assert org["id"] == school.id
    assert [d["name"] for d in org["verifiedDomains"]] == [school.domain]
    assert org["verifiedDomains"][0]["isDefault"] is True


def test_a_delegated_token_reads_only_what_its_scopes_allow(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    student = a_student(school)
    tokens = signed_in_tokens(
        graph_sandbox, browser, school.id, student["userPrincipalName"], "openid User.Read"
    )
    denied = graph_get(graph_sandbox, tokens["access_token"], "/users")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    write = graph_sandbox.session().patch(
        f"{graph_sandbox.info['graph_url']}/users/{student['id']}",
        json={"displayName": "Hacked"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert write.status_code == 403
    app_me = graph_get(graph_sandbox, client_credentials_token(graph_sandbox, school.id), "/me")
    assert app_me.status_code == 400


# --- tenants keep to themselves ------------------------------------------------------------------


def test_tokens_of_one_tenant_are_refused_by_another_tenants_authority_and_graph(
    graph_sandbox: GraphSandbox, school: SandboxTenant, browser: FormBrowser
) -> None:
    other = graph_sandbox.new_tenant(generate=40, seed=32)
    student = a_student(school)

    foreign = browser.sign_in(
        authorize_url(graph_sandbox, other.id),
        student["userPrincipalName"],
        graph_sandbox.info["people_password"],
    )
    assert foreign.status_code == 400
    assert "AADSTS50020" in foreign.text

    answer = browser.sign_in(
        authorize_url(graph_sandbox, school.id, prompt="login"),
        student["userPrincipalName"],
        graph_sandbox.info["people_password"],
    )
    code = FormBrowser.redirect(answer).params["code"]
    at_other = redeem(graph_sandbox, other.id, code=code)
    assert at_other.status_code == 400
    assert "AADSTS700005" in at_other.json()["error_description"]

    tokens = signed_in_tokens(
        graph_sandbox,
        browser,
        school.id,
        student["userPrincipalName"],
        "openid offline_access User.Read",
    )
    app = app_info(graph_sandbox, "portal")
    refreshed_elsewhere = graph_sandbox.session().post(
        f"{graph_sandbox.info['authority']}/{other.id}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert refreshed_elsewhere.status_code == 400
    assert refreshed_elsewhere.json()["error"] == "invalid_grant"

    someone_of_other = a_student(other)
    app_token = client_credentials_token(graph_sandbox, school.id)
    across = graph_get(graph_sandbox, app_token, f"/users/{someone_of_other['id']}")
    assert across.status_code == 404
    me = graph_get(graph_sandbox, tokens["access_token"], "/me").json()
    assert me["id"] == student["id"]


# --- the command line ------------------------------------------------------------------------


@pytest.mark.slow
def test_no_consent_and_redirect_uri_options_of_the_command(tmp_path: Path) -> None:
    uri = "https://portal.example/auth/microsoft/callback"
    sandbox = start_graph_sandbox(
        tmp_path, "--no-consent", "--redirect-uri", uri, "--generate", "30", "--seed", "3"
    )
    try:
        info = sandbox.info
        assert {a["name"] for a in info["apps"]} == {"skolsynk", "portal"}
        assert all(uri in a["redirect_uris"] for a in info["apps"])
        skolsynk_app = next(a for a in info["apps"] if a["name"] == "skolsynk")
        assert skolsynk_app["client_id"] == info["client_id"]
        (tenant,) = info["tenants"]
        assert tenant["administrator"].endswith("@" + tenant["domain"])
        assert info["people_password"]
        refused = client_credentials(sandbox, tenant["id"])
        assert "AADSTS7000229" in refused.json()["error_description"]
        log = sandbox.process.log_tail(40)
        assert info["people_password"] not in log and info["client_secret"] not in log
    finally:
        sandbox.stop()


@pytest.mark.slow
def test_a_bad_redirect_uri_option_is_one_sentence_and_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        skolsynk_command(
            "sandbox", "graph", "--data-dir", str(tmp_path), "--redirect-uri", "not-a-uri"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--redirect-uri" in result.stderr and "Traceback" not in result.stderr
