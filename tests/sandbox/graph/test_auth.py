"""Sign-in: MSAL works unmodified, Entra's refusals, and Graph's 401 for tokens that won't do."""

from __future__ import annotations

import time

import jwt
import msal
import pytest

from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.sandbox.graph.conftest import SHORT_TOKEN_LIFETIME_SECONDS

SCOPE = "https://graph.microsoft.com/.default"


def _token_request(sandbox: GraphSandbox, tenant: str, **form: str):
    data = {
        "grant_type": "client_credentials",
        "client_id": sandbox.info["client_id"],
        "client_secret": sandbox.info["client_secret"],
        "scope": SCOPE,
        **form,
    }
    return sandbox.session().post(
        f"{sandbox.info['authority']}/{tenant}/oauth2/v2.0/token", data=data
    )


def test_msal_confidential_client_gets_a_token_with_tenant_audience_and_roles(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    info = graph_sandbox.info
    app = msal.ConfidentialClientApplication(
        info["client_id"],
        client_credential=info["client_secret"],
        authority=f"{info['authority']}/{graph_tenant.id}",
        instance_discovery=False,
        http_client=graph_sandbox.session(),
    )
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result.get("error_description")

    keys = (
        graph_sandbox.session()
        .get(f"{info['authority']}/{graph_tenant.id}/discovery/v2.0/keys")
        .json()
    )
    key = jwt.PyJWK(keys["keys"][0])
    claims = jwt.decode(
        result["access_token"],
        key.key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
    )
    assert claims["tid"] == graph_tenant.id
    assert claims["appid"] == info["client_id"]
    assert "Directory.ReadWrite.All" in claims["roles"]
    assert claims["exp"] > time.time() + 3000


def test_openid_configuration_points_at_the_tenants_own_endpoints(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    authority = graph_sandbox.info["authority"]
    config = (
        graph_sandbox.session()
        .get(f"{authority}/{graph_tenant.domain}/v2.0/.well-known/openid-configuration")
        .json()
    )
    assert config["token_endpoint"] == f"{authority}/{graph_tenant.id}/oauth2/v2.0/token"
    assert config["issuer"] == f"{authority}/{graph_tenant.id}/v2.0"
    assert config["jwks_uri"].startswith(authority)


def test_wrong_secret_is_refused_as_invalid_client(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    response = _token_request(graph_sandbox, graph_tenant.id, client_secret="not-the-secret")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")


def test_unknown_client_is_refused_as_entra_does(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    response = _token_request(
        graph_sandbox, graph_tenant.id, client_id="00000000-0000-0000-0000-000000000001"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client"
    assert body["error_codes"] == [700016]


def test_unknown_tenant_is_refused(graph_sandbox: GraphSandbox) -> None:
    response = _token_request(graph_sandbox, "11111111-2222-3333-4444-555555555555")
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_scope_without_default_suffix_is_refused(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant
) -> None:
    response = _token_request(graph_sandbox, graph_tenant.id, scope="User.Read")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer not-a-jwt", "CompactToken parsing failed with error code: 80049217"),
    ],
)
def test_graph_answers_401_without_a_usable_token(
    graph_sandbox: GraphSandbox, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = graph_sandbox.session().get(
        graph_sandbox.info["graph_url"] + "/users", headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"] == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_graph_answers_401_for_an_expired_token(short_lived_sandbox: GraphSandbox) -> None:
    tenant = short_lived_sandbox.new_tenant()
    token = tenant.graph.token()
    assert tenant.graph.get("/users").status_code == 200
    # time itself must pass: the shortest lifetime the sandbox offers (whole seconds, and a
    # token's exp is its whole-second issue time plus the lifetime, so this is past it)
    time.sleep(SHORT_TOKEN_LIFETIME_SECONDS + 0.1)
    response = short_lived_sandbox.session().get(
        short_lived_sandbox.info["graph_url"] + "/users",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "Lifetime validation failed, the token is expired."
    )


def test_graph_answers_401_for_a_token_from_another_directory(
    graph_sandbox: GraphSandbox, short_lived_sandbox: GraphSandbox
) -> None:
    foreign = short_lived_sandbox.new_tenant().graph.token()
    response = graph_sandbox.session().get(
        graph_sandbox.info["graph_url"] + "/users", headers={"Authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_tenants_token_never_reaches_another_tenants_objects(
    graph_sandbox: GraphSandbox,
) -> None:
    first, second = graph_sandbox.new_tenant(), graph_sandbox.new_tenant()
    student = second.graph.create_student("Åsa", "Öberg", school_id="1")
    response = first.graph.get(f"/users/{student['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"
    assert second.graph.get(f"/users/{student['id']}").status_code == 200
