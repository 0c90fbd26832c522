"""A real headless Chromium signs in: the portal's login page, ``/?idp=microsoft``, the
sandbox's sign-in page, back to "Mina läromedel" with the class's licence. Screenshots of each
page go to the system's temporary directory (for a person to look at; never committed)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.fixtures.graph import GraphSandbox
from tests.fixtures.portal import PortalOrg, PortalServer
from tests.sandbox.portal.bodies import create_group
from tests.sandbox.portal.test_signin import people, synced

WAIT_SECONDS = 30
SCREENSHOTS = Path(tempfile.gettempdir()) / "skolsynk-signin-screenshots"


@pytest.mark.slow
def test_chromium_signs_in_with_microsoft_and_sees_the_class_licence(
    chromium: Any,
    signin_portal: PortalServer,
    graph_sandbox: GraphSandbox,
) -> None:
    school = graph_sandbox.new_tenant(generate=60)
    org: PortalOrg = signin_portal.new_organisation()
    try:
        (student,) = people(school, "student")
        account = synced(org, student, "student")
        klass = create_group(org, "9C Chromiumskolan", [account["id"]], externalId="class-9c")
        org.assign_licence("Engelska Spotlight 9", group_id=klass["id"])
        SCREENSHOTS.mkdir(exist_ok=True)
        wait = WebDriverWait(chromium, WAIT_SECONDS)

        chromium.get(signin_portal.url + "/login")
        button = wait.until(expected_conditions.element_to_be_clickable((By.ID, "microsoft-login")))
        assert "Logga in med Microsoft" in button.text
        chromium.save_screenshot(str(SCREENSHOTS / "1-portal-login.png"))

        chromium.get(signin_portal.url + "/?idp=microsoft")
        login = wait.until(expected_conditions.visibility_of_element_located((By.NAME, "loginfmt")))
        assert chromium.current_url.startswith(graph_sandbox.info["authority"])
        chromium.save_screenshot(str(SCREENSHOTS / "2-sandbox-sign-in.png"))
        login.send_keys(student["userPrincipalName"])
        chromium.find_element(By.NAME, "passwd").send_keys("not the password")
        chromium.find_element(By.ID, "idSIButton9").click()
        error = wait.until(expected_conditions.visibility_of_element_located((By.ID, "loginError")))
        assert "incorrect" in error.text
        chromium.save_screenshot(str(SCREENSHOTS / "3-wrong-password.png"))

        password = chromium.find_element(By.NAME, "passwd")
        password.clear()
        password.send_keys(graph_sandbox.info["people_password"])
        chromium.find_element(By.ID, "idSIButton9").click()
        wait.until(expected_conditions.url_contains("/mina-laromedel"))
        table = wait.until(
            expected_conditions.visibility_of_element_located((By.ID, "my-licences"))
        )
        assert "Engelska Spotlight 9" in table.text
        assert "9C Chromiumskolan" in table.text
        assert student["displayName"] in chromium.find_element(By.TAG_NAME, "nav").text
        chromium.save_screenshot(str(SCREENSHOTS / "4-mina-laromedel.png"))

        chromium.find_element(By.ID, "logout").click()
        wait.until(expected_conditions.url_contains("/login"))
        chromium.get(signin_portal.url + "/mina-laromedel")
        assert "/login" in chromium.current_url
    finally:
        org.close()


@pytest.mark.slow
def test_chromium_teacher_gives_a_licence_to_a_class_through_the_form(
    chromium: Any, signin_portal: PortalServer, graph_sandbox: GraphSandbox
) -> None:
    school = graph_sandbox.new_tenant(generate=60)
    org: PortalOrg = signin_portal.new_organisation()
    try:
        (teacher,) = people(school, "teacher")
        (student,) = people(school, "student")
        t_account = synced(org, teacher, "teacher")
        s_account = synced(org, student, "student")
        klass = create_group(
            org, "6D Chromiumskolan", [t_account["id"], s_account["id"]], externalId="class-6d"
        )
        SCREENSHOTS.mkdir(exist_ok=True)
        wait = WebDriverWait(chromium, WAIT_SECONDS)
        chromium.get(
            signin_portal.url + "/login?idp=microsoft&login_hint=" + teacher["userPrincipalName"]
        )
        wait.until(
            expected_conditions.visibility_of_element_located((By.NAME, "passwd"))
        ).send_keys(graph_sandbox.info["people_password"])
        assert (
            chromium.find_element(By.NAME, "loginfmt").get_attribute("value")
            == teacher["userPrincipalName"]
        )
        chromium.find_element(By.ID, "idSIButton9").click()
        section = wait.until(
            expected_conditions.visibility_of_element_located(
                (By.CSS_SELECTOR, f"section.class[data-id='{klass['id']}']")
            )
        )
        Select(section.find_element(By.NAME, "product")).select_by_visible_text("Historia Impuls")
        Select(section.find_element(By.NAME, "target")).select_by_value(f"class:{klass['id']}")
        chromium.save_screenshot(str(SCREENSHOTS / "5-teacher-classes.png"))
        section.find_element(By.TAG_NAME, "button").click()
        notice = wait.until(
            expected_conditions.visibility_of_element_located((By.CLASS_NAME, "notice"))
        )
        assert "Historia Impuls" in notice.text
        chromium.save_screenshot(str(SCREENSHOTS / "6-licence-given.png"))
        assert [(lic["product"], lic["groupId"]) for lic in org.licences()] == [
            ("Historia Impuls", klass["id"])
        ]
    finally:
        org.close()
