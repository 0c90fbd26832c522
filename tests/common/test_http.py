"""The one retry layer (``common.http.Transport``) against a real HTTP server answering a script."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
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
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from common.errors import GraphUnavailable, PortalUnavailable, Throttled
from common.http import RetryPolicy, Transport, build_session, retry_after_seconds
from tests.fixtures.processes import free_port

Step = tuple[int, dict[str, str], bytes]


class ScriptedServer:
    """Answers each request with the next scripted step (then 200 ``{}``), on pytest-httpserver."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.httpserver = httpserver
        self.script: list[Step] = []
        self.delay_seconds = 0.0
        self._busy = 0
        self._quiet = threading.Condition()
        self.url = httpserver.url_for("").rstrip("/")
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        if self.delay_seconds:
            # a client that timed out has left; answer anyway, and let the test end after
            with self._quiet:
                self._busy += 1
            threading.Event().wait(self.delay_seconds)
            with self._quiet:
                self._busy -= 1
                self._quiet.notify_all()
        status, headers, body = self.script.pop(0) if self.script else (200, {}, b"{}")
        return Response(body, status=status, headers=headers)

    def wait_quiet(self, timeout: float) -> bool:
        with self._quiet:
            return self._quiet.wait_for(lambda: self._busy == 0, timeout)

    @property
    def seen(self) -> list[str]:
        return [request.path for request, _ in self.httpserver.log]


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(httpserver)
    yield scripted
    # the server outlives the test: no late request may reach the next test's script
    assert scripted.wait_quiet(5)


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
    with pytest.raises(GraphUnavailable, match="with 502 after 4 attempts"):
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
    with pytest.raises(GraphUnavailable, match=r"could not be reached for GET .* after 4 attempts"):
        transport(sleep=sleep, observed=observed).request("GET", f"http://127.0.0.1:{port}/")
    assert observed == [0, 0, 0, 0]
    assert len(sleep.waits) == 3


def test_read_timeout_counts_as_unavailable(server: ScriptedServer) -> None:
    server.delay_seconds = 0.5
    quick = Transport(
        build_session(timeout=(2.0, 0.1)),
        service="the portal",
        unavailable=PortalUnavailable,
        policy=RetryPolicy(attempts=1),
        sleep=SleepLog(),
    )
    with pytest.raises(PortalUnavailable, match="ReadTimeout"):
        quick.request("GET", server.url + "/slow")


def test_retry_after_seconds_ignores_garbage() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = "soon"
    assert retry_after_seconds(response) is None


# --- writes: a request that may have been carried out is never sent again blindly ------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_post_answered_5xx_is_not_sent_again_and_may_have_been_written(
    server: ScriptedServer, status: int
) -> None:
    server.script = [(status, {}, b"")]
    sleep = SleepLog()
    with pytest.raises(GraphUnavailable, match="may have been applied") as caught:
        transport(sleep=sleep).request("POST", server.url + "/Users", json={"userName": "a"})
    assert caught.value.maybe_applied
    assert len(server.seen) == 1
    assert sleep.waits == []


def test_a_post_that_timed_out_is_not_sent_again_and_may_have_been_written(
    server: ScriptedServer,
) -> None:
    server.delay_seconds = 0.5
    quick = Transport(
        build_session(timeout=(2.0, 0.1)),
        service="the portal",
        unavailable=PortalUnavailable,
        policy=RetryPolicy(attempts=4),
        sleep=SleepLog(),
    )
    with pytest.raises(PortalUnavailable, match="ReadTimeout") as caught:
        quick.request("POST", server.url + "/Groups", json={"displayName": "7A"})
    assert caught.value.maybe_applied
    assert server.wait_quiet(5)  # the server logs a request once it has answered it
    assert len(server.seen) == 1


def test_a_post_answered_429_was_not_carried_out_and_is_retried(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "1"}, b"")]
    response = transport().request("POST", server.url + "/Users", json={})
    assert response.status_code == 200
    assert len(server.seen) == 2


def test_a_post_whose_connection_was_refused_was_never_sent_and_is_retried() -> None:
    port = free_port()  # nothing listens there
    sleep = SleepLog()
    with pytest.raises(GraphUnavailable, match="after 4 attempts") as caught:
        transport(sleep=sleep).request("POST", f"http://127.0.0.1:{port}/Users", json={})
    assert not caught.value.maybe_applied
    assert len(sleep.waits) == 3


def test_a_post_the_caller_calls_idempotent_is_retried_like_a_read(server: ScriptedServer) -> None:
    server.script = [(503, {}, b""), (500, {}, b"")]
    response = transport().request("POST", server.url + "/$batch", json={}, idempotent=True)
    assert response.status_code == 200
    assert len(server.seen) == 3


def test_a_patch_is_not_retried_unless_declared_idempotent(server: ScriptedServer) -> None:
    server.script = [(500, {}, b"")]
    with pytest.raises(GraphUnavailable):
        transport().request("PATCH", server.url + "/Users/1", json={})
    assert len(server.seen) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_methods_are_retried_after_5xx(server: ScriptedServer, method: str) -> None:
    server.script = [(503, {}, b"")]
    assert transport().request(method, server.url + "/Users/1").status_code == 200
    assert len(server.seen) == 2


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
    tls_server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    tls_server.expect_request("/").respond_with_json({})
    tls_server.start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
        monkeypatch.setenv("CURL_CA_BUNDLE", requests.certs.where())
        plain = requests.Session()
        plain.verify = str(ca)
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(tls_server.url_for("/"), timeout=2)
        verifying = build_session(ca_bundle=ca)
        assert verifying.get(tls_server.url_for("/")).status_code == 200
    finally:
        tls_server.clear()
        if tls_server.is_running():
            tls_server.stop()
