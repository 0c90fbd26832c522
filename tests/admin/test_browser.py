"""The whole job of a school administrator in a real headless Chromium, against the admin app
in gunicorn, the sandbox tenant, the reference portal and the live path (listener and
workers): connect, set the test portal, choose two schools, preview with a collision, download
the CSV, sync to test with the bar reaching 100 %, switch to production, see a change made in
Microsoft 365 in the audit log, look up a person out of scope, approve a held removal. Every
page is photographed at 1280 and 360 px wide (``/tmp/skolsynk-admin-shots``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from common.config import Secret
from common.model import Thresholds
from common.state.dispatch import Dispatcher
from common.state.registry import PortalEnvironment, Tenant
from common.state.subscription_lifecycle import ensure_subscriptions
from common.state.subscriptions import SubscriptionStore
from common.sync import engine
from tests.admin.conftest import (
    AdminServer,
    Browser,
    administrator,
    browser_sign_in,
    sign_in_with_microsoft,
)
from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphClient, SandboxTenant

pytestmark = pytest.mark.slow

CHOSEN_SCHOOLS = ("10001", "110003")


def wait_until_text(
    browser: Browser,
    words: str,
    *,
    timeout: float = 60,
    reload: bool = False,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if words in browser.text():
            return
        time.sleep(0.5)
        if reload:
            browser.driver.refresh()
    raise AssertionError(f"{words!r} never appeared; the page says: {browser.text()[:800]}")


#: the bar's value and the page's words, read in one script call: the page reloads itself
#: when the run ends, and two reads could see the bar of the old page and the words of the new
_BAR_AND_WORDS = (
    "var bar = document.getElementById('bar');"
    "return [bar ? bar.value : null, document.body ? document.body.innerText : ''];"
)


def watch_run(browser: Browser) -> list[int]:
    """Percentages the bar showed until the run ended."""
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        value, words = browser.driver.execute_script(_BAR_AND_WORDS)
        if value is not None:
            value = int(value)
            if not seen or seen[-1] != value:
                seen.append(value)
            if "Resultat:" in words or "Misslyckades" in words:
                return seen
        time.sleep(0.2)
    raise AssertionError(f"the run did not end; the bar showed {seen}")


def test_school_administrator_does_the_whole_job_in_a_browser(
    live_admin: AdminServer,
    browser: Browser,
    graph_sandbox: Any,
    portal_server: Any,
    operator_login: str,
) -> None:
    # a fresh school tenant that has not consented to Skolsynk's app
    created = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={
            "load": [
                {"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-25")},
                {"format": "sds-v2.1", "path": str(SDS_SAMPLES / "v2.1")},
            ],
            "consent": False,
        },
    ).json()
    microsoft = SandboxTenant(
        created["id"],
        created["domain"],
        created["name"],
        GraphClient(graph_sandbox, created["id"], created["domain"]),
    )
    password = graph_sandbox.info["people_password"]
    test_org, production_org = portal_server.new_organisation(), portal_server.new_organisation()
    # an account made by hand before the sync, with another e-mail: a collision to report
    test_org.create_user("ora.klein@old.example", given_name="Ora", family_name="Klein")
    name = microsoft.name
    base = f"{live_admin.url}/skola/{microsoft.id}"
    registry = live_admin.services.registry

    browser.open(live_admin.url + "/")
    assert "Logga in med Microsoft" in browser.text()
    browser.shoot("01-first-page")

    # 1. sign in with Microsoft as the tenant's Global Administrator
    sign_in_with_microsoft(browser, live_admin, graph_sandbox, created["administrator"], password)
    wait_until_text(browser, "Anslut skolan")
    assert browser.driver.current_url.startswith(base)
    browser.shoot("02-connect")

    # 2. connect: Microsoft's admin consent, then the school is registered on test
    browser.click("#connect")
    wait_until_text(browser, "Permissions requested")
    browser.click("#idSIButton9")
    wait_until_text(browser, "Skolan är ansluten")
    tenant = registry.get(microsoft.id)
    assert (tenant.name, tenant.environment, tenant.enabled) == (name, "test", False)
    assert "väntar på en portal" in browser.text()

    # 3. the test portal
    browser.open(base + "/portaler")
    browser.type("#test-url", test_org.scim_url)
    browser.type("#test-token", test_org.token)
    browser.click("#save-test")
    wait_until_text(browser, "Sparat.")
    assert test_org.token not in browser.driver.page_source
    browser.click("#check-test")
    wait_until_text(browser, "Anslutningen fungerar.")
    browser.shoot("03-portals")

    # 4. two schools of many, with the effect shown before saving
    browser.open(base + "/omfattning")
    for box in browser.finds("input[name=school]"):
        if (box.get_attribute("value") in CHOSEN_SCHOOLS) != box.is_selected():
            box.click()
    browser.click("#show-effect")
    wait_until_text(browser, "Effekten om du sparar")
    assert registry.get(microsoft.id).scope.school_ids == frozenset()
    browser.shoot("04-scope-effect")
    browser.click("#save-scope")
    wait_until_text(browser, "Omfattningen är sparad")
    assert registry.get(microsoft.id).scope.school_ids == frozenset(CHOSEN_SCHOOLS)

    # 5. preview with the collision, and the CSV of the whole plan
    browser.open(base + "/forhandsgranskning")
    wait_until_text(browser, "Krockar (1)")
    assert "ora.klein@old.example" in browser.text()
    browser.shoot("05-preview")
    browser.click("#download-csv")
    deadline = time.monotonic() + 30
    while not list(browser.downloads.glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    plan = next(browser.downloads.glob("*.csv")).read_text()
    assert plan.startswith("section,kind,microsoft_id") and "\ncollision," in plan
    assert plan.count("\nclass,") == len(browser.finds("#classes li"))

    # 6. sync to test: the bar reaches 100 %
    browser.click("#sync")
    seen = watch_run(browser)
    assert seen[-1] == 100, (seen, browser.text()[-1500:])
    wait_until_text(browser, "Resultat: klart")
    browser.shoot("06-run-test")
    assert len(test_org.users()) >= 20

    # then production: its preview, the name typed, subscriptions and the first sync
    browser.open(base + "/portaler")
    browser.type("#production-url", production_org.scim_url)
    browser.type("#production-token", production_org.token)
    browser.click("#save-production")
    wait_until_text(browser, "Sparat.")
    browser.open(base + "/produktion")
    wait_until_text(browser, "Byt till produktion")
    browser.type("#confirm_name", "fel skola")
    browser.click("#go-live-confirm")
    wait_until_text(browser, "Skriv skolans namn exakt")
    assert registry.get(microsoft.id).environment == "test"
    browser.shoot("07-go-live")
    browser.type("#confirm_name", name.upper())
    browser.click("#go-live-confirm")
    seen = watch_run(browser)
    assert seen[-1] == 100, (seen, browser.text()[-1500:])
    wait_until_text(browser, "Resultat: klart")
    browser.shoot("08-run-production")
    assert registry.get(microsoft.id).environment == "production"
    assert len(production_org.users()) == len(test_org.users()) - 1  # the hand-made account

    # 7. a change in Microsoft 365 reaches the portal and the audit log
    students = {u["displayName"]: u for u in microsoft.graph.users()}
    ora = students["Ora Klein"]
    microsoft.graph.rename_user(ora["id"], "Orla", "Klein")
    browser.open(base + "/logg?q=Orla")
    wait_until_text(browser, "Orla Klein", reload=True)
    browser.shoot("09-audit")

    # Synka nu for that person: run at once, the result on the page
    browser.open(base + "/person?q=Orla")
    wait_until_text(browser, "Synkas")
    assert "genom Microsofts objekt-id" in browser.text()
    browser.click("#sync-person")
    wait_until_text(browser, "ändringar skrevs")
    assert "klart" in browser.find("#synced").text
    browser.shoot("10-synced")

    # person lookup: a member of staff is out of scope, and the page says why
    microsoft.graph.create_staff("Sven", "Personalsson")
    browser.open(base + "/person?q=Sven")
    wait_until_text(browser, "kommer inte från SDS")
    assert browser.find("#in-scope").text == "Synkas inte"
    browser.shoot("10-lookup-out-of-scope")

    # a removal held by the mass-change guard, approved
    tenant = registry.get(microsoft.id)
    registry.save(replace(tenant, thresholds=Thresholds(max_removals=0, max_removal_share=0.0)))
    leaver = students["Beulah McMillan"]
    microsoft.graph.delete_user(leaver["id"])
    browser.open(base + "/vantande")
    leaver_email = leaver.get("mail") or leaver["userPrincipalName"]
    wait_until_text(browser, leaver_email, reload=True)
    browser.shoot("11-held")
    browser.click("#h-1")
    browser.click("#approve-chosen")
    wait_until_text(browser, "1 borttagningar godkändes")
    account = next(u for u in production_org.users() if u.get("externalId") == leaver["id"])
    assert account["active"] is False

    browser.open(base + "/")
    assert "går ut" in browser.text()
    assert browser.page_is_narrow_enough()
    browser.shoot("12-dashboard")
    browser.open(f"{live_admin.url}/lang/en?next=/skola/{microsoft.id}/")
    assert "Where things stand" in browser.text()
    browser.shoot("13-dashboard-en")
    browser.open(f"{live_admin.url}/lang/sv?next=/skola/{microsoft.id}/koppla-fran")
    browser.shoot("14-disconnect")

    # a User Administrator and a student of the same school are refused, with the sentence
    people = {u["userPrincipalName"].split("@")[0].casefold(): u for u in microsoft.graph.users()}
    for login in ("anvandaradmin", "oklein"):
        sign_in_with_microsoft(
            browser, live_admin, graph_sandbox, people[login]["userPrincipalName"], password
        )
        wait_until_text(browser, "fullständiga rättigheter i er domän")
        assert registry.get(microsoft.id).environment == "production"
    browser.shoot("15-refused")

    # the portal's operations team sees every school
    sign_in_with_microsoft(browser, live_admin, graph_sandbox, operator_login, password)
    wait_until_text(browser, "Anslutna skolor")
    assert name in browser.text()
    browser.shoot("17-schools")


def test_disconnecting_stops_everything_and_keeps_the_audit_log(
    live_admin: AdminServer,
    browser: Browser,
    graph_sandbox: Any,
    portal_server: Any,
    live_stack: Any,
) -> None:
    microsoft = graph_sandbox.new_tenant(
        load=[{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-min")}]
    )
    org = portal_server.new_organisation()
    svc = live_admin.services
    svc.registry.add(
        Tenant(
            id=microsoft.id,
            name=f"Skola {microsoft.name}",
            portals={"test": PortalEnvironment(org.scim_url, Secret(org.token))},
        )
    )
    engine.reconcile_tenant(svc, microsoft.id)
    store = SubscriptionStore(svc.redis, svc.config.secret_key)
    ensure_subscriptions(svc.graph(microsoft.id), store, microsoft.id, live_stack.listener_url)
    assert len(store.for_tenant(microsoft.id)) == 2
    # a reconcile waiting in the queue for the school when it disconnects (unless a worker
    # took it already; tests/common/state/test_drop_jobs.py pins the dropping itself)
    waiting = Dispatcher(svc.redis)
    waiting.enqueue_reconcile(microsoft.id, why="schedule")
    audited = len(list(svc.audit.entries(microsoft.id)))
    assert audited > 0
    browser_sign_in(browser, live_admin, administrator(microsoft.id, microsoft.name))
    base = f"{live_admin.url}/skola/{microsoft.id}"
    browser.open(base + "/koppla-fran")
    browser.type("#confirm_name", f"Skola {microsoft.name}")
    browser.click("button.danger")
    wait_until_text(browser, "är frånkopplad")
    browser.shoot("16-disconnected")
    assert store.for_tenant(microsoft.id) == []
    listed = svc.graph(microsoft.id).list_subscriptions()
    assert not [
        s for s in listed if s.get("notificationUrl", "").startswith(live_stack.listener_url)
    ]
    assert len(list(svc.audit.entries(microsoft.id))) == audited
    assert not [j for j in waiting.reconcile.get_jobs() if j.args[:1] == [microsoft.id]]
    before = org.users()
    # the school is unknown now: its pages offer to connect again, nothing writes for it
    browser.open(base + "/")
    assert "Anslut skolan" in browser.text()
    assert org.users() == before
