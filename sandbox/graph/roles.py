"""Directory roles of a sandbox tenant, and the administrators every built tenant gets.

Roles are Entra's built-in ones, named by their role template ids (the same in every tenant;
``wids`` in tokens and ``roleTemplateId`` on Graph's ``directoryRole`` carry them). A tenant's
activated ``directoryRole`` objects get ids of their own, derived from the tenant id.

``ensure_people`` is the one place where a tenant built from data (the generator, any SDS load)
gets its Global Administrator and User Administrator, and a staff member when it has none: it
runs after every build, whatever loaded the tenant, so loaders need not know about it. Empty
tenants stay empty.

Failure policy: nothing here refuses; unknown ids simply have no roles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.graph.identity import Identity
from sandbox.graph.store import USER, DirObject, Tenant


@dataclass(frozen=True)
class RoleTemplate:
    id: str
    display_name: str
    description: str


GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
#: every user of a tenant has this role in its tokens' ``wids`` ("User"), as in Entra
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"

TEMPLATES = {
    t.id: t
    for t in (
        RoleTemplate(
            GLOBAL_ADMINISTRATOR,
            "Global Administrator",
            "Can manage all aspects of Microsoft Entra ID and Microsoft services that use "
            "Microsoft Entra identities.",
        ),
        RoleTemplate(
            USER_ADMINISTRATOR,
            "User Administrator",
            "Can manage all aspects of users and groups, including resetting passwords for "
            "limited admins.",
        ),
        RoleTemplate(
            PRIVILEGED_ROLE_ADMINISTRATOR,
            "Privileged Role Administrator",
            "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged "
            "Identity Management.",
        ),
    )
}
#: the roles that may grant admin consent for the whole organisation
CONSENTING_ROLES = frozenset({GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR})

ADMIN_ACCOUNTS = (
    ("it-admin", "IT", "Administratör", "IT-chef", GLOBAL_ADMINISTRATOR),
    ("anvandaradmin", "Användar", "Administratör", "Användaradministratör", USER_ADMINISTRATOR),
)


def role_object_id(tenant_id: str, template_id: str) -> str:
    """The id of the tenant's activated ``directoryRole`` for a template."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), f"directoryRole:{template_id}"))


def assignment_id(template_id: str, user_id: str) -> str:
    """Graph's unifiedRoleAssignment ids are opaque strings; this one is stable per pair."""
    return str(uuid.uuid5(uuid.UUID(template_id), user_id))


def _is_staff(user: DirObject) -> bool:
    role = (user.edu or {}).get("primaryRole")
    return role not in ("student", "teacher") and user.props.get("userType") == "Member"


def assign(identity: Identity, tenant: Tenant, template_id: str, user_id: str) -> None:
    members = identity.roles.setdefault(tenant.id, {}).setdefault(template_id, [])
    if user_id not in members:
        members.append(user_id)


def unassign(identity: Identity, tenant: Tenant, template_id: str, user_id: str) -> None:
    members = identity.roles.get(tenant.id, {}).get(template_id, [])
    if user_id in members:
        members.remove(user_id)


def ensure_people(identity: Identity, tenant: Tenant) -> None:
    """Give a tenant built from data its administrators (and a staff member if it has none)."""
    with tenant.lock:
        users = list(tenant.live(USER))
    if not users:
        return
    staff = [u for u in users if _is_staff(u)]
    for username, given, family, title, template in ADMIN_ACCOUNTS:
        if members_of(identity, tenant, template):
            continue
        taken = {m for t in identity.roles.get(tenant.id, {}).values() for m in t}
        spare = next((u for u in staff if u.id not in taken), None)
        if spare is None:
            upn = f"{username}@{tenant.domain}"
            spare = tenant.add_user(
                {
                    "displayName": f"{given} {family}",
                    "givenName": given,
                    "surname": family,
                    "userPrincipalName": upn,
                    "mail": upn,
                    "mailNickname": username,
                    "accountEnabled": True,
                    "userType": "Member",
                    "jobTitle": title,
                }
            )
        assign(identity, tenant, template, spare.id)
    with tenant.lock:
        plain_staff = [
            u for u in tenant.live(USER) if _is_staff(u) and not roles_of(identity, tenant, u.id)
        ]
    if not plain_staff:
        upn = f"skolsekreterare@{tenant.domain}"
        if tenant.find(USER, upn) is None:
            tenant.add_user(
                {
                    "displayName": "Skolsekreterare",
                    "givenName": "Skol",
                    "surname": "Sekreterare",
                    "userPrincipalName": upn,
                    "mail": upn,
                    "mailNickname": "skolsekreterare",
                    "accountEnabled": True,
                    "userType": "Member",
                    "jobTitle": "Skolsekreterare",
                }
            )
    administrator = tenant.visible(members_of(identity, tenant, GLOBAL_ADMINISTRATOR)[0])
    if administrator is not None:
        identity.administrators[tenant.id] = str(administrator.props["userPrincipalName"])


def members_of(identity: Identity, tenant: Tenant, template_id: str) -> list[str]:
    """Live users holding a role."""
    members = identity.roles.get(tenant.id, {}).get(template_id, [])
    return [m for m in members if tenant.visible(m) is not None]


def roles_of(identity: Identity, tenant: Tenant, user_id: str) -> list[str]:
    """Role template ids a user holds, in template order."""
    held = identity.roles.get(tenant.id, {})
    return [t for t in TEMPLATES if user_id in held.get(t, [])]


def wids(identity: Identity, tenant: Tenant, user_id: str) -> list[str]:
    """The ``wids`` claim: the user's role template ids, then the default user role."""
    return [*roles_of(identity, tenant, user_id), DEFAULT_USER_ROLE]


def directory_role(tenant: Tenant, template_id: str) -> dict[str, Any]:
    template = TEMPLATES[template_id]
    return {
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": role_object_id(tenant.id, template_id),
        "deletedDateTime": None,
        "description": template.description,
        "displayName": template.display_name,
        "roleTemplateId": template_id,
    }


def assignment(template_id: str, user_id: str) -> dict[str, Any]:
    return {
        "id": assignment_id(template_id, user_id),
        "principalId": user_id,
        "roleDefinitionId": template_id,
        "directoryScopeId": "/",
        "appScopeId": None,
        "principalOrganizationId": None,
        "condition": None,
    }
