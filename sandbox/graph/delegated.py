"""Graph for a signed-in person, and the directory-role reads an app makes about anyone.

``/me``, ``/me/transitiveMemberOf/microsoft.graph.directoryRole`` (and ``memberOf``, and the
same under ``/users/{id}``), ``/directoryRoles``, ``/roleManagement/directory/roleAssignments``
(``$filter`` on ``principalId`` or ``roleDefinitionId``) and ``/organization`` with
``verifiedDomains``. A delegated token (``idtyp`` ``user``) may call only these reads and the
user reads its ``scp`` allows, as Graph's permission check would; an application token reads
all of them for any user, but ``/me`` needs a user.

Failure policy: Graph's answers: 403 ``Authorization_RequestDenied`` for a delegated call its
scopes do not cover, 400 for ``/me`` with an app token, 404 for unknown users.
"""

from __future__ import annotations

from sandbox.graph import odata, schema
from sandbox.graph.calls import GraphCall, Reply, collection
from sandbox.graph.errors import GraphError, not_found
from sandbox.graph.roles import TEMPLATES, assignment, directory_role, members_of, roles_of
from sandbox.graph.store import USER, DirObject

READ_USERS = ("User.ReadBasic.All", "User.Read.All", "Directory.Read.All")
READ_ROLES = ("RoleManagement.Read.Directory", "Directory.Read.All")
#: Graph endpoints a delegated token may call, with the scopes any of which allow it
#: (``()``: every signed-in user may)
DELEGATED = {
    "GET /v1.0/me": (),
    "GET /v1.0/me/memberOf/microsoft.graph.directoryRole": (),
    "GET /v1.0/me/transitiveMemberOf/microsoft.graph.directoryRole": (),
    "GET /v1.0/organization": (),
    "GET /v1.0/organization/{id}": (),
    "GET /v1.0/users": READ_USERS,
    "GET /v1.0/users/{id}": READ_USERS,
    "GET /v1.0/users/{id}/memberOf/microsoft.graph.directoryRole": READ_USERS,
    "GET /v1.0/users/{id}/transitiveMemberOf/microsoft.graph.directoryRole": READ_USERS,
    "GET /v1.0/directoryRoles": READ_ROLES,
    "GET /v1.0/directoryRoles/{id}/members": READ_ROLES,
    "GET /v1.0/roleManagement/directory/roleAssignments": READ_ROLES,
}
INSUFFICIENT = "Insufficient privileges to complete the operation."


def check(call: GraphCall, label: str) -> None:
    """403 when a delegated token may not call ``label``; 400 for ``/me`` without a user."""
    if call.user_id is None:
        if label.startswith("GET /v1.0/me"):
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        return
    allowed = DELEGATED.get(label)
    if allowed is None or (allowed and not set(allowed) & call.scopes):
        raise GraphError(403, "Authorization_RequestDenied", INSUFFICIENT)


def _me(call: GraphCall) -> DirObject:
    assert call.user_id is not None  # ``check`` ran before
    user = call.tenant.find(USER, call.user_id)
    if user is None:
        raise not_found(call.user_id)
    return user


def _user(call: GraphCall, key: str) -> DirObject:
    user = call.tenant.find(USER, key)
    if user is None:
        raise not_found(key)
    return user


def me(call: GraphCall) -> Reply:
    odata.check_options(call.args)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, schema.properties_of(USER), schema.type_name(USER))
    with call.tenant.lock:
        body = {"@odata.context": f"{call.base_url}/$metadata#users/$entity"}
        body.update(schema.project(_me(call), select))
    return Reply(200, body)


def _roles_reply(call: GraphCall, user: DirObject) -> Reply:
    held = roles_of(call.registry.identity, call.tenant, user.id)
    return collection(
        f"{call.base_url}/$metadata#directoryRoles",
        [directory_role(call.tenant, t) for t in held],
    )


def my_roles(call: GraphCall) -> Reply:
    return _roles_reply(call, _me(call))


def user_roles(call: GraphCall, key: str) -> Reply:
    return _roles_reply(call, _user(call, key))


def list_roles(call: GraphCall) -> Reply:
    identity = call.registry.identity
    active = [t for t in TEMPLATES if members_of(identity, call.tenant, t)]
    return collection(
        f"{call.base_url}/$metadata#directoryRoles",
        [directory_role(call.tenant, t) for t in active],
    )


def role_members(call: GraphCall, key: str) -> Reply:
    template = next(
        (t for t in TEMPLATES if key in (t, directory_role(call.tenant, t)["id"])), None
    )
    if template is None:
        raise not_found(key)
    users = [
        call.tenant.visible(m) for m in members_of(call.registry.identity, call.tenant, template)
    ]
    return collection(
        f"{call.base_url}/$metadata#directoryObjects",
        [
            {"@odata.type": "#microsoft.graph.user", **schema.project(u, None)}
            for u in users
            if u is not None
        ],
    )


def role_assignments(call: GraphCall) -> Reply:
    identity = call.registry.identity
    items = [
        assignment(template, user_id)
        for template in TEMPLATES
        for user_id in members_of(identity, call.tenant, template)
    ]
    text = call.args.get("$filter")
    if text:
        fields = ("id", "principalId", "roleDefinitionId", "directoryScopeId")
        predicate = odata.parse_filter(text, lambda name: name in fields, call.headers)
        items = [item for item in items if predicate(odata.getter_for(item))]
    return collection(f"{call.base_url}/$metadata#roleManagement/directory/roleAssignments", items)


def _organization_body(call: GraphCall) -> dict[str, object]:
    tenant = call.tenant
    domains = [
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": index == 0,
            "isInitial": index == 0,
            "name": name,
            "type": "Managed",
        }
        for index, name in enumerate(tenant.domains)
    ]
    return {
        "id": tenant.id,
        "displayName": tenant.name,
        "countryLetterCode": "SE",
        "preferredLanguage": "sv-SE",
        "tenantType": "AAD",
        "verifiedDomains": domains,
    }


def organization(call: GraphCall) -> Reply:
    return collection(f"{call.base_url}/$metadata#organization", [_organization_body(call)])


def organization_by_id(call: GraphCall, key: str) -> Reply:
    if key != call.tenant.id:
        raise not_found(key)
    body = {"@odata.context": f"{call.base_url}/$metadata#organization/$entity"}
    body.update(_organization_body(call))
    return Reply(200, body)


RULES = [
    ("/me", "GET", me),
    ("/me/memberOf/microsoft.graph.directoryRole", "GET", my_roles),
    ("/me/transitiveMemberOf/microsoft.graph.directoryRole", "GET", my_roles),
    ("/users/<key>/memberOf/microsoft.graph.directoryRole", "GET", user_roles),
    ("/users/<key>/transitiveMemberOf/microsoft.graph.directoryRole", "GET", user_roles),
    ("/directoryRoles", "GET", list_roles),
    ("/directoryRoles/<key>/members", "GET", role_members),
    ("/roleManagement/directory/roleAssignments", "GET", role_assignments),
    ("/organization", "GET", organization),
    ("/organization/<key>", "GET", organization_by_id),
]
