"""The portal's ID token check against the running sandbox's discovery document and keys:
a genuine token passes; forged, tampered, expired, foreign-audience, wrong-issuer and
wrong-nonce tokens are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.portal.microsoft import MicrosoftSettings, MicrosoftSignIn, SignInError
from tests.fixtures.browser import FormBrowser
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.sandbox.graph.test_signin import a_student, authorize_url, redeem

NONCE = "nonce-of-this-sign-in"


@pytest.fixture(scope="module")
def client(graph_sandbox: GraphSandbox) -> Iterator[MicrosoftSignIn]:
    signin = MicrosoftSignIn(
        MicrosoftSettings.from_sandbox_json(graph_sandbox.data_dir / "sandbox.json")
    )
    yield signin
    signin.http.close()


@pytest.fixture(scope="module")
def genuine(graph_sandbox: GraphSandbox) -> str:
    """A real ID token for the portal app, with ``NONCE``."""
    tenant: SandboxTenant = graph_sandbox.new_tenant(generate=40, seed=61)
    browser = FormBrowser(graph_sandbox.ca_bundle)
    try:
        answer = browser.sign_in(
            authorize_url(graph_sandbox, tenant.id, nonce=NONCE),
            a_student(tenant)["userPrincipalName"],
            graph_sandbox.info["people_password"],
        )
        code = FormBrowser.redirect(answer).params["code"]
    finally:
        browser.close()
    response = redeem(graph_sandbox, tenant.id, code=code)
    assert response.status_code == 200, response.text
    return str(response.json()["id_token"])


def sandbox_key(sandbox: GraphSandbox) -> Any:
    """The sandbox's own signing key (the test owns its data directory)."""
    pem = (sandbox.data_dir / "token-signing-key.pem").read_bytes()
    return serialization.load_pem_private_key(pem, password=None)


def resign(token: str, key: Any, *, algorithm: str = "RS256", **changes: Any) -> str:
    header = jwt.get_unverified_header(token)
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": header["kid"]})


def test_a_genuine_token_passes(client: MicrosoftSignIn, genuine: str) -> None:
    claims = client.validate(genuine, nonce=NONCE)
    assert claims["aud"] == client.settings.client_id
    assert claims["iss"].endswith(f"/{claims['tid']}/v2.0")


def test_a_wrong_nonce_is_refused(client: MicrosoftSignIn, genuine: str) -> None:
    with pytest.raises(SignInError):
        client.validate(genuine, nonce="another-nonce")


def test_a_token_signed_with_another_key_is_refused(client: MicrosoftSignIn, genuine: str) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SignInError):
        client.validate(resign(genuine, forger), nonce=NONCE)


def test_a_tampered_payload_is_refused(client: MicrosoftSignIn, genuine: str) -> None:
    head, _, rest = genuine.partition(".")
    _payload, _, signature = rest.partition(".")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    other = jwt.encode(
        {**claims, "oid": "00000000-0000-0000-0000-000000000001"}, "k" * 32, algorithm="HS256"
    )
    with pytest.raises(SignInError):
        client.validate(f"{head}.{other.split('.')[1]}.{signature}", nonce=NONCE)


def test_an_expired_token_is_refused(
    client: MicrosoftSignIn, genuine: str, graph_sandbox: GraphSandbox
) -> None:
    past = int(time.time()) - 7200
    expired = resign(genuine, sandbox_key(graph_sandbox), iat=past, nbf=past, exp=past + 600)
    with pytest.raises(SignInError, match="gått ut"):
        client.validate(expired, nonce=NONCE)


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "00000000-0000-0000-0000-00000000cafe"},
        {"tid": "11111111-1111-4111-8111-111111111111"},  # iss names another tenant
        {"iss": "https://login.example/11111111-1111-4111-8111-111111111111/v2.0"},
        {"tid": "common"},
    ],
)
def test_tokens_for_another_audience_or_issuer_are_refused(
    client: MicrosoftSignIn, genuine: str, graph_sandbox: GraphSandbox, changes: dict[str, str]
) -> None:
    with pytest.raises(SignInError):
        client.validate(resign(genuine, sandbox_key(graph_sandbox), **changes), nonce=NONCE)


def test_unsigned_and_symmetric_tokens_are_refused(client: MicrosoftSignIn, genuine: str) -> None:
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    with pytest.raises(SignInError):
        client.validate(unsigned, nonce=NONCE)
    symmetric = jwt.encode(
        claims, "guessable-secret-of-at-least-32-bytes!", algorithm="HS256", headers={"kid": kid}
    )
    with pytest.raises(SignInError):
        client.validate(symmetric, nonce=NONCE)
    with pytest.raises(SignInError):
        client.validate("not.a.token", nonce=NONCE)
