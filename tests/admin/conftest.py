"""The admin app as a real process (gunicorn, two workers) against the sandbox tenant, the
reference portal and a private Redis, and helpers to act in it as a person would.

Until the sandbox signs people in, ``signed_in`` makes the session cookie a finished sign-in
would have made (signed with the app's key, as only the app can): the access tests ask what an
administrator of one school can reach, which does not depend on how the cookie was earned.
"""

from __future__ import annotations

import re
import sys
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


@pytest.fixture(scope="module")
def admin_server(
    graph_sandbox: Any, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **environment(graph_sandbox.info, f"{redis_server.url[:-2]}/{ADMIN_REDIS_DB}"),
        "SKOLSYNK_ADMIN_URL": url,
        "SKOLSYNK_OPERATORS": OPERATOR,
        "SKOLSYNK_PUBLIC_URL": "http://127.0.0.1:9/",
        "SKOLSYNK_LOG_FORMAT": "text",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
    }
    log = tmp_path_factory.mktemp("admin") / "admin.log"
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
        log_path=log,
        env=env,
        cwd=ROOT,
    ).start()
    process.wait_ready(lambda: requests.get(url + "/", timeout=2).status_code == 200, timeout=60)
    config = load_config(env)
    app = create_app(config)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    server = AdminServer(
        url, env, process, build_services(config, retry_policy=FAST_RETRIES), serializer
    )
    yield server
    process.stop()
    for session in server.sessions:
        session.close()
    server.services.redis.close()


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
    "text_of",
    "wait_for",
]
