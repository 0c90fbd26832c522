"""The codec between the model and SCIM, following an ``AttributeMapping``.

Owns reading SCIM resources into ``PortalUser``/``PortalGroup`` (names in any letter case, RFC
7643 §2.1) and writing model attributes as SCIM resources and PATCH operations, only where the
mapping gives them a home.

Failure policy: a resource the codec cannot read raises ``PortalRequestError`` naming the
attributes at fault (never the body); unknown model attribute names raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.errors import PortalRequestError
from common.model import PortalGroup, PortalUser, Role
from common.portal.mapping import GROUP_FIELDS, LISTS, USER_FIELDS, AttributeMapping, Target
from common.portal.scim import GROUP_SCHEMA, USER_SCHEMA

# --- SCIM resources -> the model --------------------------------------------------------------


def field_of(data: Any, name: str) -> Any:
    """``data[name]`` with names compared case-insensitively (RFC 7643 §2.1)."""
    if not isinstance(data, Mapping):
        return None
    if name in data:
        return data[name]
    lowered = name.lower()
    for key, value in data.items():
        if str(key).lower() == lowered:
            return value
    return None


def _read(resource: Mapping[str, Any], target: Target | None) -> Any:
    if target is None:
        return None
    holder: Any = resource if target.core else field_of(resource, target.schema)
    for part in target.attribute.split("."):
        holder = field_of(holder, part)
    return holder


def _string(value: Any, name: str, bad: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    bad.append(name)
    return None


def _strings(value: Any, name: str, bad: list[str]) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list):
        return tuple(sorted(str(v) for v in value if v is not None and v != ""))
    bad.append(name)
    return ()


def _role(value: str | None) -> Role | None:
    try:
        return Role(value.strip().lower()) if value else None
    except ValueError:
        return None


def _primary_email(emails: Any) -> str | None:
    values = (
        [e for e in emails if isinstance(e, Mapping) and field_of(e, "value")]
        if isinstance(emails, list)
        else []
    )
    for email in values:
        if str(field_of(email, "primary")).lower() == "true":
            return str(field_of(email, "value"))
    return str(field_of(values[0], "value")) if values else None


def _version(resource: Mapping[str, Any]) -> str | None:
    version = field_of(field_of(resource, "meta"), "version")
    return str(version) if version else None


def _created(resource: Mapping[str, Any]) -> str | None:
    """``meta.created`` (xsd:dateTime): which of several copies is the oldest."""
    created = field_of(field_of(resource, "meta"), "created")
    return str(created) if created else None


def _group_ids(resource: Mapping[str, Any]) -> frozenset[str]:
    """The portal ids of the groups a user is a member of, where the server says (``groups``)."""
    groups = field_of(resource, "groups")
    if not isinstance(groups, list):
        return frozenset()
    return frozenset(
        str(field_of(g, "value")) for g in groups if isinstance(g, Mapping) and field_of(g, "value")
    )


def _fail(what: str, bad: Iterable[str]) -> PortalRequestError:
    names = ", ".join(sorted(set(bad))) or "?"
    return PortalRequestError(
        f"the portal sent a {what} the sync cannot read (attributes: {names})"
    )


def parse_user(resource: Mapping[str, Any], mapping: AttributeMapping) -> PortalUser:
    """A SCIM User resource as a ``PortalUser``, read from where ``mapping`` puts each value."""
    bad: list[str] = []
    portal_id, user_name = field_of(resource, "id"), field_of(resource, "userName")
    if not isinstance(portal_id, str | int) or not isinstance(user_name, str):
        raise _fail("user", [n for n, v in (("id", portal_id), ("userName", user_name)) if not v])
    m = mapping.users
    active = _read(resource, m["active"])
    user = PortalUser(
        id=str(portal_id),
        user_name=user_name,
        external_id=_string(field_of(resource, "externalId"), "externalId", bad),
        email=_primary_email(_read(resource, m["email"])),
        given_name=_string(_read(resource, m["givenName"]), "name", bad),
        family_name=_string(_read(resource, m["familyName"]), "name", bad),
        display_name=_string(_read(resource, m["displayName"]), "displayName", bad),
        # an account without the attribute is not disabled
        active=active is not False and str(active).lower() != "false",
        role=_role(_string(_read(resource, m["role"]), "role", bad)),
        school_ids=_strings(_read(resource, m["schools"]), "schools", bad),
        grade=_string(_read(resource, m["grade"]), "grade", bad),
        school_names=_strings(_read(resource, m.get("schoolNames")), "schoolNames", bad),
        version=_version(resource),
        created=_created(resource),
        group_ids=_group_ids(resource),
        fidelity=mapping.user_fidelity(),
    )
    if bad:
        raise _fail("user", bad)
    return user


def parse_group(resource: Mapping[str, Any], mapping: AttributeMapping) -> PortalGroup:
    """A SCIM Group resource as a ``PortalGroup`` (members by portal id)."""
    bad: list[str] = []
    portal_id = field_of(resource, "id")
    if not isinstance(portal_id, str | int):
        raise _fail("group", ["id"])
    members = field_of(resource, "members") or []
    if not isinstance(members, list) or not all(
        isinstance(m, Mapping) and field_of(m, "value") for m in members
    ):
        raise _fail("group", ["members"])
    group = PortalGroup(
        id=str(portal_id),
        display_name=_string(field_of(resource, "displayName"), "displayName", bad) or "",
        external_id=_string(field_of(resource, "externalId"), "externalId", bad),
        member_ids=frozenset(str(field_of(m, "value")) for m in members),
        school_id=_string(_read(resource, mapping.groups.get("school")), "school", bad),
        school_name=_string(_read(resource, mapping.groups.get("schoolName")), "schoolName", bad),
        version=_version(resource),
        created=_created(resource),
        fidelity=mapping.group_fidelity(),
    )
    if bad:
        raise _fail("group", bad)
    return group


# --- the model -> SCIM ------------------------------------------------------------------------


def empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def scim_value(name: str, value: Any, target: Target) -> Any:
    """A model value as the SCIM value ``target`` holds."""
    if name == "email":
        return [{"value": value, "type": "work", "primary": True}]
    if name == "active":
        return bool(value)
    if name == "role":
        role = str(value.value if isinstance(value, Role) else value)
        # core userType is free text: the RFC's examples capitalise it
        return role.capitalize() if target.attribute == "userType" else role
    if name in LISTS:
        values = sorted(str(s) for s in value)
        return values if target.multi_valued else values[0]
    return value


def _check(attrs: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    unknown = sorted(set(attrs) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} attributes: {', '.join(unknown)}")


def user_resource(attrs: Mapping[str, Any], mapping: AttributeMapping) -> dict[str, Any]:
    """A SCIM User resource holding ``attrs`` (model names) where the mapping puts them."""
    _check(attrs, USER_FIELDS, "user")
    return _resource(attrs, mapping.users, USER_SCHEMA)


def group_resource(attrs: Mapping[str, Any], mapping: AttributeMapping) -> dict[str, Any]:
    """A SCIM Group resource holding ``attrs`` (model names, plus ``members``: portal ids)."""
    _check(attrs, [*GROUP_FIELDS, "members"], "group")
    resource = _resource(
        {k: v for k, v in attrs.items() if k != "members"}, mapping.groups, GROUP_SCHEMA
    )
    if attrs.get("members"):
        resource["members"] = [{"value": v} for v in attrs["members"]]
    return resource


def _resource(
    attrs: Mapping[str, Any], targets: Mapping[str, Target | None], core: str
) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [core]}
    for name, value in attrs.items():
        target = targets.get(name)
        if target is None or (empty(value) and name != "active"):
            continue
        if target.core:
            holder = resource
        else:
            if target.schema not in resource["schemas"]:
                resource["schemas"].append(target.schema)
            holder = resource.setdefault(target.schema, {})
        *parents, leaf = target.attribute.split(".")
        for parent in parents:
            holder = holder.setdefault(parent, {})
        holder[leaf] = scim_value(name, value, target)
    return resource


def patch_operations(
    changes: Mapping[str, Any], targets: Mapping[str, Target | None], *, skip: Iterable[str] = ()
) -> list[tuple[str, dict[str, Any]]]:
    """(model name, PATCH operation) for ``changes`` that have a home and are not in ``skip``."""
    skipped = set(skip)
    operations: list[tuple[str, dict[str, Any]]] = []
    for name, value in changes.items():
        target = targets.get(name)
        if target is None or name in skipped:
            continue
        if empty(value) and name != "active":
            operations.append((name, {"op": "remove", "path": target.path}))
        else:
            operations.append(
                (
                    name,
                    {
                        "op": "replace",
                        "path": target.path,
                        "value": scim_value(name, value, target),
                    },
                )
            )
    return operations
