"""The one retry layer (``common.http.Transport``) against a real HTTP server answering a script."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.errors import GraphUnavailable, PortalUnavailable, Throttled
from common.http import RetryPolicy, Transport, build_session, retry_after_seconds
from tests.fixtures.processes import free_port

Step = tuple[int, dict[str, str], bytes]


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that timed out and left is what some tests want


class ScriptedServer:
    """Answers each request with the next scripted step (then 200 ``{}``) and records paths."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.script: list[Step] = []
        self.seen: list[str] = []
        self.delay_seconds = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(self.path)
                if server.delay_seconds:
                    threading.Event().wait(server.delay_seconds)
                status, headers, body = server.script.pop(0) if server.script else (200, {}, b"{}")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET
            do_PATCH = do_GET

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


class SleepLog:
    """Records the waits the transport asks for instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def transport(
    *,
    policy: RetryPolicy | None = None,
    sleep: SleepLog | None = None,
    observed: list[int] | None = None,
) -> Transport:
    def observe(method: str, status: int, seconds: float) -> None:
        if observed is not None:
            observed.append(status)

    return Transport(
        build_session(timeout=(2.0, 2.0)),
        service="the test service",
        unavailable=GraphUnavailable,
        policy=policy or RetryPolicy(attempts=4, base_delay_seconds=0.5, max_delay_seconds=4.0),
        on_response=observe,
        sleep=sleep or SleepLog(),
    )


def test_waits_exactly_retry_after_on_429_then_returns_the_answer(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "7"}, b""), (429, {"Retry-After": "2"}, b"")]
    sleep = SleepLog()
    response = transport(sleep=sleep).request("GET", server.url + "/users")
    assert response.status_code == 200
    assert sleep.waits == [7.0, 2.0]
    assert len(server.seen) == 3


def test_reads_retry_after_given_as_an_http_date(server: ScriptedServer) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    server.script = [(429, {"Retry-After": format_datetime(later, usegmt=True)}, b"")]
    sleep = SleepLog()
    transport(sleep=sleep).request("GET", server.url + "/users")
    assert len(sleep.waits) == 1
    assert 27.0 <= sleep.waits[0] <= 30.0


def test_backs_off_with_capped_jitter_when_429_has_no_retry_after(server: ScriptedServer) -> None:
    server.script = [(429, {}, b"")] * 3
    sleep = SleepLog()
    policy = RetryPolicy(attempts=4, base_delay_seconds=1.0, max_delay_seconds=3.0)
    transport(policy=policy, sleep=sleep).request("GET", server.url + "/users")
    ceilings = [1.0, 2.0, 3.0]  # base * 2^(n-1), capped at max_delay_seconds
    assert len(sleep.waits) == 3
    assert all(0.0 <= w <= c for w, c in zip(sleep.waits, ceilings, strict=True))


def test_raises_throttled_when_429_outlasts_the_attempts(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "1"}, b"")] * 4
    with pytest.raises(Throttled) as caught:
        transport().request("GET", server.url + "/users")
    assert caught.value.retry_after == 1.0
    assert len(server.seen) == 4


def test_does_not_sleep_through_a_retry_after_beyond_the_policy(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "900"}, b"")]
    sleep = SleepLog()
    with pytest.raises(Throttled) as caught:
        transport(sleep=sleep).request("GET", server.url + "/users")
    assert caught.value.retry_after == 900.0
    assert sleep.waits == []
    assert len(server.seen) == 1


def test_retries_5xx_and_returns_the_first_success(server: ScriptedServer) -> None:
    server.script = [(503, {}, b""), (500, {}, b"")]
    observed: list[int] = []
    response = transport(observed=observed).request("GET", server.url + "/groups")
    assert response.status_code == 200
    assert observed == [503, 500, 200]


def test_5xx_beyond_the_attempts_raises_the_services_unavailable_error(
    server: ScriptedServer,
) -> None:
    server.script = [(502, {}, b"")] * 4
    with pytest.raises(GraphUnavailable, match="answered 502 after 4 attempts"):
        transport().request("GET", server.url + "/groups")
    assert len(server.seen) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412])
def test_never_retries_a_4xx_other_than_429(server: ScriptedServer, status: int) -> None:
    server.script = [(status, {}, json.dumps({"error": {"code": "x"}}).encode())]
    sleep = SleepLog()
    response = transport(sleep=sleep).request("GET", server.url + "/users/1")
    assert response.status_code == status
    assert len(server.seen) == 1
    assert sleep.waits == []


def test_connection_refused_retries_then_raises_unavailable() -> None:
    port = free_port()  # nothing listens there
    sleep = SleepLog()
    observed: list[int] = []
    with pytest.raises(GraphUnavailable, match="could not be reached after 4 attempts"):
        transport(sleep=sleep, observed=observed).request("GET", f"http://127.0.0.1:{port}/")
    assert observed == [0, 0, 0, 0]
    assert len(sleep.waits) == 3


def _impatient(attempts: int) -> Transport:
    """A portal transport that gives up reading after 0.1 s."""
    return Transport(
        build_session(timeout=(2.0, 0.1)),
        service="the portal",
        unavailable=PortalUnavailable,
        policy=RetryPolicy(attempts=attempts),
        sleep=SleepLog(),
    )


def test_read_timeout_counts_as_unavailable(server: ScriptedServer) -> None:
    server.delay_seconds = 0.5
    with pytest.raises(PortalUnavailable, match="ReadTimeout"):
        _impatient(2).request("GET", server.url + "/slow")


# --- writes that are not idempotent are never sent twice blindly ------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_create_answered_5xx_is_not_sent_again(server: ScriptedServer, status: int) -> None:
    server.script = [(status, {}, b"")]
    with pytest.raises(GraphUnavailable, match="may have been applied") as caught:
        transport().request("POST", server.url + "/Users", json={"userName": "a"})
    assert caught.value.maybe_applied
    assert len(server.seen) == 1


def test_a_create_whose_answer_timed_out_is_not_sent_again(server: ScriptedServer) -> None:
    server.delay_seconds = 0.5
    with pytest.raises(PortalUnavailable, match="ReadTimeout") as caught:
        _impatient(4).request("POST", server.url + "/Groups", json={})
    assert caught.value.maybe_applied
    assert len(server.seen) == 1


def test_a_create_refused_with_429_is_sent_again(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "1"}, b"")]
    response = transport().request("POST", server.url + "/Users", json={})
    assert response.status_code == 200
    assert len(server.seen) == 2


def test_a_create_that_could_not_connect_is_sent_again() -> None:
    port = free_port()  # nothing listens there: nothing was sent
    sleep = SleepLog()
    with pytest.raises(GraphUnavailable, match="could not be reached after 4 attempts") as caught:
        transport(sleep=sleep).request("POST", f"http://127.0.0.1:{port}/Users", json={})
    assert not caught.value.maybe_applied
    assert len(sleep.waits) == 3


def test_a_write_declared_idempotent_is_retried_after_5xx(server: ScriptedServer) -> None:
    server.script = [(503, {}, b""), (500, {}, b"")]
    response = transport().request("POST", server.url + "/$batch", json={}, idempotent=True)
    assert response.status_code == 200
    assert len(server.seen) == 3


def test_a_patch_is_not_retried_unless_declared_idempotent(server: ScriptedServer) -> None:
    server.script = [(500, {}, b"")]
    with pytest.raises(GraphUnavailable):
        transport().request("PATCH", server.url + "/Users/1", json={})
    assert len(server.seen) == 1


def test_retry_after_seconds_ignores_garbage() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = "soon"
    assert retry_after_seconds(response) is None


# --- TLS: the session's CA bundle survives REQUESTS_CA_BUNDLE (DESIGN §4.11) ------------------


def _self_signed(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def test_session_ca_bundle_wins_over_requests_ca_bundle_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, context = _self_signed(tmp_path)
    tls_server = ScriptedServer(tls=context)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
        monkeypatch.setenv("CURL_CA_BUNDLE", requests.certs.where())
        plain = requests.Session()
        plain.verify = str(ca)
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(tls_server.url + "/", timeout=2)
        verifying = build_session(ca_bundle=ca)
        assert verifying.get(tls_server.url + "/").status_code == 200
    finally:
        tls_server.stop()
