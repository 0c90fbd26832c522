"""The demo's sign-in story: a teacher gives a licence to a class in the portal, and a student of
that class signs in with Microsoft and finds it under "Mina läromedel".

Both sign in over HTTP exactly as a browser does (``sandbox.graph.signin_client``): the
portal's ``/?idp=microsoft`` link, the sandbox's sign-in page with the sandbox's people's
password, back to the portal, which links them by the ID token's ``oid`` (the ``externalId``
the sync wrote) and learns which organisation the tenant's people belong to.

Failure policy: a step that does not work ends the demo with a ``StackError`` sentence (so
``demo --check`` and a plain run both exit non-zero); no token or secret is printed, only the
sandbox's people's password when asked how to sign in by hand.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from common.graph import sds
from sandbox.graph.signin_client import FormBrowser, text_of
from skolsynk.stack import StackError

if TYPE_CHECKING:
    from skolsynk.demo import Demo

PRODUCT = "Matematik Origo 7"
CLASSES_TRIED = 20


def _class_with_people(demo: Demo) -> tuple[dict[str, Any], str, dict[str, Any], dict[str, Any]]:
    """An SDS class whose teacher and one of whose students are active in the portal."""
    portal = demo.services.portal(demo.tenant)
    classes = [g for g in demo.graph.groups() if g.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_SECTION]
    for klass in classes[:CLASSES_TRIED]:
        group = portal.find_group(klass["id"])
        path = f"/education/classes/{klass['id']}"
        teachers = demo.graph.get(f"{path}/teachers?$select=id").json().get("value", [])
        members = demo.graph.get(f"{path}/members?$select=id,primaryRole").json().get("value", [])
        students = [m for m in members if m.get("primaryRole") == "student"]
        active = [
            p for p in (*teachers[:1], *students) if (demo.portal_user(p["id"]) or {}).get("active")
        ]
        if group is None or not teachers or len(active) < 2 or active[0]["id"] != teachers[0]["id"]:
            continue
        teacher = demo.graph.get(f"/users/{active[0]['id']}").json()
        student = demo.graph.get(f"/users/{active[1]['id']}").json()
        return klass, group.id, teacher, student
    raise StackError("No class with a teacher and an active student to show sign-in with.")


def _signed_in(browser: FormBrowser, portal_url: str, upn: str, password: str) -> Any:
    page = browser.follow(browser.get(f"{portal_url}/?idp=microsoft&login_hint={quote(upn)}"))
    if "loginfmt" not in page.text:
        raise StackError(f"The portal did not send {upn} to Microsoft's sign-in page.")
    landed = browser.follow(browser.submit(page, loginfmt=upn, passwd=password))
    if not landed.url.endswith("/mina-laromedel"):
        raise StackError(f"{upn} could not sign in to the portal: {text_of(landed.text)[:200]}")
    return landed


def sign_in_story(demo: Demo, *, show_how: bool) -> None:
    """Teacher gives a class a licence; a student of it signs in and sees it."""
    print()
    print("Signing in to the portal with Microsoft, as a browser does:")
    info, portal_url = demo.stack.graph, demo.stack.portal["url"]
    password = str(info["people_password"])
    klass, group_id, teacher, student = _class_with_people(demo)
    started = time.monotonic()
    teacher_browser = FormBrowser(info["ca_bundle"])
    try:
        page = _signed_in(teacher_browser, portal_url, teacher["userPrincipalName"], password)
        given = teacher_browser.submit_form(page, 1, product=PRODUCT, target=f"class:{group_id}")
        if given.status_code != 302:
            raise StackError(f"The teacher could not give {PRODUCT} to {klass['displayName']}.")
    finally:
        teacher_browser.close()
    print(f"  ✓ teacher {teacher['displayName']} signed in, gave {klass['displayName']} {PRODUCT}")
    student_browser = FormBrowser(info["ca_bundle"])
    try:
        page = _signed_in(student_browser, portal_url, student["userPrincipalName"], password)
    finally:
        student_browser.close()
    if PRODUCT not in text_of(page.text):
        raise StackError(f"{student['displayName']} signed in but does not see {PRODUCT}.")
    print(
        f"  ✓ student {student['displayName']} signed in with Microsoft and sees {PRODUCT} "
        f"under Mina läromedel ({time.monotonic() - started:.1f} s for both sign-ins)"
    )
    if show_how:
        print(f"  Sign in yourself: {portal_url}/?idp=microsoft")
        print(f"    as {student['userPrincipalName']} (or any person of the tenant)")
        print(f"    password {password} (every person of the sandbox has it)")
