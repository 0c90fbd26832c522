"""The domain model: what Microsoft 365 holds, what the portal holds, and a plan between them.

These are plain frozen dataclasses. The Graph client builds the Microsoft side, the portal client
builds the portal side, the planner turns both into a ``Plan`` and the applier carries it out.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What SDS says a person is."""

    STUDENT = "student"
    TEACHER = "teacher"


# --- Microsoft 365 side -----------------------------------------------------------------------


@dataclass(frozen=True)
class MsUser:
    """A student or teacher in Microsoft 365, as the sync sees it (already classified)."""

    id: str  # Entra object id: immutable, the link to the portal (SCIM externalId)
    user_principal_name: str
    mail: str | None
    given_name: str | None
    family_name: str | None
    display_name: str
    account_enabled: bool
    role: Role
    school_ids: tuple[str, ...] = ()  # SDS school ids, sorted
    grade: str | None = None
    #: display names of those schools, sorted, once each (a school's id where SDS has no name)
    school_names: tuple[str, ...] = ()

    @property
    def email(self) -> str:
        """The e-mail the portal gets: ``mail``, else the user principal name."""
        return self.mail or self.user_principal_name


@dataclass(frozen=True)
class MsClass:
    """An SDS class (a Microsoft 365 group SDS created), with its students and teachers."""

    id: str  # Entra object id of the group (same id as the education class)
    display_name: str
    school_id: str | None
    member_ids: frozenset[str]  # Entra ids of students and teachers (members and owners)
    mail_nickname: str | None = None
    #: display name of that school (its id where SDS has no name)
    school_name: str | None = None


@dataclass(frozen=True)
class MicrosoftState:
    """What Microsoft 365 holds, for the whole tenant or for a few objects.

    ``users`` and ``classes`` are the objects in scope. Everything the sync manages that is not
    among them is out of scope, soft-deleted or purged; the sets below tell which.

    ``scope_user_ids`` / ``scope_class_ids`` say which objects this state speaks for: ``None``
    for the whole tenant (a full reconcile), or the ids a real-time job re-read. The planner
    leaves every managed portal object outside that alone.

    A state is always complete: a listing that failed or was cut short raises in the reader
    (``common.graph.source``) instead of coming back partial, so there is no flag to check.
    """

    users: Mapping[str, MsUser]
    classes: Mapping[str, MsClass]
    #: ids of users that exist in Microsoft 365 but are outside scope (staff, other schools...)
    out_of_scope_user_ids: frozenset[str] = frozenset()
    #: ids of users in the recycle bin (soft-deleted, restorable for 30 days)
    soft_deleted_user_ids: frozenset[str] = frozenset()
    #: ids known to exist in Microsoft 365 only as groups outside scope or soft-deleted
    out_of_scope_class_ids: frozenset[str] = frozenset()
    scope_user_ids: frozenset[str] | None = None
    scope_class_ids: frozenset[str] | None = None


# --- portal side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fidelity:
    """How much of an object's attributes its portal can hold, and how the portal compares them.

    ``unheld``: attributes the portal has no home for (never sent, so never compared);
    ``first_only``: multi-valued attributes the portal holds one value of (the first, sorted);
    ``case_insensitive``: attributes the portal compares without letter case (caseExact false),
    so a server that canonicalises them is not written to again on every run.
    """

    unheld: frozenset[str] = frozenset()
    first_only: frozenset[str] = frozenset()
    case_insensitive: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PortalUser:
    """A user in the portal, read through SCIM."""

    id: str  # the portal's own id
    user_name: str
    external_id: str | None  # Entra object id when managed by the sync
    email: str | None  # primary (or first) e-mail
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    role: Role | None = None
    school_ids: tuple[str, ...] = ()
    grade: str | None = None
    school_names: tuple[str, ...] = ()
    version: str | None = None  # meta.version (ETag), for If-Match
    #: what the portal can hold of this user; ``None``: everything, compared exactly
    fidelity: Fidelity | None = field(default=None, compare=False, repr=False)
    created: str | None = None  # meta.created (xsd:dateTime), which copy is the oldest
    #: portal ids of the groups it is a member of, where the portal says (SCIM ``groups``)
    group_ids: frozenset[str] = frozenset()

    @property
    def managed(self) -> bool:
        return bool(self.external_id)


@dataclass(frozen=True)
class PortalGroup:
    """A group in the portal, read through SCIM."""

    id: str
    display_name: str
    external_id: str | None  # Entra object id when managed by the sync
    member_ids: frozenset[str]  # portal user ids
    school_id: str | None = None
    school_name: str | None = None
    version: str | None = None
    fidelity: Fidelity | None = field(default=None, compare=False, repr=False)
    created: str | None = None  # meta.created (xsd:dateTime)

    @property
    def managed(self) -> bool:
        return bool(self.external_id)


def oldest_first(obj: PortalUser | PortalGroup) -> tuple[bool, str, str]:
    """Sort key of portal objects sharing an ``externalId``: the oldest first (by
    ``meta.created``; one without it after those with it), then by portal id. The first one is
    the copy the sync keeps; the others are duplicates (the one tie-break of the sync)."""
    return (obj.created is None, obj.created or "", obj.id)


def link_key(kind: str, entra_id: str) -> str:
    """How a link (the portal object the sync linked to a Microsoft object) is named: kind
    ``user`` or ``group``, then the Entra id."""
    return f"{kind}:{entra_id}"


@dataclass(frozen=True)
class PortalState:
    """What the portal holds (everything of one organisation, or the objects a job looked up).

    ``links`` are the portal objects the sync linked before (``link_key`` -> portal id,
    ``common.state.links``): where the portal holds copies, the linked one is kept.
    """

    users: tuple[PortalUser, ...]
    groups: tuple[PortalGroup, ...]
    links: Mapping[str, str] = field(default_factory=dict)
    #: portal ids this very run created (copies of them are the run's own, not someone's)
    created_ids: frozenset[str] = frozenset()

    def kept_first(self, obj: PortalUser | PortalGroup) -> tuple[bool, bool, str, str]:
        """Sort key of portal objects sharing an ``externalId``: the copy the sync keeps comes
        first, that is the one it linked before, else the oldest (``oldest_first``)."""
        kind = "user" if isinstance(obj, PortalUser) else "group"
        linked = bool(obj.external_id) and (
            self.links.get(link_key(kind, obj.external_id or "")) == obj.id
        )
        return (not linked, *oldest_first(obj))


# --- tenant settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which SDS objects of a tenant the administrator wants in the portal.

    Empty ``school_ids`` means every school. ``class_pattern`` is a shell-style pattern
    (``fnmatch``, case-insensitive) on the class display name. ``include``/``exclude`` hold
    object ids or display names of classes and users; exclude wins over include, include wins
    over the school and pattern filters.
    """

    school_ids: frozenset[str] = frozenset()
    class_pattern: str | None = None
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Thresholds:
    """When removals are held rather than applied (the mass-change guard).

    Removals (deactivations plus deletions) are held when there are more than ``max_removals``
    of them *and* they are more than ``max_removal_share`` of the tenant's managed objects.
    """

    max_removals: int = 20
    max_removal_share: float = 0.05
    #: a listing this much smaller than the last good one fails the source-health gate
    max_shrink_share: float = 0.5


# --- the plan ---------------------------------------------------------------------------------


class ActionKind(StrEnum):
    """Every step a plan can hold."""

    CREATE_USER = "create_user"
    ADOPT_USER = "adopt_user"
    UPDATE_USER = "update_user"
    DEACTIVATE_USER = "deactivate_user"
    REACTIVATE_USER = "reactivate_user"
    DELETE_USER = "delete_user"
    CREATE_GROUP = "create_group"
    UPDATE_GROUP = "update_group"
    DELETE_GROUP = "delete_group"
    ADD_MEMBERS = "add_members"
    REMOVE_MEMBERS = "remove_members"
    #: a second portal object with the ``externalId`` of one the sync keeps
    DELETE_DUPLICATE_USER = "delete_duplicate_user"
    DELETE_DUPLICATE_GROUP = "delete_duplicate_group"


#: removals a person must approve whatever the thresholds (a duplicate may carry licences the
#: sync cannot see)
ALWAYS_HELD_KINDS = frozenset({ActionKind.DELETE_DUPLICATE_USER, ActionKind.DELETE_DUPLICATE_GROUP})

#: kinds the source-health gate and the mass-change guard apply to
REMOVAL_KINDS = (
    frozenset({ActionKind.DEACTIVATE_USER, ActionKind.DELETE_USER, ActionKind.DELETE_GROUP})
    | ALWAYS_HELD_KINDS
)


@dataclass(frozen=True)
class Action:
    """One step of a plan, with the reason a person reads.

    ``object_id`` is the Entra id of the Microsoft object; ``portal_id`` the portal object it
    acts on (``None`` for creates). ``changes`` maps portal attribute names (``userName``,
    ``email``, ``givenName``, ``familyName``, ``displayName``, ``active``, ``role``, ``schools``,
    ``schoolNames``, ``grade``, ``externalId`` for users; ``displayName``, ``school``,
    ``schoolName`` for groups) to their new
    values; for creates it holds every attribute. ``member_ids`` are Entra user ids (add/remove
    members); the applier maps them to portal ids, which may come from creates in the same plan.
    """

    kind: ActionKind
    object_id: str
    label: str  # display name or e-mail, for people
    reason: str
    portal_id: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    member_ids: tuple[str, ...] = ()
    #: portal ids of members to remove that have no Entra id (members the sync does not know)
    portal_member_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable id for this step (used to hold, approve and reject it); a duplicate's names
        its portal object too, since one Microsoft object may have several."""
        if self.kind in ALWAYS_HELD_KINDS:
            return f"{self.kind.value}:{self.object_id}:{self.portal_id}"
        return f"{self.kind.value}:{self.object_id}"


@dataclass(frozen=True)
class Collision:
    """An unmanaged portal user that looks like a Microsoft user but has another e-mail."""

    object_id: str  # the Microsoft user
    microsoft_email: str
    portal_id: str
    portal_email: str | None
    display_name: str
    school_ids: tuple[str, ...]


@dataclass(frozen=True)
class Duplicate:
    """Portal objects sharing one ``externalId``: the copy kept and the others."""

    kind: str  # "user" or "group"
    object_id: str  # the Entra id they all carry
    label: str
    kept_id: str
    duplicate_ids: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What a run will do, in order: users first, then groups, then memberships."""

    actions: tuple[Action, ...]
    collisions: tuple[Collision, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    #: (id, display name) of the classes that will sync, sorted by name
    classes_in_scope: tuple[tuple[str, str], ...] = ()
    #: portal ids of duplicates this very run created (a lost answer that slipped past the
    #: create's lookup): deleted at once, never held
    own_copy_ids: frozenset[str] = frozenset()

    def of_kind(self, *kinds: ActionKind) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in kinds)

    def counts(self) -> dict[str, int]:
        """Number of actions per kind, every kind present (zeros included)."""
        result = {kind.value: 0 for kind in ActionKind}
        for action in self.actions:
            result[action.kind.value] += 1
        return result

    @property
    def removals(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in REMOVAL_KINDS)


def action_to_dict(action: Action) -> dict[str, Any]:
    """An action as JSON-ready data (held actions and the audit log store it so)."""
    return {
        "kind": action.kind.value,
        "object_id": action.object_id,
        "label": action.label,
        "reason": action.reason,
        "portal_id": action.portal_id,
        "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in action.changes.items()},
        "member_ids": list(action.member_ids),
        "portal_member_ids": list(action.portal_member_ids),
    }


def action_from_dict(data: Mapping[str, Any]) -> Action:
    """The inverse of ``action_to_dict``."""
    return Action(
        kind=ActionKind(data["kind"]),
        object_id=data["object_id"],
        label=data.get("label", ""),
        reason=data.get("reason", ""),
        portal_id=data.get("portal_id"),
        changes={k: tuple(v) if isinstance(v, list) else v for k, v in data["changes"].items()},
        member_ids=tuple(data.get("member_ids", ())),
        portal_member_ids=tuple(data.get("portal_member_ids", ())),
    )
