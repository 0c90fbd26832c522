"""The shape of what the sandbox serves: properties of users, groups and education objects.

It says which properties exist, which ones Graph returns without ``$select`` (extension
attributes never are), which can be written and with what type, and which directory extension
attributes are registered (the classic SDS ones) and so may be written.

Failure policy: an unknown, read-only or badly typed property raises ``GraphError`` 400 with
Graph's wording; nothing is changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from common.graph import sds
from sandbox.graph.errors import GraphError, bad_request
from sandbox.graph.store import USER, DirObject, School

EXTENSION_NAME = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")

#: the directory extension attributes SDS registers; these may be written
REGISTERED_EXTENSIONS = frozenset(
    [
        value
        for name, value in vars(sds).items()
        if name.isupper() and isinstance(value, str) and value.startswith(sds.PREFIX)
    ]
    + [
        sds.PREFIX + suffix
        for suffix in (
            "SyncSource",
            "SyncSource_TermId",
            "SyncSource_CourseId",
            "Status",
            "MiddleName",
            "GraduationYear",
            "StateId",
            "SectionNumber",
            "CourseName",
            "CourseDescription",
            "CourseSubject",
            "TermStartDate",
            "TermEndDate",
            "Title",
            "Qualification",
        )
    ]
)

STR, BOOL, STRLIST, OBJ, READONLY = "str", "bool", "strlist", "obj", "readonly"

USER_PROPERTIES: dict[str, str] = {
    "id": READONLY,
    "accountEnabled": BOOL,
    "businessPhones": STRLIST,
    "city": STR,
    "companyName": STR,
    "country": STR,
    "createdDateTime": READONLY,
    "creationType": READONLY,
    "deletedDateTime": READONLY,
    "department": STR,
    "displayName": STR,
    "employeeId": STR,
    "employeeType": STR,
    "externalUserState": READONLY,
    "givenName": STR,
    "jobTitle": STR,
    "mail": STR,
    "mailNickname": STR,
    "mobilePhone": STR,
    "officeLocation": STR,
    "otherMails": STRLIST,
    "passwordProfile": OBJ,
    "preferredLanguage": STR,
    "proxyAddresses": READONLY,
    "surname": STR,
    "usageLocation": STR,
    "userPrincipalName": STR,
    "userType": STR,
}
USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_REQUIRED = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName")
#: properties that are never returned, even when selected
WRITE_ONLY = frozenset({"passwordProfile"})

GROUP_PROPERTIES: dict[str, str] = {
    "id": READONLY,
    "classification": STR,
    "createdDateTime": READONLY,
    "deletedDateTime": READONLY,
    "description": STR,
    "displayName": STR,
    "expirationDateTime": READONLY,
    "groupTypes": STRLIST,
    "isAssignableToRole": BOOL,
    "mail": READONLY,
    "mailEnabled": BOOL,
    "mailNickname": STR,
    "membershipRule": STR,
    "membershipRuleProcessingState": STR,
    "onPremisesSyncEnabled": READONLY,
    "preferredLanguage": STR,
    "proxyAddresses": READONLY,
    "renewedDateTime": READONLY,
    "resourceBehaviorOptions": STRLIST,
    "resourceProvisioningOptions": READONLY,
    "securityEnabled": BOOL,
    "securityIdentifier": READONLY,
    "theme": STR,
    "visibility": STR,
}
GROUP_DEFAULT_SELECT = tuple(GROUP_PROPERTIES)
GROUP_REQUIRED = ("displayName", "mailEnabled", "mailNickname", "securityEnabled")
LIST_DEFAULTS = frozenset(
    {
        "businessPhones",
        "otherMails",
        "proxyAddresses",
        "groupTypes",
        "resourceBehaviorOptions",
        "resourceProvisioningOptions",
    }
)

EDUCATION_USER_FIELDS = (
    "id",
    "accountEnabled",
    "businessPhones",
    "department",
    "displayName",
    "externalSource",
    "externalSourceDetail",
    "givenName",
    "mail",
    "mailNickname",
    "middleName",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "primaryRole",
    "student",
    "surname",
    "teacher",
    "usageLocation",
    "userPrincipalName",
    "userType",
)
EDUCATION_CLASS_FIELDS = (
    "id",
    "classCode",
    "course",
    "createdBy",
    "description",
    "displayName",
    "externalId",
    "externalName",
    "externalSource",
    "externalSourceDetail",
    "grade",
    "mailNickname",
    "term",
)
EDUCATION_SCHOOL_FIELDS = (
    "id",
    "address",
    "createdBy",
    "description",
    "displayName",
    "externalId",
    "externalPrincipalId",
    "externalSource",
    "externalSourceDetail",
    "highestGrade",
    "lowestGrade",
    "phone",
    "principalEmail",
    "principalName",
    "schoolNumber",
)


def properties_of(kind: str) -> dict[str, str]:
    return USER_PROPERTIES if kind == USER else GROUP_PROPERTIES


def type_name(kind: str) -> str:
    return "microsoft.graph.user" if kind == USER else "microsoft.graph.group"


def resource_name(kind: str) -> str:
    return "User" if kind == USER else "Group"


def check_select(names: Iterable[str], known: Iterable[str], entity: str) -> None:
    """400 for a ``$select`` name the entity does not have (extension names always pass)."""
    known_set = set(known)
    for name in names:
        if name not in known_set and not EXTENSION_NAME.match(name):
            raise GraphError(
                400,
                "BadRequest",
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{name}' on type '{entity}'.",
            )


def project(obj: DirObject, select: tuple[str, ...] | None) -> dict[str, Any]:
    """A user or group as Graph returns it: default properties, or exactly those selected."""
    fields = select or (USER_DEFAULT_SELECT if obj.kind == USER else GROUP_DEFAULT_SELECT)
    props = obj.props
    out: dict[str, Any] = {}
    for name in fields:
        if name == "id":
            out["id"] = obj.id
        elif name == "deletedDateTime":
            out[name] = obj.deleted
        elif name in WRITE_ONLY or name == "members":
            continue
        elif name.startswith("extension_"):
            if name in props:  # unset extension attributes are left out, as Graph does
                out[name] = props[name]
        else:
            out[name] = props.get(name, [] if name in LIST_DEFAULTS else None)
    if "id" not in out:
        out["id"] = obj.id
    return out


def education_user(obj: DirObject) -> dict[str, Any]:
    edu = obj.edu or {}
    props = obj.props
    out: dict[str, Any] = {}
    for name in EDUCATION_USER_FIELDS:
        if name == "id":
            out[name] = obj.id
        elif name == "primaryRole":
            out[name] = edu.get("primaryRole", "none")
        elif name in ("externalSource", "externalSourceDetail", "student", "teacher", "middleName"):
            out[name] = edu.get(name)
        else:
            out[name] = props.get(name, [] if name in LIST_DEFAULTS else None)
    return out


def education_class(obj: DirObject) -> dict[str, Any]:
    edu = obj.edu or {}
    out: dict[str, Any] = {}
    for name in EDUCATION_CLASS_FIELDS:
        if name == "id":
            out[name] = obj.id
        elif name in ("displayName", "description", "mailNickname"):
            out[name] = obj.props.get(name)
        else:
            out[name] = edu.get(name)
    return out


def education_school(school: School) -> dict[str, Any]:
    out: dict[str, Any] = {"id": school.id}
    for name in EDUCATION_SCHOOL_FIELDS[1:]:
        out[name] = school.props.get(name)
    return out


def pick(full: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep the selected keys of an already built object (``id`` always stays)."""
    if not select:
        return full
    out = {name: full[name] for name in select if name in full}
    out.setdefault("id", full.get("id"))
    return out


def _check_value(kind: str, name: str, kind_of_value: str, value: Any) -> None:
    ok = (
        (kind_of_value == STR and isinstance(value, str))
        or (kind_of_value == BOOL and isinstance(value, bool))
        or (
            kind_of_value == STRLIST
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        )
        or (kind_of_value == OBJ and isinstance(value, dict))
        or value is None
    )
    if not ok:
        raise bad_request(
            f"Invalid value specified for property '{name}' of resource '{resource_name(kind)}'."
        )


def validate_write(kind: str, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The properties a POST or PATCH body sets, checked as Graph checks them."""
    known = properties_of(kind)
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("@odata.") or (kind != USER and name.endswith("@odata.bind")):
            continue
        if EXTENSION_NAME.match(name):
            if name not in REGISTERED_EXTENSIONS:
                raise bad_request(
                    f"Property '{name}' does not exist as a declared property or extension "
                    "property."
                )
            if value is not None and not isinstance(value, str | int | bool):
                raise bad_request(
                    f"Invalid value specified for property '{name}' of resource "
                    f"'{resource_name(kind)}'."
                )
            changes[name] = value
            continue
        if name not in known:
            raise bad_request(
                f"Property '{name}' does not exist as a declared property or extension property."
            )
        if known[name] == READONLY:
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        _check_value(kind, name, known[name], value)
        changes[name] = value
    if creating:
        required = USER_REQUIRED if kind == USER else GROUP_REQUIRED
        for name in required:
            if changes.get(name) in (None, ""):
                raise bad_request(
                    f"Invalid value specified for property '{name}' of resource "
                    f"'{resource_name(kind)}'."
                )
    for name in ("displayName", "userPrincipalName", "mailNickname"):
        if name in changes and changes[name] in (None, ""):
            raise bad_request(
                f"Invalid value specified for property '{name}' of resource "
                f"'{resource_name(kind)}'."
            )
    return changes
