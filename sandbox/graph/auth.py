"""Sign-in as Microsoft Entra answers it: OpenID configuration, keys, client-credentials tokens.

Tokens are RS256 JWTs shaped like Entra's app-only tokens for Graph (``aud``, ``iss``, ``tid``,
``appid``, ``roles``, ``exp``). Graph calls present them as ``Authorization: Bearer``; a
missing, malformed, foreign, expired or wrong-audience token gets Graph's 401.

Failure policy: the token endpoint answers refused requests with Entra's error body
(``error``, ``error_description`` with an ``AADSTS`` code, ``error_codes``, ``trace_id``...);
nothing here raises past the caller.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.graph.errors import GraphError

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry
    from sandbox.graph.store import Tenant

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ACCEPTED_SCOPES = frozenset({f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default"})
#: the application permissions every sandbox tenant's administrator consented to
APP_ROLES = (
    "Directory.ReadWrite.All",
    "EduRoster.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "User.ReadWrite.All",
)
APP_DISPLAY_NAME = "Skolsynk"
#: verified tokens kept (checking an RS256 signature on every call is the costliest step)
VERIFIED_TOKENS_KEPT = 10_000


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "kid": kid,
                "x5t": kid,
                "n": _b64url_uint(numbers.n),
                "e": _b64url_uint(numbers.e),
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            }
        ]
    }


def openid_configuration(authority: str, graph_root: str, tenant_id: str) -> dict[str, Any]:
    base = f"{authority}/{tenant_id}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{graph_root}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def entra_error(error: str, aadsts: int, description: str) -> dict[str, Any]:
    """Entra's token endpoint error body."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": (
            f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        ),
        "error_codes": [aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }


def client_credentials(form: dict[str, str], authorization: str) -> tuple[str, str | None]:
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return form.get("client_id", ""), None
        from urllib.parse import unquote_plus

        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret")


def issue_token(
    registry: Registry, tenant_key: str, form: dict[str, str], authorization: str
) -> tuple[int, dict[str, Any]]:
    """Answer a token request: (status, body) as Entra would."""
    grant = form.get("grant_type", "")
    if grant in ("authorization_code", "refresh_token"):
        from sandbox.graph import tokens

        return tokens.redeem(registry, tenant_key, form, authorization)
    if tenant_key.lower() in ("common", "organizations") and grant == "client_credentials":
        return 400, entra_error(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any "
            "provided credentials.",
        )
    tenant = registry.tenant_by_key(tenant_key)
    if tenant is None:
        return 400, entra_error(
            "invalid_request",
            90002,
            f"Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    if grant != "client_credentials":
        return 400, entra_error(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    client_id, secret = client_credentials(form, authorization)
    app = registry.trust.app
    if client_id != app.client_id:
        return 400, entra_error(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.name}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may have "
            "sent your authentication request to the wrong tenant.",
        )
    if not secret:
        return 401, entra_error(
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the "
            "'client_credentials' grant type.",
        )
    if secret != app.client_secret:
        return 401, entra_error(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
        )
    if not registry.identity.consented(tenant.id, app.client_id):
        return 400, entra_error(
            "invalid_client",
            7000229,
            f"The client application {app.client_id} is missing service principal in the tenant "
            f"{tenant.id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
        )
    scopes = form.get("scope", "").split()
    if len(scopes) != 1 or scopes[0] not in ACCEPTED_SCOPES:
        return 400, entra_error(
            "invalid_scope",
            1002012,
            f"The provided value for scope {' '.join(scopes) or '(none)'} is not valid. Client "
            "credential flows must have a scope value with /.default suffixed to the resource "
            "identifier (application ID URI).",
        )
    lifetime = registry.settings.token_lifetime_seconds
    now = int(time.time())
    service_principal = str(uuid.uuid5(uuid.UUID(tenant.id), app.client_id))
    claims = {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "app_displayname": APP_DISPLAY_NAME,
        "appid": app.client_id,
        "appidacr": "1",
        "idp": f"https://sts.windows.net/{tenant.id}/",
        "idtyp": "app",
        "oid": service_principal,
        "roles": list(APP_ROLES),
        "sub": service_principal,
        "tid": tenant.id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }
    token = jwt.encode(
        claims,
        registry.trust.signing_key,
        algorithm="RS256",
        headers={"kid": registry.trust.signing_key_id, "x5t": registry.trust.signing_key_id},
    )
    return 200, {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }


def _unauthorized(message: str, registry: Registry) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="", authorization_uri="{registry.settings.authority}/common/oauth2/'
                f'authorize", client_id="{GRAPH_APP_ID}"'
            )
        },
    )


def _verify(registry: Registry, token: str) -> dict[str, Any]:
    public_key = registry.trust.signing_key.public_key()
    try:
        return jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=GRAPH_AUDIENCE,
            options={"require": ["exp", "tid", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("Lifetime validation failed, the token is expired.", registry) from exc
    except jwt.InvalidAudienceError as exc:
        raise _unauthorized("Access token validation failure. Invalid audience.", registry) from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("Access token validation failure.", registry) from exc


def tenant_for_token(registry: Registry, authorization: str) -> Tenant:
    """The tenant a Graph call acts in, from its bearer token; 401 when the token won't do."""
    return token_claims(registry, authorization)[0]


def token_claims(registry: Registry, authorization: str) -> tuple[Tenant, dict[str, Any]]:
    """The tenant and the verified claims of a Graph call's bearer token (app or user)."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Access token is empty.", registry)
    if token.count(".") != 2:
        raise _unauthorized("CompactToken parsing failed with error code: 80049217", registry)
    claims = registry.verified_tokens.get(token)
    if claims is None:
        claims = _verify(registry, token)
        if len(registry.verified_tokens) >= VERIFIED_TOKENS_KEPT:
            registry.verified_tokens.clear()
        registry.verified_tokens[token] = claims
    elif claims["exp"] <= time.time():
        raise _unauthorized("Lifetime validation failed, the token is expired.", registry)
    tenant = registry.tenants.get(str(claims.get("tid")))
    if tenant is None or claims.get("iss") != f"https://sts.windows.net/{tenant.id}/":
        raise _unauthorized("Access token validation failure. Invalid issuer.", registry)
    return tenant, claims
