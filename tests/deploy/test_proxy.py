"""The listener as deployed behind nginx (``deploy/nginx/skolsynk.conf``, Debian's nginx): only
Graph's and the load balancer's paths are public, ``/metrics`` only on its own address, and slow
clients do not delay valid notifications."""

from __future__ import annotations

import functools
import shutil
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from common.config import Secret
from common.state.subscriptions import SubscriptionStore
from sandbox.graph.ca import CA_FILE, ensure_trust
from tests.conftest import ROOT
from tests.fixtures.processes import ServiceProcess, free_port
from tests.listener.conftest import PUBLIC_URL, SECRET_KEY, Registered, register
from tests.listener.graph_payloads import change, collection

pytestmark = pytest.mark.slow

SITE = ROOT / "deploy" / "nginx" / "skolsynk.conf"
SLOW_CLIENTS = 20
VALID_NOTIFICATIONS = 20
DEADLINE_SECONDS = 1.0


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


def nginx_config(workdir: Path, *, public: int, metrics: int, upstream: int) -> Path:
    """The shipped site file, pointed at this test's ports and certificate, in a main config
    that keeps nginx's files in ``workdir`` (no root needed)."""
    trust = ensure_trust(workdir / "tls", "127.0.0.1")
    site = (
        SITE.read_text()
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{public} ssl;")
        .replace("listen [::]:443 ssl;", "")
        .replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
        .replace("127.0.0.1:9464", f"127.0.0.1:{metrics}")
        .replace("/etc/skolsynk/tls/fullchain.pem", str(trust.server_cert_path))
        .replace("/etc/skolsynk/tls/privkey.pem", str(trust.server_key_path))
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


@pytest.fixture
def deployed(redis_url: str, tmp_path: Path) -> Iterator[Deployed]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (Debian: apt-get install nginx)")
    upstream, public, metrics = free_port(), free_port(), free_port()
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
    conf = nginx_config(tmp_path, public=public, metrics=metrics, upstream=upstream)
    proxy = ServiceProcess(
        [
            *(nginx, "-e", str(tmp_path / "error.log"), "-p", str(tmp_path)),
            *("-c", str(conf), "-g", "daemon off;"),
        ],
        log_path=tmp_path / "nginx.out",
    ).start()
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
