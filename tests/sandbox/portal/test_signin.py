"""The portal's sign-in with Microsoft against the running sandbox tenant: linking by oid, by
e-mail within the tenant's verified domains only, never across tenants; the refusal pages;
"Mina läromedel" with direct and class licences; teachers giving licences; sessions and CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from common.portal.scim import SCHOOL_USER_SCHEMA
from tests.fixtures.browser import FormBrowser, forms_of, text_of
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group, create_user


@pytest.fixture
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    """A fresh small municipality per test, so no test meets another's links."""
    return graph_sandbox.new_tenant(generate=60)


@pytest.fixture
def org(signin_portal: PortalServer) -> Iterator[PortalOrg]:
    organisation = signin_portal.new_organisation()
    yield organisation
    organisation.close()


@pytest.fixture
def browser(graph_sandbox: GraphSandbox) -> Iterator[FormBrowser]:
    form_browser = FormBrowser(graph_sandbox.ca_bundle)
    yield form_browser
    form_browser.close()


def people(tenant: SandboxTenant, role: str, count: int = 1) -> list[dict[str, Any]]:
    edu = tenant.graph.all_pages("/education/users?$top=999&$select=id,primaryRole")
    ids = [u["id"] for u in edu if u["primaryRole"] == role][:count]
    return [tenant.graph.get(f"/users/{i}").json() for i in ids]


def synced(org: PortalOrg, user: dict[str, Any], role: str, **extra: Any) -> dict[str, Any]:
    """The account the sync would have made for ``user`` (externalId = its object id)."""
    return create_user(
        org,
        user["userPrincipalName"],
        externalId=user["id"],
        emails=[{"value": user["mail"], "type": "work", "primary": True}],
        displayName=user["displayName"],
        **{SCHOOL_USER_SCHEMA: {"role": role}},
        **extra,
    )


def map_tenant(signin_portal: PortalServer, org: PortalOrg, tenant_id: str) -> None:
    response = signin_portal.admin.put(
        f"{signin_portal.url}/api/organisations/{org.name}/microsoft-tenant",
        json={"tenantId": tenant_id},
    )
    assert response.status_code == 200, response.text


def sign_in(
    signin_portal: PortalServer,
    browser: FormBrowser,
    sandbox: GraphSandbox,
    login: str,
    start: str = "/?idp=microsoft",
) -> requests.Response:
    page = browser.follow(browser.get(signin_portal.url + start))
    assert "loginfmt" in page.text, text_of(page.text)[:300]
    answer = browser.submit(page, loginfmt=login, passwd=sandbox.info["people_password"])
    return browser.follow(answer)


def test_login_page_has_the_microsoft_button_and_idp_links_go_straight_there(
    signin_portal: PortalServer, browser: FormBrowser, graph_sandbox: GraphSandbox
) -> None:
    page = browser.get(signin_portal.url + "/login")
    assert page.status_code == 200
    assert "Logga in med Microsoft" in page.text
    for start in (
        "/?idp=microsoft&login_hint=elev@skola.example",
        "/login?idp=microsoft&login_hint=elev@skola.example",
    ):
        hop = browser.get(signin_portal.url + start)
        assert hop.status_code == 302
        authorize = follow_once(browser, hop)
        assert authorize.startswith(
            graph_sandbox.info["authority"] + "/organizations/oauth2/v2.0/authorize"
        )
        query = parse_qs(urlsplit(authorize).query)
        assert query["login_hint"] == ["elev@skola.example"]
        assert query["code_challenge_method"] == ["S256"]
        assert query["nonce"] and query["state"]


def follow_once(browser: FormBrowser, response: requests.Response) -> str:
    """Follow the portal's own hops until the redirect leaves for Microsoft; that URL."""
    while True:
        location = requests.compat.urljoin(response.url, response.headers["Location"])
        if not location.startswith(
            response.url.split("/", 3)[0] + "//" + urlsplit(response.url).netloc
        ):
            return location
        response = browser.get(location)


def test_signing_in_by_oid_shows_direct_and_class_licences_and_learns_the_tenant(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    student, classmate = people(school, "student", 2)
    account = synced(org, student, "student")
    other = synced(org, classmate, "student")
    klass = create_group(org, "7A Testskolan", [account["id"], other["id"]], externalId="class-7a")
    org.assign_licence("Matematik Origo 7", user_id=account["id"])
    org.assign_licence("Svenska Direkt 8", group_id=klass["id"])
    org.assign_licence("Engelska Spotlight 9", user_id=other["id"])

    page = sign_in(signin_portal, browser, graph_sandbox, student["userPrincipalName"])
    assert page.status_code == 200, text_of(page.text)[:400]
    assert page.url.endswith("/mina-laromedel")
    text = text_of(page.text)
    assert "Mina läromedel" in text and student["displayName"] in text
    assert "Matematik Origo 7" in text
    assert "Svenska Direkt 8" in text and "7A Testskolan" in text
    assert "Engelska Spotlight 9" not in text
    assert org.name in text


def test_session_cookie_is_httponly_and_samesite_lax(
    signin_portal: PortalServer, browser: FormBrowser
) -> None:
    response = browser.get(signin_portal.url + "/auth/microsoft")
    header = response.headers["Set-Cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header
    assert "secure" not in header.replace("samesite", "")


def test_first_sign_in_links_an_unmanaged_account_with_the_email_in_other_case_and_keeps_licences(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    (student,) = people(school, "student")
    existing = org.create_user(student["mail"].upper(), email=student["mail"].upper())
    org.assign_licence("NO-boken Fysik", user_id=existing["id"])
    map_tenant(signin_portal, org, school.id)

    page = sign_in(signin_portal, browser, graph_sandbox, student["userPrincipalName"])
    assert page.status_code == 200, text_of(page.text)[:400]
    assert "NO-boken Fysik" in text_of(page.text)
    linked = next(u for u in org.users() if u["id"] == existing["id"])
    assert linked["externalId"] == student["id"]
    assert [lic["userId"] for lic in org.licences()] == [existing["id"]]


def test_an_account_with_an_email_outside_the_verified_domains_is_not_linked(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    guests = [u for u in school.graph.users() if u.get("userType") == "Guest"]
    guest = school.graph.get(f"/users/{guests[0]['id']}").json()
    assert guest["mail"].rpartition("@")[2] != school.domain
    lookalike = org.create_user(guest["mail"], email=guest["mail"])
    map_tenant(signin_portal, org, school.id)

    page = sign_in(signin_portal, browser, graph_sandbox, guest["userPrincipalName"])
    assert page.status_code == 403
    assert "Du har inget konto i portalen" in page.text and "no account" in page.text
    assert next(u for u in org.users() if u["id"] == lookalike["id"])["externalId"] is None


def test_a_user_of_another_tenant_gets_no_account(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    other = graph_sandbox.new_tenant(generate=40, seed=52)
    (stranger,) = people(other, "student")
    same_mail = org.create_user(stranger["mail"], email=stranger["mail"])
    map_tenant(signin_portal, org, school.id)

    page = sign_in(signin_portal, browser, graph_sandbox, stranger["userPrincipalName"])
    assert page.status_code == 403
    assert "Din skola finns inte i portalen" in page.text
    assert next(u for u in org.users() if u["id"] == same_mail["id"])["externalId"] is None


def test_a_person_without_an_account_is_told_who_can_fix_it(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    map_tenant(signin_portal, org, school.id)
    (teacher,) = people(school, "teacher")
    page = sign_in(signin_portal, browser, graph_sandbox, teacher["userPrincipalName"])
    assert page.status_code == 403
    assert "administratör" in page.text and "administrator" in page.text


def test_a_deactivated_account_is_refused(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    (student,) = people(school, "student")
    synced(org, student, "student", active=False)
    page = sign_in(signin_portal, browser, graph_sandbox, student["userPrincipalName"])
    assert page.status_code == 403
    assert "Ditt konto är inaktiverat" in page.text and "deactivated" in page.text
    assert browser.get(signin_portal.url + "/mina-laromedel").status_code == 302


def test_a_wrong_state_is_refused(
    signin_portal: PortalServer,
    org: PortalOrg,
    school: SandboxTenant,
    browser: FormBrowser,
    graph_sandbox: GraphSandbox,
) -> None:
    (student,) = people(school, "student")
    synced(org, student, "student")
    page = browser.follow(browser.get(signin_portal.url + "/?idp=microsoft"))
    answer = browser.submit(
        page, loginfmt=student["userPrincipalName"], passwd=graph_sandbox.info["people_password"]
    )
    callback = answer.headers["Location"]
    forged = callback.replace("state=", "state=forged")
    refused = browser.get(forged)
    assert refused.status_code == 400
    assert "Inloggningen" in refused.text
    assert browser.get(signin_portal.url + "/mina-laromedel").status_code == 302
    replayed = browser.get(callback)  # the pending sign-in is gone after one answer
    assert replayed.status_code == 400


def test_a_teacher_gives_a_licence_to_a_class_and_to_a_student_with_csrf(
    signin_portal: PortalServer, org: PortalOrg, school: SandboxTenant, graph_sandbox: GraphSandbox
) -> None:
    (teacher,) = people(school, "teacher")
    student, classmate = people(school, "student", 2)
    t_account = synced(org, teacher, "teacher")
    s_account = synced(org, student, "student")
    c_account = synced(org, classmate, "student")
    klass = create_group(
        org,
        "8B Testskolan",
        [t_account["id"], s_account["id"], c_account["id"]],
        externalId="class-8b",
    )

    teacher_browser = FormBrowser(graph_sandbox.ca_bundle)
    try:
        page = sign_in(signin_portal, teacher_browser, graph_sandbox, teacher["userPrincipalName"])
        assert "Mina klasser" in page.text and "8B Testskolan" in page.text
        no_token = teacher_browser.session.post(
            signin_portal.url + "/mina-laromedel/licenser",
            data={"product": "Historia Impuls", "target": f"class:{klass['id']}"},
            allow_redirects=False,
        )
        assert no_token.status_code == 400
        form = forms_of(page.text)[1]
        assert form.fields["csrf_token"]
        given = teacher_browser.submit_form(
            page, 1, product="Historia Impuls", target=f"class:{klass['id']}"
        )
        assert given.status_code == 302
        given = teacher_browser.submit_form(
            page, 1, product="NO-boken Fysik", target=f"student:{s_account['id']}"
        )
        assert given.status_code == 302
        outside = teacher_browser.submit_form(
            page, 1, product="NO-boken Fysik", target="student:not-mine"
        )
        assert outside.status_code == 403
    finally:
        teacher_browser.close()
    licences = {(lic["product"], lic["groupId"] or lic["userId"]) for lic in org.licences()}
    assert licences == {("Historia Impuls", klass["id"]), ("NO-boken Fysik", s_account["id"])}

    student_browser = FormBrowser(graph_sandbox.ca_bundle)
    try:
        text = text_of(
            sign_in(
                signin_portal, student_browser, graph_sandbox, student["userPrincipalName"]
            ).text
        )
        assert "Historia Impuls" in text and "NO-boken Fysik" in text
        mine = student_browser.get(signin_portal.url + "/mina-laromedel")
        out = student_browser.submit_form(mine, 0)
        assert out.status_code == 302
        assert student_browser.get(signin_portal.url + "/mina-laromedel").status_code == 302
    finally:
        student_browser.close()


def test_microsoft_sign_in_is_off_without_configuration(portal_server: PortalServer) -> None:
    page = requests.get(portal_server.url + "/login", timeout=10)
    assert page.status_code == 200 and "inte påslagen" in page.text
    assert requests.get(portal_server.url + "/auth/microsoft", timeout=10).status_code == 404


@pytest.mark.slow
def test_a_bad_microsoft_file_is_one_sentence_and_exit_code(tmp_path: Path) -> None:
    import subprocess

    from tests.fixtures.processes import skolsynk_command

    missing = subprocess.run(
        skolsynk_command(
            "sandbox",
            "portal",
            "--db",
            str(tmp_path / "p.db"),
            "--microsoft",
            str(tmp_path / "nope.json"),
        ),
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "--microsoft" in missing.stderr and "Traceback" not in missing.stderr
