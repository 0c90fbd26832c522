"""What one SCIM server supports, read from its discovery endpoints (RFC 7644 §4).

Owns ``Capabilities`` (schemas and extensions per resource type, attribute characteristics,
filter, paging, PATCH, ETag, Bulk and sort support) and ``discover``, which builds them from
``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas``.

Failure policy: each endpoint may be missing (404, 501, not JSON, not the right shape): the
server is then taken to keep the RFC's defaults for what that endpoint would have said, and a
sentence in ``Capabilities.notes`` says so. Nothing here raises for a server's omission; the
caller decides whether a server with none of them is a SCIM server at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)

#: one discovery read: the endpoint's JSON object, or ``None`` when the server has none
Fetch = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Attribute:
    """One attribute's characteristics (RFC 7643 §7), with the RFC's defaults."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    uniqueness: str = "none"
    sub: Mapping[str, Attribute] = field(default_factory=dict)  # lower-case name -> attribute

    @property
    def writable(self) -> bool:
        return self.mutability in ("readWrite", "writeOnly", "immutable")


def _core(name: str, **kw: Any) -> Attribute:
    return Attribute(name, **kw)


_EMAIL_SUB = {
    "value": _core("value"),
    "type": _core("type"),
    "primary": _core("primary", type="boolean"),
}
#: RFC 7643 §4.1 and §4.2: what a server without /Schemas is taken to hold
RFC_USER_ATTRIBUTES: dict[str, Attribute] = {
    "username": _core("userName", uniqueness="server"),
    "externalid": _core("externalId", case_exact=True),
    "name": _core(
        "name",
        type="complex",
        sub={"givenname": _core("givenName"), "familyname": _core("familyName")},
    ),
    "displayname": _core("displayName"),
    "usertype": _core("userType"),
    "active": _core("active", type="boolean"),
    "emails": _core("emails", type="complex", multi_valued=True, sub=_EMAIL_SUB),
}
RFC_GROUP_ATTRIBUTES: dict[str, Attribute] = {
    "displayname": _core("displayName"),
    "externalid": _core("externalId", case_exact=True),
    "members": _core(
        "members",
        type="complex",
        multi_valued=True,
        sub={"value": _core("value", case_exact=True, mutability="immutable")},
    ),
}
#: what the extensions we know hold, for a server that declares one but has no /Schemas
KNOWN_EXTENSIONS: dict[str, dict[str, Attribute]] = {
    ENTERPRISE_USER_SCHEMA: {"organization": _core("organization")},
    SCHOOL_USER_SCHEMA: {
        "role": _core("role"),
        "schools": _core("schools", multi_valued=True),
        "schoolnames": _core("schoolNames", multi_valued=True),
        "grade": _core("grade"),
    },
    SCHOOL_GROUP_SCHEMA: {"school": _core("school"), "schoolname": _core("schoolName")},
}


@dataclass(frozen=True)
class ResourceKind:
    """One resource type: its endpoint, core schema, declared extensions and attributes."""

    endpoint: str
    schema: str
    extensions: tuple[str, ...] = ()
    #: schema URN -> lower-case attribute name -> attribute
    attributes: Mapping[str, Mapping[str, Attribute]] = field(default_factory=dict)

    def declares(self, urn: str) -> bool:
        return urn.lower() in {self.schema.lower(), *(e.lower() for e in self.extensions)}

    def attribute(self, urn: str, name: str) -> Attribute | None:
        """The attribute ``name`` (``a`` or ``a.b``) of schema ``urn``, if the server has it."""
        for schema, attrs in self.attributes.items():
            if schema.lower() != urn.lower():
                continue
            head, _, tail = name.lower().partition(".")
            found = attrs.get(head)
            if found is not None and tail:
                return found.sub.get(tail)
            return found
        return None


@dataclass(frozen=True)
class Capabilities:
    """What one SCIM server says it supports (or, where it says nothing, the RFC defaults)."""

    users: ResourceKind
    groups: ResourceKind
    filter_supported: bool = True
    max_results: int | None = None
    patch: bool = True
    etag: bool = False
    bulk: bool = False
    sort: bool = False
    #: which of the three discovery endpoints answered
    endpoints: Mapping[str, bool] = field(default_factory=dict)
    #: sentences on what the server did not say and what is assumed instead
    notes: tuple[str, ...] = ()


def _flag(config: Mapping[str, Any], name: str, default: bool) -> bool:
    value = _get(config, name)
    supported = _get(value, "supported") if isinstance(value, Mapping) else None
    return supported if isinstance(supported, bool) else default


def _get(data: Any, name: str) -> Any:
    """``data[name]``, names compared case-insensitively (RFC 7643 §2.1)."""
    if not isinstance(data, Mapping):
        return None
    for key, value in data.items():
        if str(key).lower() == name.lower():
            return value
    return None


def _resources(answer: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
    """The items of a discovery listing (a ListResponse, or a bare list some servers send)."""
    if answer is None:
        return None
    items = _get(answer, "Resources")
    if isinstance(items, list):
        return [i for i in items if isinstance(i, Mapping)]
    return None


def _attribute(data: Mapping[str, Any]) -> Attribute | None:
    name = _get(data, "name")
    if not isinstance(name, str) or not name:
        return None
    subs = _get(data, "subAttributes")
    sub = {}
    for item in subs if isinstance(subs, list) else ():
        parsed = _attribute(item) if isinstance(item, Mapping) else None
        if parsed is not None:
            sub[parsed.name.lower()] = parsed
    if name.lower() == "emails" and "value" not in sub:
        sub = {**_EMAIL_SUB, **sub}
    case_exact = _get(data, "caseExact")
    multi = _get(data, "multiValued")
    return Attribute(
        name=name,
        type=str(_get(data, "type") or "string"),
        multi_valued=multi if isinstance(multi, bool) else False,
        case_exact=case_exact if isinstance(case_exact, bool) else False,
        mutability=str(_get(data, "mutability") or "readWrite"),
        uniqueness=str(_get(data, "uniqueness") or "none"),
        sub=sub,
    )


def _schemas(items: list[Mapping[str, Any]]) -> dict[str, dict[str, Attribute]]:
    schemas: dict[str, dict[str, Attribute]] = {}
    for item in items:
        urn = _get(item, "id")
        attrs = _get(item, "attributes")
        if not isinstance(urn, str) or not isinstance(attrs, list):
            continue
        parsed = [_attribute(a) for a in attrs if isinstance(a, Mapping)]
        schemas[urn] = {a.name.lower(): a for a in parsed if a is not None}
    return schemas


def _kind(
    name: str,
    types: list[Mapping[str, Any]] | None,
    schemas: dict[str, dict[str, Attribute]] | None,
    notes: list[str],
) -> ResourceKind:
    core, endpoint, rfc = (
        (USER_SCHEMA, "/Users", RFC_USER_ATTRIBUTES)
        if name == "User"
        else (GROUP_SCHEMA, "/Groups", RFC_GROUP_ATTRIBUTES)
    )
    extensions: list[str] = []
    if types is not None:
        declared = next(
            (
                t
                for t in types
                if str(_get(t, "name") or _get(t, "id") or "").lower() == name.lower()
            ),
            None,
        )
        if declared is None:
            notes.append(f"/ResourceTypes lists no {name} type: taken as {endpoint} with {core}")
        else:
            core = str(_get(declared, "schema") or core)
            endpoint = str(_get(declared, "endpoint") or endpoint)
            for ext in _get(declared, "schemaExtensions") or ():
                urn = _get(ext, "schema")
                if isinstance(urn, str):
                    extensions.append(urn)
    attributes: dict[str, Mapping[str, Attribute]] = {}
    for urn in (core, *extensions):
        if schemas is not None and urn in schemas:
            attributes[urn] = schemas[urn]
        elif urn == core:
            attributes[urn] = rfc
        elif urn in KNOWN_EXTENSIONS:
            attributes[urn] = KNOWN_EXTENSIONS[urn]
    if schemas is not None and core in schemas and core in (USER_SCHEMA, GROUP_SCHEMA):
        # externalId is common to every resource (RFC 7643 §3.1), rarely listed in /Schemas
        attributes[core] = {"externalid": rfc["externalid"], **attributes[core]}
    return ResourceKind(endpoint, core, tuple(extensions), attributes)


def discover(fetch: Fetch) -> Capabilities:
    """The capabilities of the server ``fetch`` reads from (each endpoint may be missing)."""
    notes: list[str] = []
    config = fetch("ServiceProviderConfig")
    types = _resources(fetch("ResourceTypes"))
    schema_items = _resources(fetch("Schemas"))
    schemas = _schemas(schema_items) if schema_items is not None else None
    if config is None:
        notes.append(
            "no /ServiceProviderConfig: filters and PATCH assumed, no ETags, Bulk or sorting"
        )
        config = {}
    if types is None:
        notes.append("no /ResourceTypes: Users and Groups assumed, with no extensions")
    if schemas is None:
        notes.append("no /Schemas: the attributes of RFC 7643 assumed")
    limit = _get(_get(config, "filter"), "maxResults")
    return Capabilities(
        users=_kind("User", types, schemas, notes),
        groups=_kind("Group", types, schemas, notes),
        filter_supported=_flag(config, "filter", True),
        max_results=limit if isinstance(limit, int) and limit > 0 else None,
        patch=_flag(config, "patch", True),
        etag=_flag(config, "etag", False),
        bulk=_flag(config, "bulk", False),
        sort=_flag(config, "sort", False),
        endpoints={
            "ServiceProviderConfig": bool(config),
            "ResourceTypes": types is not None,
            "Schemas": schemas is not None,
        },
        notes=tuple(notes),
    )
