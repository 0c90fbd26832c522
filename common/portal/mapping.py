"""Where Skolsynk's attributes go on one SCIM server.

Owns ``AttributeMapping`` (model attribute -> the declared SCIM attribute that holds it, or
nothing), ``build_mapping`` (the default for a server's ``Capabilities``, with a per-portal
override) and ``parse_overrides``. Only declared, writable attributes are ever sent (RFC 7643
§3: a resource's ``schemas`` hold only declared schemas); ``common.portal.codec`` writes them.

Failure policy: an override naming an unknown model attribute or an attribute the server does
not declare raises ``ValueError`` with a sentence (``mapping_overrides``: ``NeedsAttention``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.errors import NeedsAttention
from common.model import Fidelity
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
    "schoolNames",
    "grade",
)
GROUP_FIELDS = ("displayName", "externalId", "school", "schoolName")
#: multi-valued model attributes a single-valued home holds the first (sorted) value of
LISTS = ("schools", "schoolNames")
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
                f for f in LISTS if (t := self.users.get(f)) is not None and not t.multi_valued
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
    # without the school extension, the enterprise organization holds the (first) school's
    # name: what a person reads there, and what SDS calls the school
    user_map["schools"] = _target(users, SCHOOL_USER_SCHEMA, "schools") if school else None
    user_map["schoolNames"] = (
        _target(users, SCHOOL_USER_SCHEMA, "schoolNames")
        if school
        else _target(users, ENTERPRISE_USER_SCHEMA, "organization")
    )
    user_map["grade"] = _target(users, SCHOOL_USER_SCHEMA, "grade") if school else None
    group_map: dict[str, Target | None] = {
        name: _target(groups, groups.schema, attr) or Target(groups.schema, attr)
        for name, attr in _CORE_GROUP.items()
    }
    group_map["school"] = _target(groups, SCHOOL_GROUP_SCHEMA, "school")
    group_map["schoolName"] = _target(groups, SCHOOL_GROUP_SCHEMA, "schoolName")

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
    for name, words in (("school", "a class's school"), ("schoolName", "a class's school name")):
        if group_map.get(name) is None:
            notes.append(f"this portal has no attribute for {words}; it is not sent")
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
    "schools": "school ids",
    "schoolNames": "school names",
    "grade": "grade",
}
