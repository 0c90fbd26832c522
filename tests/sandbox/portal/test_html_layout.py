"""The portal's pages as a person sees them in a real headless Chromium (through Selenium):
rows in Swedish order, duplicates marked, no sideways scrolling at 1280 px, and a Swedish and
English page for an organisation that does not exist."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from common.portal.scim import SCHOOL_GROUP_SCHEMA, SCHOOL_USER_SCHEMA
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group, create_user

#: where the screenshots go, to be looked at by a person
SCREENSHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", "/tmp"))
NAMES_IN_ORDER = ["Anna Berg", "Zacharias Lund", "Åke Ek", "Ärla Sand", "Örjan Nilsson"]
LONG_SCHOOL = "Kungliga Svenska Balettskolans gymnasium och grundskola i Stockholms stad"
LONG_EMAIL = "karljohanvilhelmssonafgyllenhammar.langtefternamn@mycketlangskoldoman.example.se"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.fail("chromium and chromedriver are needed (Debian: apt-get install chromium)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def school(portal_org: PortalOrg) -> PortalOrg:
    """Users created out of order, one with a very long e-mail, two sharing an externalId."""
    for index, name in enumerate(reversed(NAMES_IN_ORDER)):
        given, family = name.split()
        create_user(
            portal_org,
            f"elev{index}@skola.example",
            name={"givenName": given, "familyName": family},
            displayName=name,
            externalId=f"entra-{index}",
            **{
                SCHOOL_USER_SCHEMA: {
                    "role": "student",
                    "schools": ["90123456", "90123457"],
                    # long names, as SDS has them, not in order: the page sorts and wraps them
                    "schoolNames": ["Ängskolan", LONG_SCHOOL],
                    "grade": "7",
                }
            },
        )
    create_user(
        portal_org,
        LONG_EMAIL,
        name={"givenName": "Karl-Johan", "familyName": "Vilhelmsson"},
        displayName="Karl-Johan Vilhelmsson af Gyllenhammar",
        externalId="entra-twin",
    )
    create_user(
        portal_org,
        "karl.johan.tvilling@skola.example",
        name={"givenName": "Karl-Johan", "familyName": "Tvilling"},
        displayName="Karl-Johan Tvilling",
        externalId="entra-twin",
    )
    for name in ("9B Matematik", "7A Svenska", "8C Ämnesval"):
        create_group(
            portal_org,
            name,
            [],
            externalId=f"entra-{name}",
            **{SCHOOL_GROUP_SCHEMA: {"school": "90123456"}},
        )
    return portal_org


def column(browser: webdriver.Chrome, table: str, index: int = 0) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-id]")
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows]


@pytest.mark.slow
def test_rows_are_sorted_duplicates_marked_and_nothing_scrolls_sideways(
    portal_server: PortalServer, school: PortalOrg, browser: webdriver.Chrome
) -> None:
    browser.get(f"{portal_server.url}/{school.name}/")

    names = [n.removesuffix(" dubblett") for n in column(browser, "user-table")]
    assert names == [
        "Anna Berg",
        "Karl-Johan Tvilling",
        "Karl-Johan Vilhelmsson af Gyllenhammar",
        "Zacharias Lund",
        "Åke Ek",
        "Ärla Sand",
        "Örjan Nilsson",
    ]
    assert column(browser, "group-table") == ["7A Svenska", "8C Ämnesval", "9B Matematik"]
    # schools by name, in Swedish order (the long one first), never by id
    assert column(browser, "user-table", 4)[0] == f"{LONG_SCHOOL}, Ängskolan"

    twins = browser.find_elements(By.CSS_SELECTOR, "#user-table tr.duplicate")
    assert sorted(t.find_elements(By.TAG_NAME, "td")[0].text for t in twins) == [
        "Karl-Johan Tvilling dubblett",
        "Karl-Johan Vilhelmsson af Gyllenhammar dubblett",
    ]
    assert "2 användare delar externalId" in browser.find_element(By.TAG_NAME, "body").text

    width = browser.execute_script("return document.documentElement.scrollWidth")
    visible = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= visible, (width, visible)
    browser.save_screenshot(str(SCREENSHOTS / "portal-organisation-1280.png"))


def test_an_unknown_organisation_gets_a_page_in_swedish_and_english(
    portal_server: PortalServer, school: PortalOrg, browser: webdriver.Chrome
) -> None:
    answer = requests.get(f"{portal_server.url}/ingen-sadan/", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"

    browser.get(f"{portal_server.url}/ingen-sadan/")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Organisationen finns inte" in text
    assert "No such organisation" in text
    assert "ingen-sadan" in text and "Not Found" not in text
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul a")]
    assert school.name in links
    browser.save_screenshot(str(SCREENSHOTS / "portal-unknown-organisation.png"))
