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


def small_school_tenant(graph_sandbox: Any) -> tuple[dict[str, Any], Any]:
    """A new sandbox tenant loaded from Microsoft's smallest classic SDS sample: what the
    sandbox said of it (id, name, domain, administrator) and a Graph client of it."""
    from tests.fixtures.graph import GraphClient

    created = graph_sandbox.admin(
        "POST",
        "/tenants",
        json={"load": [{"format": "sds-classic", "path": str(SDS_SAMPLES / "classic-min")}]},
    ).json()
    return created, GraphClient(graph_sandbox, created["id"], created["domain"])


@pytest.fixture(scope="module")
def operator_login(graph_sandbox: Any) -> str:
    """A person of the portal's operations team: a User Administrator of a tenant of its own
    (no school of theirs is connected, and they are no Global Administrator anywhere)."""
    _, graph = small_school_tenant(graph_sandbox)
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


#: form controls without an accessible name
UNNAMED_CONTROLS = """
return Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button'))
  .filter(e => {
    if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return false;
    if (e.tagName === 'BUTTON') return !e.textContent.trim();
    return !(e.labels && e.labels.length && Array.from(e.labels).some(l => l.textContent.trim()));
  })
  .map(e => e.name || e.id || e.outerHTML.slice(0, 80));
"""

#: WCAG 2's contrast ratio of computed colours, a colour's background found by walking up to
#: the first opaque ancestor (semi-transparent layers blended on the way); the page is white
CONTRAST = """
function rgba(text) {
  const m = /rgba?\\(([^)]+)\\)/.exec(text || '');
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function luminance(c) {
  const f = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function ratio(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((m, n) => n - m);
  return (x + 0.05) / (y + 0.05);
}
function over(top, base) { return base.map((v, i) => top[i] * top[3] + v * (1 - top[3])); }
function background(element) {
  const layers = [];
  for (let n = element; n; n = n.parentElement) {
    const c = rgba(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  return layers.reverse().reduce((base, layer) => over(layer, base), [255, 255, 255]);
}
"""

LOW_CONTRAST = """
const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TITLE', 'OPTION', 'PROGRESS']);
const found = [];
for (const e of document.body.querySelectorAll('*')) {
  if (skip.has(e.tagName)) continue;
  const words = Array.from(e.childNodes).filter(n => n.nodeType === 3 && n.textContent.trim());
  if (!words.length) continue;
  const style = getComputedStyle(e);
  const box = e.getBoundingClientRect();
  if (style.visibility === 'hidden' || box.width <= 1 || box.height <= 1) continue;
  if (box.right <= 0) continue;  // moved out of sight (the skip link until it has the focus)
  const back = background(e);
  const ink = over(rgba(style.color), back);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
  const got = ratio(ink, back);
  if (got < (large ? 3 : 4.5)) {
    found.push({text: words[0].textContent.trim().slice(0, 40), ratio: got.toFixed(2),
                color: style.color, background: 'rgb(' + back.map(Math.round) + ')'});
  }
}
return found;
"""

FOCUSED = """
const e = document.activeElement;
const style = getComputedStyle(e);
const ring = rgba(style.outlineColor);
const width = style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth);
const around = background(e.parentElement || e);
return {name: e.id || e.name || e.textContent.trim().slice(0, 30), tag: e.tagName,
        ring: width, ringContrast: ring ? ratio(over(ring, around), around) : 0};
"""


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
            assert not self.low_contrast(), f"{name} at {width} px: {self.low_contrast()}"
            # the whole page at this width, laid out as a window this tall would show it
            # (capturing beyond the viewport lays the page out without the scroll bar but
            # cuts the picture at the width with it, losing the right edge)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            try:
                shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            finally:
                self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            (SHOTS / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
        self.driver.set_window_size(WIDTHS[0], 900)

    def unlabelled(self) -> list[str]:
        """Form controls a screen reader could not name: a field with no label, aria-label or
        aria-labelledby, a button with no words."""
        found: list[str] = self.driver.execute_script(UNNAMED_CONTROLS)
        return found

    def low_contrast(self) -> list[dict[str, Any]]:
        """Visible text whose colour on its background is below WCAG AA (4.5:1, large text
        3:1), as the page's stylesheet renders it."""
        found: list[dict[str, Any]] = self.driver.execute_script(CONTRAST + LOW_CONTRAST)
        return found

    def focus(self) -> dict[str, Any]:
        """The focused element: its id, text, and how its focus ring stands out (3:1 needed
        against what surrounds it)."""
        found: dict[str, Any] = self.driver.execute_script(CONTRAST + FOCUSED)
        return found

    def tab_to(self, css: str, *, limit: int = 80) -> list[dict[str, Any]]:
        """Press Tab until the element ``css`` has the focus; returns every stop on the way.
        Fails when it is not reached within ``limit`` presses."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        stops = []
        for _ in range(limit):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            stop = self.focus()
            stops.append(stop)
            if self.driver.execute_script(
                "return document.activeElement.matches(arguments[0])", css
            ):
                return stops
        raise AssertionError(f"Tab never reached {css}; it went {[s['name'] for s in stops]}")

    def press(self, key: str) -> None:
        """Press one key (``Keys.ENTER``, ``Keys.SPACE``) on whatever has the focus."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(key).perform()

    def type_here(self, text: str) -> None:
        """Type into the focused field, as a person at the keyboard does."""
        self.press(text)

    def page_is_narrow_enough(self) -> bool:
        """Nothing sticks out sideways at the current width (360 px must work)."""
        # the page's own width, without a scroll bar (``innerWidth`` counts the bar, so a page
        # that ran under it passed)
        width, room = self.driver.execute_script(
            "var d = document.documentElement; return [d.scrollWidth, d.clientWidth]"
        )
        return bool(width <= room)


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
