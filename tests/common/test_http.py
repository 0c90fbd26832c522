"""The one retry layer (``common.http.Transport``) against a real HTTP server answering a script."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
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

from common.errors import GraphUnavailable, PortalUnavailable, Throttled
from common.http import RetryPolicy, Transport, build_session, retry_after_seconds
from tests.fixtures.processes import free_port
from tests.fixtures.silent_server import SilentServer, silent_server

Step = tuple[int, dict[str, str], bytes]
OK: Step = (200, {}, b"{}")


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver, checked after the test: no request beyond the script, every step used."""
    yield httpserver
    httpserver.check()  # a request no scripted step expected fails the test here
    assert not httpserver.ordered_handlers, "the script was not used up"


def scripted(server: HTTPServer, method: str, path: str, *steps: Step) -> str:
    """The URL of ``path``, answered with ``steps`` in turn; any further request is a failure."""
    for status, headers, body in steps:
        server.expect_ordered_request(path, method=method).respond_with_data(
            body, status=status, headers=headers
        )
    return server.url_for(path)


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with silent_server() as server:
        yield server


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


def test_waits_exactly_retry_after_on_429_then_returns_the_answer(server: HTTPServer) -> None:
    url = scripted(
        server,
        "GET",
        "/users",
        (429, {"Retry-After": "7"}, b""),
        (429, {"Retry-After": "2"}, b""),
        OK,
    )
    sleep = SleepLog()
    response = transport(sleep=sleep).request("GET", url)
    assert response.status_code == 200
    assert sleep.waits == [7.0, 2.0]
    assert len(server.log) == 3


def test_reads_retry_after_given_as_an_http_date(server: HTTPServer) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    url = scripted(
        server,
        "GET",
        "/users",
        (429, {"Retry-After": format_datetime(later, usegmt=True)}, b""),
        OK,
    )
    sleep = SleepLog()
    transport(sleep=sleep).request("GET", url)
    assert len(sleep.waits) == 1
    assert 27.0 <= sleep.waits[0] <= 30.0


def test_backs_off_with_capped_jitter_when_429_has_no_retry_after(server: HTTPServer) -> None:
    url = scripted(server, "GET", "/users", *[(429, {}, b"")] * 3, OK)
    sleep = SleepLog()
    policy = RetryPolicy(attempts=4, base_delay_seconds=1.0, max_delay_seconds=3.0)
    transport(policy=policy, sleep=sleep).request("GET", url)
    ceilings = [1.0, 2.0, 3.0]  # base * 2^(n-1), capped at max_delay_seconds
    assert len(sleep.waits) == 3
    assert all(0.0 <= w <= c for w, c in zip(sleep.waits, ceilings, strict=True))


def test_raises_throttled_when_429_outlasts_the_attempts(server: HTTPServer) -> None:
    url = scripted(server, "GET", "/users", *[(429, {"Retry-After": "1"}, b"")] * 4)
    with pytest.raises(Throttled) as caught:
        transport().request("GET", url)
    assert caught.value.retry_after == 1.0
    assert len(server.log) == 4


def test_does_not_sleep_through_a_retry_after_beyond_the_policy(server: HTTPServer) -> None:
    url = scripted(server, "GET", "/users", (429, {"Retry-After": "900"}, b""))
    sleep = SleepLog()
    with pytest.raises(Throttled) as caught:
        transport(sleep=sleep).request("GET", url)
    assert caught.value.retry_after == 900.0
    assert sleep.waits == []
    assert len(server.log) == 1


def test_retries_5xx_and_returns_the_first_success(server: HTTPServer) -> None:
    url = scripted(server, "GET", "/groups", (503, {}, b""), (500, {}, b""), OK)
    observed: list[int] = []
    response = transport(observed=observed).request("GET", url)
    assert response.status_code == 200
    assert observed == [503, 500, 200]


def test_5xx_beyond_the_attempts_raises_the_services_unavailable_error(
    server: HTTPServer,
) -> None:
    url = scripted(server, "GET", "/groups", *[(502, {}, b"")] * 4)
    with pytest.raises(GraphUnavailable, match="answered 502 after 4 attempts"):
        transport().request("GET", url)
    assert len(server.log) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412])
def test_never_retries_a_4xx_other_than_429(server: HTTPServer, status: int) -> None:
    url = scripted(
        server, "GET", "/users/1", (status, {}, json.dumps({"error": {"code": "x"}}).encode())
    )
    sleep = SleepLog()
    response = transport(sleep=sleep).request("GET", url)
    assert response.status_code == status
    assert len(server.log) == 1
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


def test_read_timeout_counts_as_unavailable(silent: SilentServer) -> None:
    with pytest.raises(PortalUnavailable, match="ReadTimeout"):
        _impatient(2).request("GET", silent.url + "/slow")
    silent.wait_for_requests(2)  # a read is idempotent: the second attempt timed out too
    assert silent.request_lines == ["GET /slow HTTP/1.1"] * 2


# --- writes that are not idempotent are never sent twice blindly ------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_create_answered_5xx_is_not_sent_again(server: HTTPServer, status: int) -> None:
    url = scripted(server, "POST", "/Users", (status, {}, b""))
    with pytest.raises(GraphUnavailable, match="may have been applied") as caught:
        transport().request("POST", url, json={"userName": "a"})
    assert caught.value.maybe_applied
    assert len(server.log) == 1


def test_a_create_whose_answer_timed_out_is_not_sent_again(silent: SilentServer) -> None:
    with pytest.raises(PortalUnavailable, match="ReadTimeout") as caught:
        _impatient(4).request("POST", silent.url + "/Groups", json={})
    assert caught.value.maybe_applied
    silent.wait_for_requests(1)
    assert silent.request_lines == ["POST /Groups HTTP/1.1"]


def test_a_create_refused_with_429_is_sent_again(server: HTTPServer) -> None:
    url = scripted(server, "POST", "/Users", (429, {"Retry-After": "1"}, b""), OK)
    response = transport().request("POST", url, json={})
    assert response.status_code == 200
    assert len(server.log) == 2


def test_a_create_that_could_not_connect_is_sent_again() -> None:
    port = free_port()  # nothing listens there: nothing was sent
    sleep = SleepLog()
    with pytest.raises(GraphUnavailable, match="could not be reached after 4 attempts") as caught:
        transport(sleep=sleep).request("POST", f"http://127.0.0.1:{port}/Users", json={})
    assert not caught.value.maybe_applied
    assert len(sleep.waits) == 3


def test_a_write_declared_idempotent_is_retried_after_5xx(server: HTTPServer) -> None:
    url = scripted(server, "POST", "/$batch", (503, {}, b""), (500, {}, b""), OK)
    response = transport().request("POST", url, json={}, idempotent=True)
    assert response.status_code == 200
    assert len(server.log) == 3


def test_a_patch_is_not_retried_unless_declared_idempotent(server: HTTPServer) -> None:
    url = scripted(server, "PATCH", "/Users/1", (500, {}, b""))
    with pytest.raises(GraphUnavailable):
        transport().request("PATCH", url, json={})
    assert len(server.log) == 1


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
    # its own pytest-httpserver: the shared one speaks plain HTTP to every other test
    with HTTPServer(host="127.0.0.1", port=0, ssl_context=context) as tls_server:
        tls_server.expect_request("/").respond_with_json({})
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
        monkeypatch.setenv("CURL_CA_BUNDLE", requests.certs.where())
        plain = requests.Session()
        plain.verify = str(ca)
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(tls_server.url_for("/"), timeout=2)
        verifying = build_session(ca_bundle=ca)
        assert verifying.get(tls_server.url_for("/")).status_code == 200
        tls_server.check()
