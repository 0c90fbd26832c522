"""What the portal serves, described once: attribute definitions (RFC 7643 §2 and §7), the User
and Group resource types with their extensions, and the discovery documents built from them.

Validation, filters, PATCH and attribute selection all read these definitions, so what
``/Schemas`` says is what the server does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"

#: the most resources one list answer holds (``filter.maxResults`` in ServiceProviderConfig)
MAX_RESULTS = 1000
ROLES = ("student", "teacher")


@dataclass(frozen=True)
class Attr:
    """One attribute definition, with the characteristics of RFC 7643 §2.2."""

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    sub: tuple[Attr, ...] = ()
    canonical: tuple[str, ...] = ()
    #: only the canonical values are accepted (RFC 7643 lets a provider restrict them)
    closed: bool = False
    reference_types: tuple[str, ...] = ()
    description: str = ""
    _sub_index: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._sub_index.update({s.name.lower(): s for s in self.sub})

    def sub_attr(self, name: str) -> Attr | None:
        """The sub-attribute called ``name`` (attribute names are case-insensitive)."""
        return self._sub_index.get(name.lower())

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    def to_scim(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
        }
        if self.type in ("string", "reference", "binary"):
            doc["caseExact"] = self.case_exact
        if self.canonical:
            doc["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            doc["referenceTypes"] = list(self.reference_types)
        doc.update(mutability=self.mutability, returned=self.returned, uniqueness=self.uniqueness)
        if self.sub:
            doc["subAttributes"] = [s.to_scim() for s in self.sub]
        return doc


@dataclass(frozen=True)
class Schema:
    """A schema: its URN, name and top-level attributes."""

    id: str
    name: str
    description: str
    attrs: tuple[Attr, ...]
    _index: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({a.name.lower(): a for a in self.attrs})

    def attr(self, name: str) -> Attr | None:
        return self._index.get(name.lower())

    def to_scim(self, base_url: str) -> dict[str, Any]:
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attrs],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


def _multi_complex(name: str, *sub: Attr, description: str = "") -> Attr:
    return Attr(name, "complex", multi=True, sub=sub, description=description)


_TYPE = Attr("type", canonical=("work", "home", "other"), description="A label for the value.")
_PRIMARY = Attr("primary", "boolean", description="The primary value; true at most once.")
_DISPLAY = Attr("display", description="A human-readable name.")
_READ_DISPLAY = Attr("display", mutability="readOnly", description="A human-readable name.")

USER = Schema(
    USER_SCHEMA,
    "User",
    "A person: a student or a teacher.",
    (
        Attr("userName", required=True, uniqueness="server", description="Sign-in name."),
        Attr(
            "name",
            "complex",
            sub=(
                Attr("formatted"),
                Attr("familyName"),
                Attr("givenName"),
                Attr("middleName"),
                Attr("honorificPrefix"),
                Attr("honorificSuffix"),
            ),
            description="The components of the person's name.",
        ),
        Attr("displayName"),
        Attr("nickName"),
        Attr("title"),
        Attr("userType", description="The person's relation to the school, e.g. Student."),
        Attr("preferredLanguage"),
        Attr("locale"),
        Attr("timezone"),
        Attr("active", "boolean", description="Whether the person may sign in."),
        _multi_complex(
            "emails",
            Attr("value", description="An e-mail address."),
            _DISPLAY,
            _TYPE,
            _PRIMARY,
            description="E-mail addresses; the portal finds accounts by them.",
        ),
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=(
                Attr("value", case_exact=True, mutability="readOnly"),
                Attr("$ref", "reference", mutability="readOnly", reference_types=("User", "Group")),
                _READ_DISPLAY,
                Attr("type", mutability="readOnly", canonical=("direct", "indirect")),
            ),
            description="The groups the person is a member of (read-only; change Group.members).",
        ),
    ),
)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User",
    (
        Attr("employeeNumber"),
        Attr("costCenter"),
        Attr("organization"),
        Attr("division"),
        Attr("department"),
        Attr(
            "manager",
            "complex",
            sub=(
                Attr("value"),
                Attr("$ref", "reference", reference_types=("User",)),
                Attr("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

SCHOOL_USER = Schema(
    SCHOOL_USER_SCHEMA,
    "SchoolUser",
    "A student's or teacher's place in the schools (School Data Sync).",
    (
        Attr("role", canonical=ROLES, closed=True, description="student or teacher."),
        Attr("schools", multi=True, case_exact=True, description="SDS school ids."),
        Attr("schoolNames", multi=True, description="What SDS calls those schools."),
        Attr("grade", description="The grade (årskurs) of a student, when SDS has it."),
    ),
)

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "A class, or a group made by hand in the portal.",
    (
        Attr("displayName", required=True),
        Attr(
            "members",
            "complex",
            multi=True,
            sub=(
                Attr("value", case_exact=True, mutability="immutable", description="A User id."),
                Attr("$ref", "reference", mutability="immutable", reference_types=("User",)),
                Attr("type", mutability="immutable", canonical=("User",)),
            ),
            description="Users of the same organisation (groups cannot be members).",
        ),
    ),
)

SCHOOL_GROUP = Schema(
    SCHOOL_GROUP_SCHEMA,
    "SchoolGroup",
    "The school a class belongs to (School Data Sync).",
    (
        Attr("school", case_exact=True, description="The SDS school id."),
        Attr("schoolName", description="What SDS calls that school."),
    ),
)

#: attributes every resource has (RFC 7643 §3.1); not part of any schema document
COMMON = Schema(
    "common",
    "Common",
    "Common attributes",
    (
        Attr("id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"),
        Attr("externalId", case_exact=True),
        Attr(
            "meta",
            "complex",
            mutability="readOnly",
            sub=(
                Attr("resourceType", case_exact=True, mutability="readOnly"),
                Attr("created", "dateTime", mutability="readOnly"),
                Attr("lastModified", "dateTime", mutability="readOnly"),
                Attr("location", "reference", case_exact=True, mutability="readOnly"),
                Attr("version", case_exact=True, mutability="readOnly"),
            ),
        ),
        Attr("schemas", "reference", multi=True, mutability="readOnly", returned="always"),
    ),
)


@dataclass(frozen=True)
class ResourceKind:
    """A resource type: its endpoint, core schema and extensions."""

    name: str
    endpoint: str
    description: str
    core: Schema
    extensions: tuple[Schema, ...]

    def schemas(self) -> Iterable[Schema]:
        yield self.core
        yield from self.extensions

    def extension(self, urn: str) -> Schema | None:
        for ext in self.extensions:
            if ext.id.lower() == urn.lower():
                return ext
        return None

    def schema_for_urn(self, urn: str) -> Schema | None:
        if urn.lower() == self.core.id.lower():
            return self.core
        return self.extension(urn)

    def split_urn(self, text: str) -> tuple[Schema | None, str]:
        """Split ``urn:...:User:name.sub`` into its schema and the rest (``""`` for a bare URN).

        Text without a URN prefix belongs to the core schema. An unknown URN gives ``None``.
        """
        if not text.lower().startswith("urn:"):
            return self.core, text
        for schema in sorted(self.schemas(), key=lambda s: -len(s.id)):
            prefix = schema.id.lower()
            lowered = text.lower()
            if lowered == prefix:
                return schema, ""
            if lowered.startswith(prefix + ":"):
                return schema, text[len(prefix) + 1 :]
        return None, text

    def to_scim(self, base_url: str) -> dict[str, Any]:
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": [{"schema": e.id, "required": False} for e in self.extensions],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url}/ResourceTypes/{self.name}",
            },
        }


USERS = ResourceKind(
    "User", "/Users", "Students and teachers", USER, (ENTERPRISE_USER, SCHOOL_USER)
)
GROUPS = ResourceKind("Group", "/Groups", "Classes and manual groups", GROUP, (SCHOOL_GROUP,))
KINDS = (USERS, GROUPS)
ALL_SCHEMAS = (USER, ENTERPRISE_USER, SCHOOL_USER, GROUP, SCHOOL_GROUP)


def service_provider_config(base_url: str) -> dict[str, Any]:
    """What this server supports (RFC 7643 §5)."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": f"{base_url}/ServiceProviderConfig",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The organisation's bearer token in the Authorization header.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }
