"""Which scopes a sign-in may ask for: OpenID Connect's and Microsoft Graph's delegated
permissions (short names, ``https://graph.microsoft.com/...`` or the Graph app id prefix), and
``/.default`` (the app's static permissions).

Failure policy: a scope Entra would refuse raises ``ScopeError`` with Entra's error name, its
AADSTS number and description (AADSTS70011 malformed, AADSTS650053 no such permission,
AADSTS500011 no such resource).
"""

from __future__ import annotations

import re

from sandbox.graph.auth import GRAPH_APP_ID, GRAPH_AUDIENCE
from sandbox.graph.identity import SKOLSYNK_APP, App

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


def graph_scopes(scopes: tuple[str, ...]) -> list[str]:
    graph = [s for s in scopes if s not in OIDC_SCOPES]
    return graph or ["User.Read"]  # Entra hands out a Graph token even for OIDC-only requests
