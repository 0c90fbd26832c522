"""Bad input answers as Graph does, and nothing a client sends crashes the sandbox."""

from __future__ import annotations

import contextlib
import socket
import ssl
from urllib.parse import urlsplit

import pytest

from tests.fixtures.graph import GraphSandbox, SandboxTenant

UNKNOWN = "00000000-0000-0000-0000-0000000000ff"


def _error(response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


def test_malformed_json_is_a_400(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.post(
        "/users", data=b'{"displayName": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "BadRequest"


def test_an_unknown_property_is_a_400(graph_tenant: SandboxTenant) -> None:
    staff = graph_tenant.graph.create_staff("Otto", "Ek")
    response = graph_tenant.graph.patch(f"/users/{staff['id']}", json={"shoeSize": 44})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "Request_BadRequest"
    assert "shoeSize" in error["message"]


@pytest.mark.parametrize(
    "expression",
    [
        "displayName eq",
        "displayName eq 'unterminated",
        "startswith(displayName 'A')",
        "displayName lg 'A'",
        "(displayName eq 'A'",
        "shoeSize eq 44",
    ],
)
def test_a_bad_filter_is_a_400(graph_tenant: SandboxTenant, expression: str) -> None:
    response = graph_tenant.graph.get("/users", params={"$filter": expression})
    assert response.status_code == 400
    assert _error(response)["code"] in ("BadRequest", "Request_UnsupportedQuery")


@pytest.mark.parametrize(
    "path",
    [
        f"/users/{UNKNOWN}",
        f"/groups/{UNKNOWN}",
        f"/groups/{UNKNOWN}/members",
        f"/education/users/{UNKNOWN}",
        f"/education/classes/{UNKNOWN}",
        f"/education/schools/{UNKNOWN}",
        f"/directory/deletedItems/{UNKNOWN}",
    ],
)
def test_an_unknown_id_is_a_404_resource_not_found(graph_tenant: SandboxTenant, path: str) -> None:
    response = graph_tenant.graph.get(path)
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "Request_ResourceNotFound"
    assert UNKNOWN in error["message"]


def test_unknown_segments_and_methods_are_refused(graph_tenant: SandboxTenant) -> None:
    segment = graph_tenant.graph.get("/userz")
    assert segment.status_code == 400
    assert _error(segment)["message"] == "Resource not found for the segment 'userz'."
    method = graph_tenant.graph.request("PUT", "/users")
    assert method.status_code == 405


def test_every_response_carries_request_ids(graph_tenant: SandboxTenant) -> None:
    response = graph_tenant.graph.get("/users", headers={"client-request-id": "mine-123"})
    assert response.headers["client-request-id"] == "mine-123"
    assert response.headers["request-id"]


JUNK_BODIES = [b"", b"null", b"[]", b'{"a":', b'{"displayName": 5}', b"\xff\xfe", b'"text"']


@pytest.mark.slow
def test_junk_on_every_route_never_answers_500(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    graph = graph_tenant.graph
    staff = graph.create_staff("Junk", "Tester")
    klass = graph.create_class("Junk", school_id="S1")
    ids = [UNKNOWN, staff["id"], klass["id"], "%00", "a'b", "x" * 300]
    templates = [
        ("GET", "/users?$top=abc"),
        ("GET", "/users?$select="),
        ("GET", "/users?$skiptoken=forged"),
        ("GET", "/users?$orderby=displayName"),
        ("GET", "/groups/delta?$skiptoken=forged"),
        ("GET", "/users/delta?$select=nope"),
        ("POST", "/users"),
        ("POST", "/groups"),
        ("POST", "/subscriptions"),
        ("POST", "/$batch"),
        ("PATCH", "/users/{id}"),
        ("PATCH", "/groups/{id}"),
        ("DELETE", "/users/{id}"),
        ("POST", "/groups/{id}/members/$ref"),
        ("POST", "/groups/{id}/owners/$ref"),
        ("DELETE", "/groups/{id}/members/{id}/$ref"),
        ("GET", "/education/classes/{id}/teachers"),
        ("GET", "/education/schools/{id}/users"),
        ("POST", "/directory/deletedItems/{id}/restore"),
        ("DELETE", "/directory/deletedItems/{id}"),
        ("PATCH", "/subscriptions/{id}"),
        ("DELETE", "/subscriptions/{id}"),
    ]
    statuses = []
    for method, template in templates:
        for obj_id in ids if "{id}" in template else [None]:
            path = template.replace("{id}", obj_id or "")
            for body in JUNK_BODIES if method in ("POST", "PATCH") else [b""]:
                response = graph.request(
                    method, path, data=body, headers={"Content-Type": "application/json"}
                )
                statuses.append((method, path, body, response.status_code))
    crashed = [s for s in statuses if s[3] >= 500]
    assert crashed == []
    assert graph.get(f"/users/{staff['id']}").status_code in (200, 404)
    mine = graph_sandbox.counters()["tenants"][graph_tenant.id]["requests"]
    assert [s for by_status in mine.values() for s in by_status if s.startswith("5")] == []


def test_non_http_bytes_and_plain_http_do_not_stop_the_server(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    host = urlsplit(graph_sandbox.info["authority"])
    with socket.create_connection((host.hostname, host.port), timeout=5) as raw:
        raw.sendall(b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\n\r\n")  # no TLS at all
        raw.settimeout(5)
        with contextlib.suppress(ConnectionError, TimeoutError):
            raw.recv(100)
    context = ssl.create_default_context(cafile=str(graph_sandbox.ca_bundle))
    with (
        socket.create_connection((host.hostname, host.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host.hostname) as tls,
    ):
        tls.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
        tls.settimeout(5)
        with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
            tls.recv(100)
    assert graph_tenant.graph.get("/users").status_code == 200
