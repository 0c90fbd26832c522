"""The listener and the admin app as deployed behind nginx (``deploy/nginx/skolsynk.conf``,
Debian's nginx): only Graph's and the load balancer's paths of the listener are public,
``/metrics`` only on its own address, slow clients do not delay valid notifications, and the
admin app is served over HTTPS on its own host, knowing it is."""

from __future__ import annotations

import functools
import http.client
import re
import shutil
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests

from common.config import Secret
from common.state.subscriptions import SubscriptionStore
from sandbox.graph.ca import CA_FILE, ensure_trust
from tests.conftest import ROOT
from tests.fixtures.engine import environment
from tests.fixtures.processes import ServiceProcess, free_port
from tests.listener.conftest import PUBLIC_URL, SECRET_KEY, Registered, register
from tests.listener.graph_payloads import change, collection

pytestmark = pytest.mark.slow

SITE = ROOT / "deploy" / "nginx" / "skolsynk.conf"
SLOW_CLIENTS = 20
VALID_NOTIFICATIONS = 20
DEADLINE_SECONDS = 1.0
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Deployed:
    public: str
    metrics: str
    ca: Path
    subs: Registered

    def session(self) -> requests.Session:
        """A session trusting the test CA on every request (``REQUESTS_CA_BUNDLE`` in the
        environment would otherwise win over ``Session.verify``)."""
        session = requests.Session()
        session.request = functools.partial(session.request, verify=str(self.ca))  # type: ignore[method-assign]
        return session


@dataclass(frozen=True)
class Ports:
    """Where this test's nginx listens and where it finds the apps."""

    public: int = field(default_factory=free_port)
    plain: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    listener: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)


def nginx_config(workdir: Path, ports: Ports) -> Path:
    """The shipped site file, pointed at this test's ports and certificate, in a main config
    that keeps nginx's files in ``workdir`` (no root needed)."""
    trust = ensure_trust(workdir / "tls", "127.0.0.1")
    site = SITE.read_text()
    for default in ("", " default_server"):
        site = site.replace(f"listen 443 ssl{default};", f"listen 127.0.0.1:{ports.public} ssl;")
        site = site.replace(f"listen [::]:443 ssl{default};", "")
    site = (
        site.replace("listen 80;", f"listen 127.0.0.1:{ports.plain};")
        .replace("listen [::]:80;", "")
        .replace("127.0.0.1:8000", f"127.0.0.1:{ports.listener}")
        .replace("127.0.0.1:8100", f"127.0.0.1:{ports.admin}")
        .replace("127.0.0.1:9464", f"127.0.0.1:{ports.metrics}")
    )
    for prefix in ("", "admin-"):
        site = site.replace(
            f"/etc/skolsynk/tls/{prefix}fullchain.pem", str(trust.server_cert_path)
        ).replace(f"/etc/skolsynk/tls/{prefix}privkey.pem", str(trust.server_key_path))
    # (a port of this test's may begin with 443: only the shipped port on its own counts)
    assert not re.search(r"\b443\b", site) and "/etc/skolsynk" not in site, (
        "a line the test did not adapt"
    )
    (workdir / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {name}_temp_path {workdir / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = workdir / "nginx.conf"
    main.write_text(
        f"""worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    include {workdir / "site.conf"};
}}
"""
    )
    return main


def start_nginx(workdir: Path, ports: Ports) -> ServiceProcess:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (Debian: apt-get install nginx)")
    conf = nginx_config(workdir, ports)
    return ServiceProcess(
        [
            *(nginx, "-e", str(workdir / "error.log"), "-p", str(workdir)),
            *("-c", str(conf), "-g", "daemon off;"),
        ],
        log_path=workdir / "nginx.out",
    ).start()


@pytest.fixture
def deployed(redis_url: str, tmp_path: Path) -> Iterator[Deployed]:
    ports = Ports()
    upstream, public, metrics = ports.listener, ports.public, ports.metrics
    client = redis.Redis.from_url(redis_url)
    subs = register(SubscriptionStore(client, Secret(SECRET_KEY)))
    client.close()
    listener = ServiceProcess(
        [
            *(sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"),
            *("--bind", f"127.0.0.1:{upstream}", "listener.app:create_app()"),
        ],
        log_path=tmp_path / "gunicorn.log",
        env={
            "REDIS_URL": redis_url,
            "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-00000000c11e",
            "SKOLSYNK_CLIENT_SECRET": "not-used-by-the-listener",
            "SKOLSYNK_SECRET_KEY": SECRET_KEY,
            "SKOLSYNK_PUBLIC_URL": PUBLIC_URL,
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        cwd=ROOT,
    ).start()
    proxy = start_nginx(tmp_path, ports)
    ca = tmp_path / "tls" / CA_FILE
    deployed = Deployed(f"https://127.0.0.1:{public}", f"http://127.0.0.1:{metrics}", ca, subs)
    try:
        listener.wait_ready(
            lambda: requests.get(f"http://127.0.0.1:{upstream}/healthz", timeout=1).ok
        )
        proxy.wait_ready(
            lambda: requests.get(deployed.public + "/healthz", verify=ca, timeout=1).ok
        )
        yield deployed
    finally:
        proxy.stop()
        listener.stop()


def test_only_graphs_and_the_load_balancers_paths_are_public(deployed: Deployed) -> None:
    public = deployed.session()
    base = deployed.public
    handshake = public.post(base + "/graph/notifications?validationToken=hello", timeout=5)
    assert (handshake.status_code, handshake.text) == (200, "hello")
    item = collection(change(deployed.subs.users, "3f2504e0-4f89-41d3-9a0c-0305e82c3301"))
    assert public.post(base + "/graph/notifications", json=item, timeout=5).status_code == 202
    assert public.get(base + "/healthz", timeout=5).status_code == 200
    assert public.get(base + "/readyz", timeout=5).status_code == 200
    for path in ("/metrics", "/", "/graph/other", "/healthz/../metrics"):
        assert public.get(base + path, timeout=5).status_code == 404, path
    assert public.get(base + "/graph/notifications", timeout=5).status_code == 403
    too_big = b'{"value": [' + b" " * (2 * 1024 * 1024) + b"]}"
    headers = {"Content-Type": "application/json"}
    answer = public.post(base + "/graph/notifications", data=too_big, headers=headers, timeout=10)
    assert answer.status_code == 413

    scraped = requests.get(deployed.metrics + "/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "skolsynk_notifications_accepted_total" in scraped.text


def _slow_client(base: str, ca: Path, stop: threading.Event, sent: list[int]) -> None:
    """Opens a TLS connection and sends a request's headers a few bytes at a time."""
    host, port = base.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            head = b"POST /graph/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: app"
            for i in range(len(head)):
                if stop.is_set():
                    return
                sock.sendall(head[i : i + 1])
                sent.append(1)
                stop.wait(0.3)
    except OSError:
        return  # nginx gave up on it: what it should do


def test_20_slow_clients_do_not_delay_valid_notifications_beyond_a_second(
    deployed: Deployed,
) -> None:
    stop = threading.Event()
    sent: list[int] = []
    slow = [
        threading.Thread(target=_slow_client, args=(deployed.public, deployed.ca, stop, sent))
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in slow:
        thread.start()
    try:
        while len(sent) < SLOW_CLIENTS * 2:  # every slow client is connected and sending
            time.sleep(0.05)
        session = deployed.session()
        seconds = []
        for i in range(VALID_NOTIFICATIONS):
            item = collection(change(deployed.subs.users, f"{i:08d}-0000-4000-8000-000000000000"))
            started = time.monotonic()
            answer = session.post(deployed.public + "/graph/notifications", json=item, timeout=5)
            seconds.append(time.monotonic() - started)
            assert answer.status_code == 202
        assert max(seconds) < DEADLINE_SECONDS, seconds
    finally:
        stop.set()
        for thread in slow:
            thread.join()


# --- the admin web app behind the same nginx --------------------------------------------------

ADMIN_HOST = "admin.skolsynk.example"


@dataclass(frozen=True)
class DeployedAdmin:
    ports: Ports
    ca: Path

    @property
    def origin(self) -> str:
        """The admin app's public origin, as a browser writes it."""
        return f"https://{ADMIN_HOST}:{self.ports.public}"

    def session(self) -> requests.Session:
        """Speaks to nginx on loopback, naming the admin app's host (no DNS needed)."""
        session = requests.Session()
        session.trust_env = False
        session.headers["Host"] = f"{ADMIN_HOST}:{self.ports.public}"
        session.request = functools.partial(session.request, verify=str(self.ca))  # type: ignore[method-assign]
        return session

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.ports.public}{path}"


@pytest.fixture
def deployed_admin(graph_sandbox: Any, redis_url: str, tmp_path: Path) -> Iterator[DeployedAdmin]:
    ports = Ports()
    deployed = DeployedAdmin(ports, tmp_path / "tls" / CA_FILE)
    admin = ServiceProcess(
        [
            *(sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"),
            *("--bind", f"127.0.0.1:{ports.admin}", "admin.app:create_app()"),
        ],
        log_path=tmp_path / "admin.log",
        env={
            **environment(graph_sandbox.info, redis_url),
            "SKOLSYNK_ADMIN_URL": deployed.origin,
            "WEB_CONCURRENCY": "2",
        },
        cwd=ROOT,
    ).start()
    proxy = start_nginx(tmp_path, ports)
    try:
        admin.wait_ready(
            lambda: requests.get(f"http://127.0.0.1:{ports.admin}/", timeout=1).ok, timeout=60
        )
        proxy.wait_ready(lambda: deployed.session().get(deployed.url("/"), timeout=1).ok)
        yield deployed
    finally:
        proxy.stop()
        admin.stop()
    log = admin.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def _direct_get(port: str | int, path: str, *, source: str, headers: dict[str, str]) -> Any:
    """A GET straight to gunicorn from ``source`` (another loopback address than nginx's)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(port), source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer
    finally:
        connection.close()


def test_the_admin_app_is_served_over_https_through_the_shipped_nginx(
    deployed_admin: DeployedAdmin,
) -> None:
    browser = deployed_admin.session()
    first = browser.get(deployed_admin.url("/"), timeout=10)
    assert first.status_code == 200
    assert "Logga in med Microsoft" in first.text
    assert first.headers["Strict-Transport-Security"].startswith("max-age=")
    assert first.headers["X-Frame-Options"] == "DENY"
    session_cookie = next(c for c in browser.cookies if c.name == "skolsynk_admin")
    assert session_cookie.secure

    # the app learns from nginx that the request came over HTTPS: the CSRF check compares the
    # Referer with the https origin (a form posted from elsewhere is refused), the sign-in
    # sends Microsoft back to an https address of the public host, cookies are Secure
    token = CSRF_FIELD.search(first.text)
    assert token is not None
    foreign = browser.post(
        deployed_admin.url("/login"),
        data={"csrf_token": token.group(1)},
        headers={"Referer": "https://elsewhere.example/"},
        allow_redirects=False,
        timeout=10,
    )
    assert foreign.status_code == 400
    assert "inget sparades" in foreign.text
    signin = browser.post(
        deployed_admin.url("/login"),
        data={"csrf_token": token.group(1)},
        headers={"Referer": deployed_admin.origin + "/"},
        allow_redirects=False,
        timeout=10,
    )
    assert signin.status_code in (302, 303), signin.text[:300]
    asked = parse_qs(urlsplit(signin.headers["Location"]).query)
    assert asked["redirect_uri"] == [deployed_admin.origin + "/auth/callback"]
    language = browser.get(deployed_admin.url("/lang/en?next=/"), allow_redirects=False, timeout=10)
    assert "secure" in language.headers["Set-Cookie"].lower()
    assert language.headers["Location"] == "/"

    # plain http is sent to https; other hosts reach the listener's block, not the admin app
    plain = requests.get(
        f"http://127.0.0.1:{deployed_admin.ports.plain}/skola/x/",
        headers={"Host": ADMIN_HOST},
        allow_redirects=False,
        timeout=10,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{ADMIN_HOST}/skola/x/"
    other = requests.get(deployed_admin.url("/"), verify=str(deployed_admin.ca), timeout=10)
    assert other.status_code == 404

    # X-Forwarded-Proto is believed from the proxy only: sent by anyone else, it is ignored
    forged = _direct_get(
        deployed_admin.ports.admin,
        "/lang/en?next=/",
        source="127.0.0.2",
        headers={"X-Forwarded-Proto": "https", "Host": ADMIN_HOST},
    )
    assert forged.status == 303
    assert "secure" not in (forged.getheader("Set-Cookie") or "").lower()
