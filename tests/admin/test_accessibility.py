"""The admin app for people who use a keyboard, a screen reader or a dim screen, in a real
headless Chromium: every form control has a name, the main journey (sign in, save a form,
approve a held removal) works with Tab, Enter and Space alone, with a focus ring that stands
out at every stop, and the stylesheet's text colours meet WCAG AA on their backgrounds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from common.config import Secret
from common.model import Thresholds
from common.state.registry import PortalEnvironment, Tenant
from common.sync import engine
from tests.admin.conftest import AdminServer, Browser, small_school_tenant
from tests.admin.test_browser import wait_until_text

pytestmark = pytest.mark.slow

STYLESHEET = Path(__file__).resolve().parents[2] / "admin" / "static" / "admin.css"
#: WCAG 2.2 AA: body text 4.5:1; a focus indicator 3:1 against what surrounds it
TEXT_CONTRAST = 4.5
FOCUS_CONTRAST = 3.0


def assert_rings_show(stops: list[dict[str, Any]]) -> None:
    for stop in stops:
        assert stop["ring"] >= 2, f"no visible focus ring on {stop}"
        assert stop["ringContrast"] >= FOCUS_CONTRAST, f"focus ring too faint on {stop}"


def test_the_main_journey_works_with_the_keyboard_alone(
    admin_server: AdminServer, browser: Browser, graph_sandbox: Any, portal_server: Any
) -> None:
    created, graph = small_school_tenant(graph_sandbox)
    org = portal_server.new_organisation()
    svc = admin_server.services
    svc.registry.add(
        Tenant(
            id=created["id"],
            name=f"Skola {created['name']}",
            portals={"test": PortalEnvironment(org.scim_url, Secret(org.token))},
            thresholds=Thresholds(max_removals=0, max_removal_share=0.0),
        )
    )
    engine.reconcile_tenant(svc, created["id"])
    leaver = next(
        u
        for u in graph.users()
        if any(p.get("externalId") == u["id"] for p in org.users())
        and not u["userPrincipalName"].startswith(("admin", "it"))
    )
    graph.delete_user(leaver["id"])
    engine.reconcile_tenant(svc, created["id"])
    assert svc.safety.held(created["id"]), "the removal was not held"

    # sign in: Tab to the button, Enter; then Microsoft's page, filled from the keyboard
    browser.open(admin_server.url + "/")
    browser.driver.delete_all_cookies()
    browser.open(admin_server.url + "/")
    assert_rings_show(browser.tab_to("#sign-in"))
    browser.press(Keys.ENTER)
    wait_until_text(browser, "Sign in", timeout=30)
    browser.tab_to("input[name=loginfmt]", limit=20)
    browser.type_here(created["administrator"])
    browser.tab_to("input[name=passwd]", limit=20)
    browser.type_here(graph_sandbox.info["people_password"])
    browser.press(Keys.ENTER)
    wait_until_text(browser, "Läget just nu", timeout=30)
    base = f"{admin_server.url}/skola/{created['id']}"
    assert browser.driver.current_url.startswith(base)

    # a form: the test portal's settings, saved with Enter on the button
    browser.open(base + "/portaler")
    assert_rings_show(browser.tab_to("#save-test"))
    browser.press(Keys.ENTER)
    wait_until_text(browser, "Sparat.")

    # the held removal: Space ticks it, Enter on the button approves it
    browser.open(base + "/vantande")
    assert_rings_show(browser.tab_to("#h-1"))
    browser.press(Keys.SPACE)
    assert browser.find("#h-1").is_selected()
    assert_rings_show(browser.tab_to("#approve-chosen", limit=10))
    browser.press(Keys.ENTER)
    wait_until_text(browser, "1 borttagningar godkändes")
    account = next(u for u in org.users() if u.get("externalId") == leaver["id"])
    assert account["active"] is False

    # the skip link is the first stop and takes the focus past the menus
    browser.open(base + "/")
    first = browser.tab_to(".skip", limit=1)
    assert_rings_show(first)
    browser.press(Keys.ENTER)
    assert browser.driver.execute_script("return document.activeElement.id") == "main"
    assert not browser.unlabelled()
    assert not browser.low_contrast()


# --- the stylesheet's own colours --------------------------------------------------------------

RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def hex_colour(raw: str) -> tuple[int, int, int]:
    digits = raw.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def luminance(colour: tuple[int, int, int]) -> float:
        def channel(value: int) -> float:
            v = value / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(v) for v in colour)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def stylesheet() -> list[tuple[str, dict[str, str]]]:
    """admin.css as (selector, declarations), ``var(--x)`` resolved from ``:root``."""
    text = re.sub(r"/\*.*?\*/", "", STYLESHEET.read_text(), flags=re.S)
    text = re.sub(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)\s*\}", r"\1", text)
    rules = []
    for selector, body in RULE.findall(text):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        rules.append((" ".join(selector.split()), declarations))
    palette = next(d for s, d in rules if s == ":root")

    def resolve(value: str) -> str:
        return re.sub(r"var\((--[\w-]+)\)", lambda m: palette[m.group(1)], value)

    return [(s, {k: resolve(v) for k, v in d.items()}) for s, d in rules if s != ":root"]


def painted(declarations: dict[str, str]) -> tuple[int, int, int] | None:
    found = HEX.search(declarations.get("background", declarations.get("background-color", "")))
    return hex_colour(found.group(0)) if found else None


def test_every_text_colour_of_the_stylesheet_meets_wcag_aa_on_its_backgrounds() -> None:
    """A rule that sets a text colour and paints a background (a button, the header) is read
    on that background; one inside the header on the header's; any other on every surface
    text lands on (the page and the panels: backgrounds painted without a colour of their
    own). The browser tests check the same on every rendered page (``Browser.low_contrast``)."""
    rules = stylesheet()
    header = painted(dict(rules)[".top"])
    surfaces = {
        colour for _selector, d in rules if "color" not in d and (colour := painted(d)) is not None
    }
    assert len(surfaces) >= 2  # the page and the soft panels
    checked = 0
    for selector, declarations in rules:
        found = HEX.search(declarations.get("color", ""))
        if found is None:
            continue
        own = painted(declarations)
        if own is not None:
            on = {own}
        elif selector.startswith(".top"):
            on = {header}
        else:
            on = surfaces
        for surface in on:
            assert surface is not None
            ink = hex_colour(found.group(0))
            assert contrast(ink, surface) >= TEXT_CONTRAST, (selector, ink, surface)
            checked += 1
    assert checked >= 10


def test_the_focus_ring_stands_out_on_the_page_and_in_the_header() -> None:
    rules = dict(stylesheet())
    ring = HEX.search(rules[":focus-visible"]["outline"])
    assert ring is not None
    in_header = HEX.search(rules.get(".top :focus-visible", {}).get("outline-color", ""))
    page, header = painted(rules["body"]), painted(rules[".top"])
    assert page is not None and header is not None
    assert contrast(hex_colour(ring.group(0)), page) >= FOCUS_CONTRAST
    assert contrast(hex_colour((in_header or ring).group(0)), header) >= FOCUS_CONTRAST
