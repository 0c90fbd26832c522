"""The admin app as a real process (gunicorn, two workers) against the sandbox tenant, the
reference portal and a private Redis, and helpers to act in it as a person would.

Until the sandbox signs people in, ``signed_in`` makes the session cookie a finished sign-in
would have made (signed with the app's key, as only the app can): the access tests ask what an
administrator of one school can reach, which does not depend on how the cookie was earned.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from admin.app import create_app
from admin.identity import Person
from common.config import Secret, load_config
from common.state.registry import PortalEnvironment, Tenant
from common.sync.services import Services, build_services
from tests.conftest import ROOT, SDS_SAMPLES
from tests.fixtures.browser import chromium
from tests.fixtures.engine import FAST_RETRIES, environment
from tests.fixtures.processes import ServiceProcess, free_port, wait_until

#: a database of its own: the per-test ``redis_url`` fixture empties database 0
ADMIN_REDIS_DB = 3
OPERATOR = "drift@portal.example"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class AdminServer:
    """``gunicorn 'admin.app:create_app()'`` with two worker processes."""

    url: str
    env: dict[str, str]
    process: ServiceProcess
    services: Services
    serializer: Any
    sessions: list[requests.Session] = field(default_factory=list)

    def client(self, person: Person | None = None, *, language: str = "sv") -> AdminClient:
        session = requests.Session()
        session.trust_env = False
        self.sessions.append(session)
        session.cookies.set("skolsynk_lang", language, domain="127.0.0.1", path="/")
        if person is not None:
            cookie = self.serializer.dumps({"person": person.to_session(), "_permanent": True})
            session.cookies.set("skolsynk_admin", cookie, domain="127.0.0.1", path="/")
        return AdminClient(self.url, session)


@dataclass
class AdminClient:
    """A browser-like HTTP client: follows the app's forms, CSRF token included."""

    url: str
    session: requests.Session

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, allow_redirects=False, **kw)

    def csrf(self, page: str) -> str:
        found = CSRF.search(self.session.get(self.url + page, timeout=60).text)
        assert found, f"no form on {page}"
        return found.group(1)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        follow: bool = False,
    ) -> requests.Response:
        body = dict(data or {})
        if token is not None:
            body["csrf_token"] = token
        return self.session.post(
            self.url + path,
            data=body,
            timeout=120,
            allow_redirects=follow,
            headers={"Referer": self.url + path},
        )


def start_admin_server(base_env: dict[str, str], workdir: Path) -> AdminServer:
    """The admin app in gunicorn (two workers) with ``base_env`` (a Skolsynk environment)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SKOLSYNK_PUBLIC_URL": "http://127.0.0.1:9/",
        "SKOLSYNK_OPERATORS": OPERATOR,
        **base_env,
        "SKOLSYNK_ADMIN_URL": url,
        "SKOLSYNK_LOG_FORMAT": "text",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
    }
    process = ServiceProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "admin.app:create_app()",
        ],
        log_path=workdir / "admin.log",
        env=env,
        cwd=ROOT,
    ).start()
    process.wait_ready(lambda: requests.get(url + "/", timeout=2).status_code == 200, timeout=60)
    config = load_config(env)
    app = create_app(config)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return AdminServer(
        url, env, process, build_services(config, retry_policy=FAST_RETRIES), serializer
    )


def stop_admin_server(server: AdminServer) -> None:
    server.process.stop()
    for session in server.sessions:
        session.close()
    server.services.redis.close()
    log = server.process.log_path.read_text(errors="replace")
    # a page may refuse, but never fail: no stack trace, no token in the log
    assert "Traceback" not in log, log[-3000:]
    assert server.env["SKOLSYNK_CLIENT_SECRET"] not in log


@pytest.fixture(scope="module")
def operator_login(graph_sandbox: Any) -> str:
    """A person of the portal's operations team: a User Administrator of a tenant of its own
    (no school of theirs is connected, and they are no Global Administrator anywhere)."""
    from tests.fixtures.graph import GraphClient

    created = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={"load": [{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-min")}]},
    ).json()
    graph = GraphClient(graph_sandbox, created["id"], created["domain"])
    users = graph.all_pages("/users?$select=userPrincipalName")
    return next(
        str(u["userPrincipalName"])
        for u in users
        if str(u["userPrincipalName"]).startswith("anvandaradmin@")
    )


@pytest.fixture(scope="module")
def admin_server(
    graph_sandbox: Any,
    redis_server: Any,
    operator_login: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AdminServer]:
    env = {
        **environment(graph_sandbox.info, f"{redis_server.url[:-2]}/{ADMIN_REDIS_DB}"),
        "SKOLSYNK_OPERATORS": f"{OPERATOR}, {operator_login.upper()}",
    }
    server = start_admin_server(env, tmp_path_factory.mktemp("admin"))
    yield server
    stop_admin_server(server)


@pytest.fixture(scope="module")
def live_admin(
    live_stack: Any, operator_login: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminServer]:
    """The admin app on the live stack's Redis: its schools get real-time changes."""
    env = {**live_stack.env, "SKOLSYNK_OPERATORS": operator_login}
    server = start_admin_server(env, tmp_path_factory.mktemp("admin-live"))
    yield server
    stop_admin_server(server)


@dataclass
class School:
    """A school: its sandbox tenant, its portal organisation, its administrator."""

    microsoft: Any
    portal: Any
    admin: Person

    @property
    def id(self) -> str:
        return str(self.microsoft.id)


def administrator(tenant_id: str, name: str, *, global_admin: bool = True) -> Person:
    return Person(
        tenant_id=tenant_id,
        object_id=f"oid-{tenant_id[:8]}",
        name=f"Admin {name}",
        username=f"admin@{name}.example",
        operator=False,
        global_admin=global_admin,
        organisation=name,
    )


@pytest.fixture
def make_school(admin_server: AdminServer, graph_sandbox: Any, portal_server: Any) -> Any:
    """``make_school(connected=True, portal=True, sample="classic-25")``."""
    orgs: list[Any] = []

    def build(*, connected: bool = True, portal: bool = True, sample: str = "classic-25") -> School:
        fmt = "sds-classic" if sample.startswith("classic") else "sds-v2.1"
        microsoft = graph_sandbox.new_tenant(
            load=[{"format": fmt, "path": str(SDS_SAMPLES / sample)}]
        )
        org = portal_server.new_organisation()
        orgs.append(org)
        name = f"Skola {microsoft.name}"
        if connected:
            portals = {"test": PortalEnvironment(org.scim_url, Secret(org.token))} if portal else {}
            admin_server.services.registry.add(
                Tenant(id=microsoft.id, name=name, portals=portals, enabled=portal)
            )
        return School(microsoft, org, administrator(microsoft.id, name))

    yield build
    for org in orgs:
        org.close()


def wait_for(check: Any, what: str, timeout: float = 60) -> None:
    wait_until(check, timeout=timeout, interval=0.2, what=what)


def text_of(response: requests.Response) -> str:
    """The visible words of a page, for asserting on sentences."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


__all__ = [
    "OPERATOR",
    "AdminClient",
    "AdminServer",
    "Path",
    "School",
    "administrator",
    "chromium",
    "text_of",
    "wait_for",
]


# --- a real browser ----------------------------------------------------------------------------

#: where the screenshots go (looked at by a person, never committed)
SHOTS = Path("/tmp/skolsynk-admin-shots")
WIDTHS = (1280, 360)


@dataclass
class Browser:
    """Headless Chromium driven by Selenium through Debian's chromedriver."""

    driver: Any
    downloads: Path

    def open(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        # read in one script call: a page that reloads meanwhile never leaves a stale element
        text = self.driver.execute_script("return document.body ? document.body.innerText : ''")
        return " ".join(str(text).split())

    def type(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def shoot(self, name: str) -> None:
        """Full-page screenshots at every width in ``WIDTHS``."""
        import base64

        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            self.driver.set_window_size(width, 900)
            # at every width the page fits: nothing sticks out sideways (tables scroll inside)
            assert self.page_is_narrow_enough(), f"{name} is wider than {width} px"
            assert not self.unlabelled(), f"{name}: form fields without a label {self.unlabelled()}"
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            (SHOTS / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
        self.driver.set_window_size(WIDTHS[0], 900)

    def unlabelled(self) -> list[str]:
        """Form fields a screen reader could not name (no label, no aria-label)."""
        found: list[str] = self.driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'input:not([type=hidden]), select, textarea'))"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
            ".map(e => e.name || e.id)"
        )
        return found

    def page_is_narrow_enough(self) -> bool:
        """Nothing sticks out sideways at the current width (360 px must work)."""
        width = self.driver.execute_script("return document.documentElement.scrollWidth")
        inner = self.driver.execute_script("return window.innerWidth")
        return bool(width <= inner + 1)


@pytest.fixture
def browser(chromium: Any, tmp_path: Path) -> Browser:
    """The shared headless Chromium, with downloads going to a folder of the test's own."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chromium.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    # the sandbox's sign-in pages are served with its private CA, which Chromium's store does
    # not hold (the app's own server-side calls verify it with SKOLSYNK_CA_BUNDLE)
    chromium.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    return Browser(chromium, downloads)


def sign_in_with_microsoft(
    browser: Browser, server: AdminServer, graph_sandbox: Any, login: str, password: str
) -> None:
    """Forget every session, click "Logga in med Microsoft" and sign in on Microsoft's page."""
    for origin in (server.url, graph_sandbox.info["authority"]):
        browser.open(origin + "/")
        browser.driver.delete_all_cookies()
    browser.open(server.url + "/")
    browser.click("#sign-in")
    deadline = time.monotonic() + 30
    while not browser.finds("input[name=loginfmt]"):
        assert time.monotonic() < deadline, browser.text()[:500]
        time.sleep(0.2)
    browser.type("input[name=loginfmt]", login)
    browser.type("input[name=passwd]", password)
    browser.click("#idSIButton9")
    deadline = time.monotonic() + 30
    while not browser.driver.current_url.startswith(server.url):
        assert time.monotonic() < deadline, browser.text()[:500]
        time.sleep(0.2)


def browser_sign_in(browser: Browser, server: AdminServer, person: Person) -> None:
    """The session a finished sign-in leaves, in the browser's cookie jar."""
    browser.open(server.url + "/")
    cookie = server.serializer.dumps({"person": person.to_session(), "_permanent": True})
    browser.driver.add_cookie({"name": "skolsynk_admin", "value": cookie, "path": "/"})
