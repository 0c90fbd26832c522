"""Signing in to the admin app with Microsoft (the sandbox's Entra sign-in, MSAL's auth-code
flow with PKCE) and connecting a school through admin consent, over HTTP as a browser does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.admin.conftest import AdminClient, AdminServer, text_of
from tests.conftest import SDS_SAMPLES
from tests.fixtures.browser import FormBrowser, Redirect

pytestmark = pytest.mark.slow


@pytest.fixture
def unconsented(graph_sandbox: Any) -> dict[str, Any]:
    """A school tenant that has not consented to Skolsynk's app yet."""
    created: dict[str, Any] = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={
            "load": [{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-min")}],
            "consent": False,
        },
    ).json()
    return created


@pytest.fixture
def microsoft(graph_sandbox: Any) -> Iterator[FormBrowser]:
    """The browser's side at Microsoft (the sandbox's sign-in pages and their cookies)."""
    browser = FormBrowser(graph_sandbox.info["ca_bundle"])
    yield browser
    browser.close()


def start(client: AdminClient) -> str:
    """Click "Logga in med Microsoft": the authorize URL the app sends the browser to."""
    answer = client.post("/login", token=client.csrf("/"))
    assert answer.status_code == 302
    location: str = answer.headers["Location"]
    return location


def answer_of(microsoft: FormBrowser, auth_uri: str, login: str, password: str) -> Redirect:
    return microsoft.redirect(microsoft.sign_in(auth_uri, login, password))


def people_of(graph_sandbox: Any, tenant: dict[str, Any]) -> list[str]:
    """User principal names of the tenant (read as the app, consented for the purpose)."""
    from tests.fixtures.graph import GraphClient

    graph_sandbox.admin("POST", f"/tenants/{tenant['id']}/consent", json={"app": "skolsynk"})
    graph = GraphClient(graph_sandbox, tenant["id"], tenant["domain"])
    return [u["userPrincipalName"] for u in graph.all_pages("/users?$select=userPrincipalName")]


def test_global_administrator_signs_in_and_connects_the_school(
    admin_server: AdminServer,
    graph_sandbox: Any,
    microsoft: FormBrowser,
    unconsented: dict[str, Any],
) -> None:
    client = admin_server.client()
    auth_uri = start(client)
    assert "code_challenge_method=S256" in auth_uri and "response_mode=form_post" in auth_uri
    answer = answer_of(
        microsoft, auth_uri, unconsented["administrator"], graph_sandbox.info["people_password"]
    )
    assert answer.url == admin_server.url + "/auth/callback"
    signed_in = client.post("/auth/callback", answer.params)
    assert signed_in.status_code == 302
    # the same answer a second time (a replayed form post) is refused
    replay = client.session.post(
        admin_server.url + "/auth/callback", data=answer.params, timeout=60, allow_redirects=False
    )
    assert replay.status_code == 400
    assert "använts redan" in text_of(replay)
    school = client.get(
        "/",
    )
    assert school.headers["Location"].endswith(f"/skola/{unconsented['id']}/")
    page = client.get(f"/skola/{unconsented['id']}/")
    assert "Anslut skolan" in text_of(page)
    assert "Secure" not in signed_in.headers["Set-Cookie"]  # plain http on loopback here

    # Anslut skolan: Microsoft's admin consent, back to the callback, registered on test
    consent = client.post(
        f"/skola/{unconsented['id']}/anslut", token=client.csrf(f"/skola/{unconsented['id']}/")
    )
    assert consent.status_code == 303
    assert "/v2.0/adminconsent?" in consent.headers["Location"]
    page = microsoft.get(consent.headers["Location"])
    back = microsoft.redirect(microsoft.submit(page, button="accept"))
    assert back.params["admin_consent"] == "True"
    assert back.params["tenant"] == unconsented["id"]
    done = client.get("/consent/callback", params=back.params)
    assert done.status_code == 303
    tenant = admin_server.services.registry.get(unconsented["id"])
    assert tenant.environment == "test" and not tenant.enabled
    assert tenant.name == unconsented["name"]
    # the app's own credentials now work in the tenant (the consent took)
    assert admin_server.services.tokens.token(unconsented["id"])


def test_people_without_full_rights_are_refused_with_the_guides_sentence(
    admin_server: AdminServer,
    graph_sandbox: Any,
    microsoft: FormBrowser,
    unconsented: dict[str, Any],
) -> None:
    people = people_of(graph_sandbox, unconsented)
    user_admin = next(p for p in people if p.startswith("anvandaradmin@"))
    # a student or teacher: neither an administrator nor office staff
    pupil = next(p for p in people if not p.startswith(("it-admin@", "anvandaradmin@", "skol")))
    for login in (user_admin, pupil):
        client = admin_server.client()
        answer = answer_of(microsoft, start(client), login, graph_sandbox.info["people_password"])
        refused = client.post("/auth/callback", answer.params)
        assert refused.status_code == 403, login
        assert "fullständiga rättigheter i er domän" in text_of(refused)
        assert client.get(f"/skola/{unconsented['id']}/").status_code == 302
        microsoft.session.cookies.clear()


def test_broken_answers_from_microsoft_are_refused(
    admin_server: AdminServer,
    graph_sandbox: Any,
    microsoft: FormBrowser,
    unconsented: dict[str, Any],
) -> None:
    client = admin_server.client()
    password = graph_sandbox.info["people_password"]
    answer = answer_of(microsoft, start(client), unconsented["administrator"], password)
    for broken, sentence in (
        ({**answer.params, "state": "not-ours"}, "gått ut eller använts redan"),
        ({**answer.params, "state": "x" * 5000}, "saknar sitt tillstånd"),
        ({"error": "access_denied", "state": answer.params["state"]}, "avbröts eller nekades"),
    ):
        refused = client.post("/auth/callback", broken)
        assert refused.status_code == 400, broken
        assert sentence in text_of(refused)
    # a tampered code with a state of ours: Microsoft refuses it, so do we
    answer = answer_of(microsoft, start(client), unconsented["administrator"], password)
    refused = client.post("/auth/callback", {**answer.params, "code": answer.params["code"] + "x"})
    assert refused.status_code == 400
    assert client.get(f"/skola/{unconsented['id']}/").status_code == 302


def test_consent_for_another_tenant_or_refused_registers_nothing(
    admin_server: AdminServer,
    graph_sandbox: Any,
    microsoft: FormBrowser,
    unconsented: dict[str, Any],
) -> None:
    client = admin_server.client()
    answer = answer_of(
        microsoft,
        start(client),
        unconsented["administrator"],
        graph_sandbox.info["people_password"],
    )
    client.post("/auth/callback", answer.params)
    page = f"/skola/{unconsented['id']}/"
    for back, sentence in (
        (
            {"tenant": "00000000-0000-0000-0000-000000000000", "admin_consent": "True"},
            "en annan organisation",
        ),
        ({"error": "access_denied", "error_description": "AADSTS65004"}, "avbröts eller nekades"),
    ):
        consent = client.post(f"{page}anslut", token=client.csrf(page))
        state = consent.headers["Location"].split("state=")[1].split("&")[0]
        refused = client.get("/consent/callback", params={**back, "state": state})
        assert refused.status_code == 403, back
        assert sentence in text_of(refused)
    assert client.get("/consent/callback", params={"state": "forged"}).status_code == 400
    from common.errors import UnknownTenant

    with pytest.raises(UnknownTenant):
        admin_server.services.registry.get(unconsented["id"])


def test_an_operator_signs_in_from_their_own_tenant_and_sees_every_school(
    admin_server: AdminServer,
    graph_sandbox: Any,
    microsoft: FormBrowser,
    operator_login: str,
    make_school: Any,
) -> None:
    school = make_school()
    client = admin_server.client()
    answer = answer_of(
        microsoft, start(client), operator_login, graph_sandbox.info["people_password"]
    )
    assert client.post("/auth/callback", answer.params).status_code == 302
    assert client.get("/").headers["Location"].endswith("/skolor")
    listing = client.get("/skolor")
    assert school.id in listing.text
    assert client.get(f"/skola/{school.id}/").status_code == 200
    # an operator cannot consent for a school's tenant: only its own administrator can
    unconnected = make_school(connected=False)
    page = f"/skola/{unconnected.id}/"
    assert "Bara en global administratör" in text_of(client.get(page))
    refused = client.post(f"{page}anslut", token=client.csrf(page))
    assert refused.status_code == 403
