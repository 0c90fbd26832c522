"""The token endpoint's grants for people: ``authorization_code`` (with PKCE) and
``refresh_token``; the ID tokens and delegated Graph access tokens they return.

ID tokens are Entra's v2.0 ones: RS256 with the sandbox's signing key (published at every
tenant's and ``common``'s ``discovery/v2.0/keys``), ``iss`` ``{authority}/{tid}/v2.0``, ``aud``
the client id, ``tid``, ``oid``, a pairwise ``sub``, ``preferred_username``, ``email`` (when the
user has a mail), ``name``, ``nonce``, ``iat``/``nbf``/``exp`` and ``wids``. Access tokens for
Graph are v1.0 ones like Entra's (``aud`` ``https://graph.microsoft.com``, ``iss``
``https://sts.windows.net/{tid}/``, ``scp``, ``idtyp`` ``user``), so Graph's check in ``auth``
takes them.

Failure policy: refusals are Entra's token error bodies (``error``, ``AADSTS`` description,
``error_codes``...) with 400 or 401; a code is gone after its first redemption, whatever the
outcome, as Entra's are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt

from sandbox.graph.auth import GRAPH_APP_ID, GRAPH_AUDIENCE, client_credentials, entra_error
from sandbox.graph.identity import (
    CODE_LIFETIME_SECONDS,
    REFRESH_TOKEN_LIFETIME_SECONDS,
    SKOLSYNK_APP,
    App,
    Grant,
)
from sandbox.graph.roles import wids
from sandbox.graph.store import USER, DirObject, Tenant

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry

OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
#: delegated Graph permissions the sandbox knows (others are refused as Entra refuses them)
GRAPH_DELEGATED = frozenset(
    {
        "User.Read",
        "User.ReadBasic.All",
        "User.Read.All",
        "Directory.Read.All",
        "Group.Read.All",
        "GroupMember.Read.All",
        "Organization.Read.All",
        "RoleManagement.Read.Directory",
        "EduRoster.ReadBasic",
        "EduRoster.Read",
        "offline_access",
    }
)
#: what ``https://graph.microsoft.com/.default`` means for a user of each app
STATIC_PERMISSIONS = {
    SKOLSYNK_APP: ("User.Read", "Directory.Read.All", "RoleManagement.Read.Directory"),
    "portal": ("User.Read",),
}
GRAPH_PREFIXES = (f"{GRAPH_AUDIENCE}/", f"{GRAPH_APP_ID}/")
ORGANIZATION_KEYS = ("common", "organizations")
PERMISSION_NAME = re.compile(r"^[A-Za-z]+(\.[A-Za-z]+)+$")


class ScopeError(Exception):
    """A ``scope`` Entra would refuse: (error, AADSTS number, description)."""

    def __init__(self, error: str, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.error, self.aadsts, self.description = error, aadsts, description


def parse_scopes(text: str, app: App) -> tuple[str, ...]:
    """Requested scopes, normalised: OIDC names and Graph permissions by short name."""
    out: list[str] = []
    for scope in text.split():
        name = scope
        for prefix in GRAPH_PREFIXES:
            if scope.lower().startswith(prefix.lower()):
                name = scope[len(prefix) :]
                break
        else:
            if "/" in scope or ":" in scope:
                resource = scope.rsplit("/", 1)[0]
                raise ScopeError(
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant. "
                    "This can happen if the application has not been installed by the "
                    "administrator of the tenant or consented to by any user in the tenant.",
                )
        if name in OIDC_SCOPES:
            out.append(name)
        elif name == ".default":
            out.extend(STATIC_PERMISSIONS.get(app.name, ("User.Read",)))
        elif name in GRAPH_DELEGATED:
            out.append(name)
        elif PERMISSION_NAME.match(name):
            raise ScopeError(
                "invalid_client",
                650053,
                f"The application '{app.display_name}' asked for scope '{name}' that doesn't "
                f"exist on the resource '{GRAPH_APP_ID}'. Contact the app vendor.",
            )
        else:
            raise ScopeError(
                "invalid_scope",
                70011,
                "The provided request must include a 'scope' input parameter. The provided "
                f"value for the input parameter 'scope' is not valid. The scope '{scope}' is "
                "not valid.",
            )
    return tuple(dict.fromkeys(out))


def _graph_scopes(scopes: tuple[str, ...]) -> list[str]:
    graph = [s for s in scopes if s not in OIDC_SCOPES]
    return graph or ["User.Read"]  # Entra hands out a Graph token even for OIDC-only requests


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pairwise_sub(client_id: str, user_id: str) -> str:
    return _b64(hashlib.sha256(f"{client_id}:{user_id}".encode()).digest())[:43]


def _sign(registry: Registry, claims: dict[str, Any]) -> str:
    kid = registry.trust.signing_key_id
    return jwt.encode(
        claims, registry.trust.signing_key, algorithm="RS256", headers={"kid": kid, "x5t": kid}
    )


def id_token(registry: Registry, tenant: Tenant, user: DirObject, grant: Grant) -> str:
    now = int(time.time())
    props = user.props
    claims: dict[str, Any] = {
        "aud": grant.client_id,
        "iss": f"{registry.settings.authority}/{tenant.id}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + registry.settings.token_lifetime_seconds,
        "name": props.get("displayName"),
        "oid": user.id,
        "preferred_username": props.get("userPrincipalName"),
        "rh": "0.A" + _b64(uuid.uuid4().bytes),
        "sub": pairwise_sub(grant.client_id, user.id),
        "tid": tenant.id,
        "uti": _b64(uuid.uuid4().bytes)[:22],
        "ver": "2.0",
        "wids": wids(registry.identity, tenant, user.id),
    }
    if props.get("mail"):
        claims["email"] = props["mail"]
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    return _sign(registry, claims)


def access_token(
    registry: Registry, tenant: Tenant, user: DirObject, app: App, graph_scopes: list[str]
) -> str:
    now = int(time.time())
    props = user.props
    issuer = f"https://sts.windows.net/{tenant.id}/"
    claims: dict[str, Any] = {
        "aud": GRAPH_AUDIENCE,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + registry.settings.token_lifetime_seconds,
        "acct": 0,
        "acr": "1",
        "amr": ["pwd"],
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": "1",
        "family_name": props.get("surname"),
        "given_name": props.get("givenName"),
        "idp": issuer,
        "idtyp": "user",
        "name": props.get("displayName"),
        "oid": user.id,
        "scp": " ".join([*graph_scopes, "openid", "profile", "email"]),
        "sub": pairwise_sub(GRAPH_APP_ID, user.id),
        "tid": tenant.id,
        "unique_name": props.get("userPrincipalName"),
        "upn": props.get("userPrincipalName"),
        "uti": _b64(uuid.uuid4().bytes)[:22],
        "ver": "1.0",
        "wids": wids(registry.identity, tenant, user.id),
    }
    return _sign(registry, claims)


def _client_info(tenant: Tenant, user: DirObject) -> str:
    return _b64(json.dumps({"uid": user.id, "utid": tenant.id}).encode())


def _verifier_matches(grant: Grant, verifier: str) -> bool:
    if grant.code_challenge_method == "S256":
        computed = _b64(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        return hmac.compare_digest(computed, grant.code_challenge or "")
    return hmac.compare_digest(verifier, grant.code_challenge or "")


def live_user(tenant: Tenant, user_id: str) -> DirObject | None:
    user = tenant.find(USER, user_id)
    if user is None or user.props.get("accountEnabled") is False:
        return None
    return user


def _authenticate(
    registry: Registry, form: dict[str, str], authorization: str, directory: str
) -> tuple[App | None, tuple[int, dict[str, Any]] | None]:
    client_id, secret = client_credentials(form, authorization)
    if not client_id:
        return None, (
            400,
            entra_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            ),
        )
    app = registry.identity.app_by_client_id(client_id)
    if app is None:
        return None, (
            400,
            entra_error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{directory}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            ),
        )
    if not secret:
        return None, (
            401,
            entra_error(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            ),
        )
    if not hmac.compare_digest(secret, app.client_secret):
        return None, (
            401,
            entra_error(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            ),
        )
    return app, None


def _invalid_grant(aadsts: int, description: str) -> tuple[int, dict[str, Any]]:
    return 400, entra_error("invalid_grant", aadsts, description)


def redeem(
    registry: Registry, tenant_key: str, form: dict[str, str], authorization: str
) -> tuple[int, dict[str, Any]]:
    """Answer an ``authorization_code`` or ``refresh_token`` request: (status, body)."""
    organizations = tenant_key.lower() in ORGANIZATION_KEYS
    authority_tenant = None if organizations else registry.tenant_by_key(tenant_key)
    if not organizations and authority_tenant is None:
        return 400, entra_error(
            "invalid_request",
            90002,
            f"Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    directory = authority_tenant.name if authority_tenant else tenant_key
    app, refusal = _authenticate(registry, form, authorization, directory)
    if refusal is not None:
        return refusal
    assert app is not None
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        grant, refusal = _code_grant(registry, form, app)
    else:
        grant, refusal = _refresh_grant(registry, form, app)
    if refusal is not None:
        return refusal
    assert grant is not None
    if authority_tenant is not None and authority_tenant.id != grant.tenant_id:
        return _invalid_grant(
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )
    tenant = registry.tenants.get(grant.tenant_id)
    user = live_user(tenant, grant.user_id) if tenant is not None else None
    if tenant is None or user is None:
        return _invalid_grant(
            50057,
            "The user account is disabled or no longer exists in the directory.",
        )
    graph_scopes = _graph_scopes(grant.scopes)
    lifetime = registry.settings.token_lifetime_seconds
    granted_oidc = [s for s in ("openid", "profile", "email") if s in grant.scopes]
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join([*(f"{GRAPH_AUDIENCE}/{s}" for s in graph_scopes), *granted_oidc]),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token(registry, tenant, user, app, graph_scopes),
    }
    if "offline_access" in grant.scopes:
        body["refresh_token"] = registry.identity.new_refresh_token(
            Grant(
                client_id=app.client_id,
                tenant_id=tenant.id,
                user_id=user.id,
                scopes=grant.scopes,
                expires=time.time() + REFRESH_TOKEN_LIFETIME_SECONDS,
                auth_time=grant.auth_time,
            )
        )
    if "openid" in grant.scopes:
        body["id_token"] = id_token(registry, tenant, user, grant)
    if form.get("client_info") == "1":
        body["client_info"] = _client_info(tenant, user)
    return 200, body


def _code_grant(
    registry: Registry, form: dict[str, str], app: App
) -> tuple[Grant | None, tuple[int, dict[str, Any]] | None]:
    code = form.get("code", "")
    if not code:
        return None, (
            400,
            entra_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            ),
        )
    grant, used = registry.identity.take_code(code)
    if grant is None and used:
        return None, _invalid_grant(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
            "or use an existing refresh token.",
        )
    if grant is None:
        return None, _invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
    if grant.expires < time.time():
        return None, _invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. "
            "Send a new interactive authorization request for this user and resource.",
        )
    if grant.client_id != app.client_id:
        return None, _invalid_grant(
            70000, "The provided authorization code was issued to a different client."
        )
    if form.get("redirect_uri", "") != grant.redirect_uri:
        return None, _invalid_grant(
            500112,
            "The reply address does not match the reply address provided when requesting the "
            "authorization code.",
        )
    if grant.code_challenge is not None:
        verifier = form.get("code_verifier", "")
        if not verifier:
            return None, _invalid_grant(
                501481,
                "The Code_Verifier is missing; the authorization request had a code_challenge.",
            )
        if not _verifier_matches(grant, verifier):
            return None, _invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
    requested = form.get("scope")
    if requested:
        try:
            parse_scopes(requested, app)
        except ScopeError as exc:
            return None, (400, entra_error(exc.error, exc.aadsts, exc.description))
    return grant, None


def _refresh_grant(
    registry: Registry, form: dict[str, str], app: App
) -> tuple[Grant | None, tuple[int, dict[str, Any]] | None]:
    token = form.get("refresh_token", "")
    if not token:
        return None, (
            400,
            entra_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            ),
        )
    grant = registry.identity.refresh_grant(token)
    if grant is None:
        return None, _invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
    if grant.expires < time.time():
        return None, _invalid_grant(
            700082,
            "The refresh token has expired due to inactivity. The token was issued and was "
            "inactive for 90.00:00:00.",
        )
    if grant.client_id != app.client_id:
        return None, _invalid_grant(
            70000, "The refresh token was issued to a different client and cannot be used."
        )
    scopes = grant.scopes
    requested = form.get("scope")
    if requested:
        try:
            asked = parse_scopes(requested, app)
        except ScopeError as exc:
            return None, (400, entra_error(exc.error, exc.aadsts, exc.description))
        scopes = tuple(dict.fromkeys([*asked, *(s for s in grant.scopes if s in OIDC_SCOPES)]))
    return (
        Grant(
            client_id=grant.client_id,
            tenant_id=grant.tenant_id,
            user_id=grant.user_id,
            scopes=scopes,
            expires=time.time() + CODE_LIFETIME_SECONDS,
            auth_time=grant.auth_time,
        ),
        None,
    )
