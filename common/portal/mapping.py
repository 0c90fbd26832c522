"""Where Skolsynk's attributes go on one SCIM server, and the codec between the model and SCIM.

Owns ``AttributeMapping`` (model attribute -> the declared SCIM attribute that holds it, or
nothing), ``build_mapping`` (the default for a server's ``Capabilities``, with a per-portal
override), ``parse_overrides``, and the codec: SCIM resources -> ``PortalUser``/``PortalGroup``,
model attributes -> SCIM resources and PATCH operations. Only declared, writable attributes are
ever sent (RFC 7643 §3: a resource's ``schemas`` hold only declared schemas).

Failure policy: a resource the codec cannot read raises ``PortalRequestError`` naming the
attributes at fault (never the body); an override naming an unknown model attribute or an
attribute the server does not declare raises ``ValueError`` with a sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.errors import NeedsAttention, PortalRequestError
from common.model import Fidelity, PortalGroup, PortalUser, Role
from common.portal.discovery import Capabilities, ResourceKind
from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)

USER_FIELDS = (
    "userName",
    "externalId",
    "displayName",
    "givenName",
    "familyName",
    "active",
    "email",
    "role",
    "schools",
    "grade",
)
GROUP_FIELDS = ("displayName", "externalId", "school")
#: model attributes the sync cannot work without: never turned off, always in the core schema
REQUIRED = frozenset({"userName", "externalId", "displayName", "active"})
#: attributes a server may canonicalise in letter case, compared as its caseExact says
CASE_SENSITIVE_CANDIDATES = {"userName": "userName", "email": "emails.value"}
OFF = "off"

_CORE_USER = {
    "userName": "userName",
    "externalId": "externalId",
    "displayName": "displayName",
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "active": "active",
    "email": "emails",
}
_CORE_GROUP = {"displayName": "displayName", "externalId": "externalId"}


@dataclass(frozen=True)
class Target:
    """A SCIM attribute: its schema URN and name (``a`` or ``a.b``), and whether it is a list."""

    schema: str
    attribute: str
    multi_valued: bool = False

    @property
    def core(self) -> bool:
        return self.schema in (USER_SCHEMA, GROUP_SCHEMA)

    @property
    def path(self) -> str:
        """The PATCH path (RFC 7644 §3.5.2): bare for core, URN-prefixed for an extension."""
        return self.attribute if self.core else f"{self.schema}:{self.attribute}"

    def describe(self) -> str:
        return self.attribute if self.core else f"{self.schema}:{self.attribute}"


@dataclass(frozen=True)
class AttributeMapping:
    """Model attribute -> ``Target`` (``None``: this portal has no home for it, not sent)."""

    users: Mapping[str, Target | None]
    groups: Mapping[str, Target | None]
    #: model attributes whose values the server compares without letter case
    case_insensitive: frozenset[str] = frozenset()
    #: sentences on what is not sent and why
    notes: tuple[str, ...] = field(default=())

    def unheld(self) -> list[str]:
        """Model attributes (users, then groups) this portal cannot hold."""
        users = [f for f in USER_FIELDS if self.users.get(f) is None]
        groups = [f"class {f}" for f in GROUP_FIELDS if self.groups.get(f) is None]
        return users + groups

    def user_fidelity(self) -> Fidelity:
        return Fidelity(
            unheld=frozenset(f for f in USER_FIELDS if self.users.get(f) is None),
            first_only=frozenset(
                f
                for f in ("schools",)
                if (t := self.users.get(f)) is not None and not t.multi_valued
            ),
            case_insensitive=self.case_insensitive,
        )

    def group_fidelity(self) -> Fidelity:
        return Fidelity(unheld=frozenset(f for f in GROUP_FIELDS if self.groups.get(f) is None))

    def table(self) -> list[tuple[str, str]]:
        """(model attribute, where it goes) for people to read."""
        rows = [(f, _where(self.users.get(f))) for f in USER_FIELDS]
        rows += [(f"class {f}", _where(self.groups.get(f))) for f in GROUP_FIELDS]
        rows.append(("class members", "members"))
        return rows


def _where(target: Target | None) -> str:
    return "not sent" if target is None else target.describe()


# --- building the mapping ---------------------------------------------------------------------


def parse_overrides(text: str) -> dict[str, str]:
    """``role=urn:x:User:kind, grade=off`` as ``{"role": "urn:x:User:kind", "grade": "off"}``."""
    overrides: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"a mapping is NAME=ATTRIBUTE or NAME=off, not {part!r}")
        known = {*USER_FIELDS, *(f"class.{f}" for f in GROUP_FIELDS)}
        if name not in known:
            raise ValueError(
                f"unknown attribute {name!r} in the mapping; known: {', '.join(sorted(known))}"
            )
        if name in REQUIRED:
            raise ValueError(f"{name} is always sent to its core attribute; it cannot be mapped")
        overrides[name] = value
    return overrides


def mapping_overrides(text: str) -> dict[str, str]:
    """``parse_overrides`` for a stored mapping: a bad one is a ``NeedsAttention`` sentence."""
    try:
        return parse_overrides(text)
    except ValueError as exc:
        raise NeedsAttention(
            f"The portal's attribute mapping {text!r} cannot be used: {exc}.",
            hint="Fix it with `skolsynk tenant set TENANT --test-mapping ...` (or production).",
        ) from None


def _split(value: str, core: str) -> tuple[str, str]:
    """``urn:...:Schema:attr`` -> (urn, attr); a bare name is an attribute of ``core``."""
    if value.lower().startswith("urn:"):
        urn, _, attr = value.rpartition(":")
        return urn, attr
    return core, value


def _target(kind: ResourceKind, urn: str, name: str) -> Target | None:
    """The declared, writable attribute, or ``None``."""
    if not kind.declares(urn):
        return None
    attribute = kind.attribute(urn, name)
    if attribute is None or not attribute.writable:
        return None
    # the schema's own spelling of names (RFC 7643 names are case-insensitive, servers vary)
    declared = next(s for s in (kind.schema, *kind.extensions) if s.lower() == urn.lower())
    return Target(declared, name, attribute.multi_valued)


def build_mapping(
    caps: Capabilities, overrides: Mapping[str, str] | None = None
) -> AttributeMapping:
    """The mapping for a server: the school extension where declared, else the RFC's homes."""
    overrides = dict(overrides or {})
    users, groups = caps.users, caps.groups
    notes: list[str] = []
    user_map: dict[str, Target | None] = {}
    for name, attr in _CORE_USER.items():
        user_map[name] = _target(users, users.schema, attr) or (
            Target(users.schema, attr) if name in REQUIRED else None
        )
    school = users.declares(SCHOOL_USER_SCHEMA)
    user_map["role"] = (
        _target(users, SCHOOL_USER_SCHEMA, "role")
        if school
        else _target(users, users.schema, "userType")
    )
    user_map["schools"] = (
        _target(users, SCHOOL_USER_SCHEMA, "schools")
        if school
        else _target(users, ENTERPRISE_USER_SCHEMA, "organization")
    )
    user_map["grade"] = _target(users, SCHOOL_USER_SCHEMA, "grade") if school else None
    group_map: dict[str, Target | None] = {
        name: _target(groups, groups.schema, attr) or Target(groups.schema, attr)
        for name, attr in _CORE_GROUP.items()
    }
    group_map["school"] = _target(groups, SCHOOL_GROUP_SCHEMA, "school")

    for name, value in overrides.items():
        table, kind = (group_map, groups) if name.startswith("class.") else (user_map, users)
        key = name.removeprefix("class.")
        if value.lower() == OFF:
            table[key] = None
            continue
        urn, attr = _split(value, kind.schema)
        target = _target(kind, urn, attr)
        if target is None and not caps.endpoints.get("Schemas") and kind.declares(urn):
            # a server without /Schemas cannot say; the administrator's mapping is trusted
            target = Target(urn, attr)
        if target is None:
            raise ValueError(
                f"the mapping sends {name} to {value}, which this portal does not declare as "
                f"a writable attribute of its {kind.endpoint.strip('/')}"
            )
        table[key] = target
    for name in [*USER_FIELDS]:
        if user_map.get(name) is None:
            notes.append(
                f"this portal has no attribute for {_WORDS.get(name, name)}; it is not sent"
            )
    if group_map.get("school") is None:
        notes.append("this portal has no attribute for a class's school; it is not sent")
    insensitive = frozenset(
        name
        for name, path in CASE_SENSITIVE_CANDIDATES.items()
        if (a := users.attribute(users.schema, path)) is None or not a.case_exact
    )
    return AttributeMapping(user_map, group_map, insensitive, tuple(notes))


_WORDS = {
    "givenName": "given name",
    "familyName": "family name",
    "email": "e-mail",
    "role": "role (student or teacher)",
    "schools": "school",
    "grade": "grade",
}


# --- SCIM resources -> the model --------------------------------------------------------------


def _get(data: Any, name: str) -> Any:
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
    holder: Any = resource if target.core else _get(resource, target.schema)
    for part in target.attribute.split("."):
        holder = _get(holder, part)
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
        [e for e in emails if isinstance(e, Mapping) and _get(e, "value")]
        if isinstance(emails, list)
        else []
    )
    for email in values:
        if str(_get(email, "primary")).lower() == "true":
            return str(_get(email, "value"))
    return str(_get(values[0], "value")) if values else None


def _version(resource: Mapping[str, Any]) -> str | None:
    version = _get(_get(resource, "meta"), "version")
    return str(version) if version else None


def _created(resource: Mapping[str, Any]) -> str | None:
    """``meta.created`` (xsd:dateTime): which of several copies is the oldest."""
    created = _get(_get(resource, "meta"), "created")
    return str(created) if created else None


def _group_ids(resource: Mapping[str, Any]) -> frozenset[str]:
    """The portal ids of the groups a user is a member of, where the server says (``groups``)."""
    groups = _get(resource, "groups")
    if not isinstance(groups, list):
        return frozenset()
    return frozenset(
        str(_get(g, "value")) for g in groups if isinstance(g, Mapping) and _get(g, "value")
    )


def _fail(what: str, bad: Iterable[str]) -> PortalRequestError:
    names = ", ".join(sorted(set(bad))) or "?"
    return PortalRequestError(
        f"the portal sent a {what} the sync cannot read (attributes: {names})"
    )


def parse_user(resource: Mapping[str, Any], mapping: AttributeMapping) -> PortalUser:
    """A SCIM User resource as a ``PortalUser``, read from where ``mapping`` puts each value."""
    bad: list[str] = []
    portal_id, user_name = _get(resource, "id"), _get(resource, "userName")
    if not isinstance(portal_id, str | int) or not isinstance(user_name, str):
        raise _fail("user", [n for n, v in (("id", portal_id), ("userName", user_name)) if not v])
    m = mapping.users
    active = _read(resource, m["active"])
    user = PortalUser(
        id=str(portal_id),
        user_name=user_name,
        external_id=_string(_get(resource, "externalId"), "externalId", bad),
        email=_primary_email(_read(resource, m["email"])),
        given_name=_string(_read(resource, m["givenName"]), "name", bad),
        family_name=_string(_read(resource, m["familyName"]), "name", bad),
        display_name=_string(_read(resource, m["displayName"]), "displayName", bad),
        # an account without the attribute is not disabled
        active=active is not False and str(active).lower() != "false",
        role=_role(_string(_read(resource, m["role"]), "role", bad)),
        school_ids=_strings(_read(resource, m["schools"]), "schools", bad),
        grade=_string(_read(resource, m["grade"]), "grade", bad),
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
    portal_id = _get(resource, "id")
    if not isinstance(portal_id, str | int):
        raise _fail("group", ["id"])
    members = _get(resource, "members") or []
    if not isinstance(members, list) or not all(
        isinstance(m, Mapping) and _get(m, "value") for m in members
    ):
        raise _fail("group", ["members"])
    group = PortalGroup(
        id=str(portal_id),
        display_name=_string(_get(resource, "displayName"), "displayName", bad) or "",
        external_id=_string(_get(resource, "externalId"), "externalId", bad),
        member_ids=frozenset(str(_get(m, "value")) for m in members),
        school_id=_string(_read(resource, mapping.groups.get("school")), "school", bad),
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
    if name == "schools":
        schools = sorted(str(s) for s in value)
        return schools if target.multi_valued else schools[0]
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
