"""The token endpoint's grants for people: ``authorization_code`` (with PKCE) and
``refresh_token``; the ID tokens and delegated Graph access tokens they return.

ID tokens are Entra's v2.0 ones (minted in ``user_tokens``): RS256 with the sandbox's signing
key (published at every tenant's and ``common``'s ``discovery/v2.0/keys``), ``iss``
``{authority}/{tid}/v2.0``, ``aud`` the client id, ``tid``, ``oid``, a pairwise ``sub``,
``preferred_username``, ``email`` (with the ``email`` scope, when the user has a mail),
``name``, ``nonce``, ``iat``/``nbf``/``exp`` and ``wids``. Access tokens for Graph are v1.0
ones like Entra's (``aud`` ``https://graph.microsoft.com``, ``iss``
``https://sts.windows.net/{tid}/``, ``scp``, ``idtyp`` ``user``), so Graph's check in ``auth``
takes them.

Failure policy: refusals are Entra's token error bodies (``error``, ``AADSTS`` description,
``error_codes``...) with 400 or 401; a code is gone after its first redemption, whatever the
outcome, as Entra's are.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

from sandbox.graph.auth import GRAPH_AUDIENCE, client_credentials, entra_error
from sandbox.graph.identity import (
    CODE_LIFETIME_SECONDS,
    REFRESH_TOKEN_LIFETIME_SECONDS,
    App,
    Grant,
)
from sandbox.graph.scopes import OIDC_SCOPES, ScopeError, graph_scopes, parse_scopes
from sandbox.graph.store import USER, DirObject, Tenant
from sandbox.graph.user_tokens import access_token, b64, client_info, id_token

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry

ORGANIZATION_KEYS = ("common", "organizations")


def _verifier_matches(grant: Grant, verifier: str) -> bool:
    if grant.code_challenge_method == "S256":
        computed = b64(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
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
    graph = graph_scopes(grant.scopes)
    lifetime = registry.settings.token_lifetime_seconds
    granted_oidc = [s for s in ("openid", "profile", "email") if s in grant.scopes]
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join([*(f"{GRAPH_AUDIENCE}/{s}" for s in graph), *granted_oidc]),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token(registry, tenant, user, app, graph),
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
        body["client_info"] = client_info(tenant, user)
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
