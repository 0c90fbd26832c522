"""The tokens a person's sign-in mints: Entra v2.0 ID tokens for the app and v1.0 delegated
access tokens for Graph, RS256 with the sandbox's signing key (see ``tokens`` for the claims).

Failure policy: none; callers pass a live user of the tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt

from sandbox.graph.auth import GRAPH_APP_ID, GRAPH_AUDIENCE
from sandbox.graph.identity import App, Grant
from sandbox.graph.roles import wids
from sandbox.graph.store import DirObject, Tenant

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pairwise_sub(client_id: str, user_id: str) -> str:
    return b64(hashlib.sha256(f"{client_id}:{user_id}".encode()).digest())[:43]


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
        "rh": "0.A" + b64(uuid.uuid4().bytes),
        "sub": pairwise_sub(grant.client_id, user.id),
        "tid": tenant.id,
        "uti": b64(uuid.uuid4().bytes)[:22],
        "ver": "2.0",
        "wids": wids(registry.identity, tenant, user.id),
    }
    if props.get("mail") and "email" in grant.scopes:  # Entra adds it for the email scope
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
        "uti": b64(uuid.uuid4().bytes)[:22],
        "ver": "1.0",
        "wids": wids(registry.identity, tenant, user.id),
    }
    return _sign(registry, claims)


def client_info(tenant: Tenant, user: DirObject) -> str:
    return b64(json.dumps({"uid": user.id, "utid": tenant.id}).encode())
