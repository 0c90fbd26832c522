"""The portal attributes of a Microsoft user as the sync wants them, how they compare, and
how a change reads for a person. Pure functions, no I/O (the planner's vocabulary)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.model import Fidelity, MsClass, MsUser, PortalGroup, PortalUser

#: attribute names as a school administrator reads them
ATTRIBUTE_WORDS = {
    "userName": "user name",
    "email": "e-mail",
    "givenName": "given name",
    "familyName": "family name",
    "displayName": "display name",
    "active": "active",
    "role": "role",
    "schools": "schools",
    "schoolNames": "school names",
    "grade": "grade",
    "school": "school",
    "schoolName": "school name",
}
#: attributes compared as optional strings (None and "" are the same)
OPTIONAL_STRINGS = frozenset(
    {"givenName", "familyName", "displayName", "grade", "school", "schoolName"}
)


def desired_user(user: MsUser) -> dict[str, Any]:
    """Every portal attribute of a Microsoft user, as the portal should hold it."""
    return {
        "userName": user.email,
        "email": user.email,
        "givenName": user.given_name,
        "familyName": user.family_name,
        "displayName": user.display_name,
        "active": user.account_enabled,
        "role": user.role.value,
        "schools": tuple(sorted(user.school_ids)),
        "schoolNames": tuple(sorted(user.school_names)),
        "grade": user.grade,
    }


def current_user(user: PortalUser) -> dict[str, Any]:
    """The same attributes of a portal user."""
    return {
        "userName": user.user_name,
        "email": user.email,
        "givenName": user.given_name,
        "familyName": user.family_name,
        "displayName": user.display_name,
        "active": user.active,
        "role": user.role.value if user.role is not None else None,
        "schools": tuple(sorted(user.school_ids)),
        "schoolNames": tuple(sorted(user.school_names)),
        "grade": user.grade,
    }


def desired_group(cls: MsClass) -> dict[str, Any]:
    """The portal attributes of a class (members apart), as the portal should hold them."""
    return {"displayName": cls.display_name, "school": cls.school_id, "schoolName": cls.school_name}


def current_group(group: PortalGroup) -> dict[str, Any]:
    """The same attributes of a portal group."""
    return {
        "displayName": group.display_name,
        "school": group.school_id,
        "schoolName": group.school_name,
    }


def differences(
    desired: Mapping[str, Any], current: Mapping[str, Any], fidelity: Fidelity | None = None
) -> dict[str, Any]:
    """The desired attributes whose value differs (exactly; None and "" alike for strings).

    With the portal's ``fidelity``: attributes it cannot hold are not compared, one it holds
    the first value of compares that value, and caseExact-false ones ignore letter case.
    """
    changes: dict[str, Any] = {}
    fidelity = fidelity or Fidelity()
    for key, value in desired.items():
        have = current.get(key)
        if key in fidelity.unheld:
            continue
        if key in fidelity.first_only and isinstance(value, tuple):
            if tuple(value[:1]) != tuple(have or ())[:1]:
                changes[key] = value
            continue
        if key in fidelity.case_insensitive and isinstance(value, str):
            if value.lower() != (have or "").lower():
                changes[key] = value
            continue
        if key in OPTIONAL_STRINGS:
            if (value or None) != (have or None):
                changes[key] = value
        elif value != have:
            changes[key] = value
    return changes


def email_key(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def name_key(value: str | None) -> str:
    return " ".join((value or "").casefold().split())


def words(keys: Iterable[str]) -> str:
    return ", ".join(ATTRIBUTE_WORDS.get(k, k) for k in keys)


def changed(changes: Mapping[str, Any]) -> str:
    """The reason of an update: which attributes changed in Microsoft 365."""
    return f"changed in Microsoft 365: {words(changes)}"


# --- reasons a person reads ------------------------------------------------------------------

REASON_DISABLED = "disabled in Microsoft 365 (sign-in blocked)"
REASON_SOFT_DELETED = "soft-deleted in Microsoft 365 (in the recycle bin)"
REASON_OUT_OF_SCOPE = (
    "out of scope: no longer a student or teacher of the schools and classes selected for "
    "this portal"
)
REASON_PURGED = "permanently deleted in Microsoft 365"
REASON_REACTIVATED = (
    "active again in Microsoft 365 (restored, re-enabled or back in scope): "
    "the same portal account is reactivated"
)
REASON_NEW_CLASS = "new class in School Data Sync"
REASON_CLASS_OUT_OF_SCOPE = (
    "class out of scope or in the Microsoft 365 recycle bin (its members stay in the portal)"
)
REASON_CLASS_PURGED = "class permanently deleted in Microsoft 365 (its members stay in the portal)"
REASON_DUPLICATE = (
    "duplicate: another portal {what} ({kept}) carries the same Microsoft 365 id and is the one "
    "kept; held for approval, since this copy may carry licences"
)
REASON_OWN_DUPLICATE = (
    "duplicate made by this run: a create whose answer was lost was carried out twice; the "
    "other portal {what} ({kept}) is the one kept, and this copy is deleted at once"
)
