"""One tenant's directory in memory: users, groups, memberships, the recycle bin and schools.

Every change takes the tenant's lock, stamps the object with the next change sequence number
(delta rounds compare these) and tells ``on_change`` which object changed and how
(``updated``, or ``deleted`` for a purge), which is where notifications start. Membership is
kept in both directions so that deleting a user can touch its groups without a scan.

Failure policy: a write that Graph would refuse raises ``GraphError``; the tenant is unchanged.
"""

from __future__ import annotations

import bisect
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.graph.errors import GraphError, bad_request

USER = "user"
GROUP = "group"
UPN_TAKEN = "Another object with the same value for property userPrincipalName already exists."

ChangeListener = Callable[["Tenant", str, str, str], None]


def graph_now() -> str:
    """A timestamp the way directory objects carry it (seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True, eq=False)
class DirObject:
    """A user or a group. ``props`` holds Graph properties that have a value."""

    kind: str
    id: str
    ordinal: int
    props: dict[str, Any]
    seq: int
    deleted: str | None = None  # deletedDateTime while in the recycle bin
    edu: dict[str, Any] | None = None  # education data (SDS users and classes)
    members: dict[str, int] | None = None  # group: member id -> seq of the last change
    removed_members: dict[str, int] | None = None  # group: member id -> seq of the removal
    owners: dict[str, int] | None = None
    member_seq: int = 0  # group: the highest seq among its membership changes
    member_of: set[str] = field(default_factory=set)
    owner_of: set[str] = field(default_factory=set)

    @property
    def is_unified(self) -> bool:
        return "Unified" in (self.props.get("groupTypes") or ())


@dataclass(slots=True, eq=False)
class School:
    """An education school (``/education/schools``); ``sis_id`` is SDS's id for it."""

    id: str
    sis_id: str
    props: dict[str, Any]


@dataclass(slots=True)
class Tombstone:
    kind: str
    ordinal: int
    seq: int


class Tenant:
    """A Microsoft 365 tenant: its directory, schools, subscriptions and fault knobs."""

    def __init__(self, tenant_id: str, name: str, domain: str, *, seed: int | None = None) -> None:
        self.id = tenant_id
        self.name = name
        self.domain = domain
        self.domains: list[str] = [domain]
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.objects: dict[str, DirObject] = {}
        self.tombstones: dict[str, Tombstone] = {}
        self.upns: dict[str, str] = {}
        self.schools: dict[str, School] = {}
        self.school_by_sis: dict[str, str] = {}
        #: SDS anchors (``Student_<sis>``, ``Teacher_<sis>``, ``Section_<sis>``) to object ids
        self.sis_index: dict[str, str] = {}
        self.subscriptions: dict[str, Any] = {}
        self.knobs: dict[str, float] = {}
        self.tokens_valid_after = 0.0
        self.delta_gone = False
        #: Graph calls since ``fail_after_requests`` was last set
        self.calls_since_fail_knob = 0
        self.seq = 1
        self.on_change: ChangeListener | None = None
        self._next_ordinal = 1
        self._order: dict[str, tuple[list[int], list[str]]] = {USER: ([], []), GROUP: ([], [])}

    # --- identity and bookkeeping ------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _bump(self) -> int:
        self.seq += 1
        return self.seq

    def _changed(self, obj_kind: str, obj_id: str, change_type: str = "updated") -> None:
        if self.on_change is not None:
            self.on_change(self, obj_kind, obj_id, change_type)

    def add_domain(self, domain: str) -> None:
        if domain.lower() not in (d.lower() for d in self.domains):
            self.domains.append(domain)

    def verified_domain(self, domain: str) -> bool:
        return domain.lower() in (d.lower() for d in self.domains)

    # --- reading -----------------------------------------------------------------------------

    def live(self, kind: str, *, after: int = 0) -> Iterator[DirObject]:
        """Live objects of ``kind`` in creation order, from the one after ordinal ``after``."""
        return (obj for obj in self.all_of(kind, after=after) if obj.deleted is None)

    def all_of(self, kind: str, *, after: int = 0) -> Iterator[DirObject]:
        """Live and soft-deleted objects of ``kind`` in creation order."""
        ordinals, ids = self._order[kind]
        start = bisect.bisect_right(ordinals, after)
        objects = self.objects
        for index in range(start, len(ids)):
            obj = objects.get(ids[index])
            if obj is not None:
                yield obj

    def find(self, kind: str, key: str) -> DirObject | None:
        """A live object by id (users also by user principal name)."""
        obj = self.objects.get(key)
        if obj is None and kind == USER and "@" in key:
            found = self.upns.get(key.lower())
            obj = self.objects.get(found) if found else None
        if obj is None or obj.kind != kind or obj.deleted is not None:
            return None
        return obj

    def visible(self, obj_id: str) -> DirObject | None:
        obj = self.objects.get(obj_id)
        return obj if obj is not None and obj.deleted is None else None

    def visible_members(self, group: DirObject) -> list[DirObject]:
        return [m for m in map(self.visible, group.members or ()) if m is not None]

    def visible_owners(self, group: DirObject) -> list[DirObject]:
        return [m for m in map(self.visible, group.owners or ()) if m is not None]

    # --- creating ------------------------------------------------------------------------------

    def _insert(
        self, kind: str, props: dict[str, Any], edu: dict[str, Any] | None, object_id: str | None
    ) -> DirObject:
        obj_id = object_id or self.new_id()
        if obj_id in self.objects:
            raise bad_request(f"An object with id '{obj_id}' already exists.")
        props.setdefault("createdDateTime", graph_now())
        obj = DirObject(kind, obj_id, self._next_ordinal, props, self._bump(), edu=edu)
        if kind == GROUP:
            obj.members, obj.removed_members, obj.owners = {}, {}, {}
        self._next_ordinal += 1
        ordinals, ids = self._order[kind]
        ordinals.append(obj.ordinal)
        ids.append(obj_id)
        self.objects[obj_id] = obj
        return obj

    def add_user(
        self,
        props: dict[str, Any],
        *,
        edu: dict[str, Any] | None = None,
        object_id: str | None = None,
    ) -> DirObject:
        with self.lock:
            upn = str(props["userPrincipalName"]).lower()
            if upn in self.upns:
                raise bad_request(UPN_TAKEN)
            obj = self._insert(USER, props, edu, object_id)
            self.upns[upn] = obj.id
        self._changed(USER, obj.id)
        return obj

    def add_group(
        self,
        props: dict[str, Any],
        *,
        edu: dict[str, Any] | None = None,
        object_id: str | None = None,
    ) -> DirObject:
        with self.lock:
            obj = self._insert(GROUP, props, edu, object_id)
        self._changed(GROUP, obj.id)
        return obj

    def add_school(self, sis_id: str, props: dict[str, Any]) -> School:
        with self.lock:
            existing = self.school_by_sis.get(sis_id)
            if existing is not None:
                school = self.schools[existing]
                school.props.update(props)
                return school
            school = School(self.new_id(), sis_id, props)
            self.schools[school.id] = school
            self.school_by_sis[sis_id] = school.id
            return school

    # --- changing ------------------------------------------------------------------------------

    def update(self, obj: DirObject, changes: dict[str, Any]) -> None:
        """Set properties (``None`` clears one) and report the object changed."""
        with self.lock:
            new_upn = changes.get("userPrincipalName")
            old_upn = obj.props.get("userPrincipalName")
            if obj.kind == USER and new_upn and str(new_upn).lower() != str(old_upn).lower():
                if str(new_upn).lower() in self.upns:
                    raise bad_request(UPN_TAKEN)
                self.upns.pop(str(old_upn).lower(), None)
                self.upns[str(new_upn).lower()] = obj.id
            for name, value in changes.items():
                if value is None:
                    obj.props.pop(name, None)
                else:
                    obj.props[name] = value
            obj.seq = self._bump()
        self._changed(obj.kind, obj.id)

    def add_member(self, group: DirObject, member: DirObject) -> None:
        self._link(group, member, owners=False)

    def add_owner(self, group: DirObject, owner: DirObject) -> None:
        self._link(group, owner, owners=True)

    def _link(self, group: DirObject, other: DirObject, *, owners: bool) -> None:
        with self.lock:
            table = group.owners if owners else group.members
            assert table is not None and group.removed_members is not None
            if other.id in table:
                prop = "owners" if owners else "members"
                raise bad_request(
                    "One or more added object references already exist for the following "
                    f"modified properties: '{prop}'."
                )
            seq = self._bump()
            table[other.id] = seq
            if owners:
                other.owner_of.add(group.id)
            else:
                group.removed_members.pop(other.id, None)
                group.member_seq = seq
                other.member_of.add(group.id)
        self._changed(GROUP, group.id)

    def remove_member(self, group: DirObject, member_id: str) -> None:
        self._unlink(group, member_id, owners=False)

    def remove_owner(self, group: DirObject, owner_id: str) -> None:
        self._unlink(group, owner_id, owners=True)

    def _unlink(self, group: DirObject, other_id: str, *, owners: bool) -> None:
        with self.lock:
            table = group.owners if owners else group.members
            assert table is not None and group.removed_members is not None
            if other_id not in table or self.visible(other_id) is None:
                raise GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{other_id}' does not exist or one of its queried "
                    "reference-property objects are not present.",
                )
            del table[other_id]
            other = self.objects[other_id]
            seq = self._bump()
            if owners:
                other.owner_of.discard(group.id)
            else:
                group.removed_members[other_id] = seq
                group.member_seq = seq
                other.member_of.discard(group.id)
        self._changed(GROUP, group.id)

    def _changed_with_groups(
        self, obj: DirObject, groups: list[str], change_type: str = "updated"
    ) -> None:
        """Report ``obj`` and then each group whose membership it changed, once each."""
        self._changed(obj.kind, obj.id, change_type)
        for group_id in dict.fromkeys(groups):
            self._changed(GROUP, group_id)

    def _touch_memberships(self, obj: DirObject, seq: int) -> list[str]:
        """Mark ``obj``'s memberships changed (it left or came back); the groups touched."""
        touched = []
        for group_id in obj.member_of:
            group = self.objects.get(group_id)
            if group is not None and group.members is not None and obj.id in group.members:
                group.members[obj.id] = seq
                group.member_seq = seq
                touched.append(group_id)
        touched.extend(g for g in obj.owner_of if g not in touched and g in self.objects)
        return touched

    def soft_delete(self, obj: DirObject) -> None:
        """Move to the recycle bin (users, Microsoft 365 groups); security groups are purged."""
        if obj.kind == GROUP and not obj.is_unified:
            self.purge(obj)
            return
        with self.lock:
            obj.deleted = graph_now()
            obj.seq = self._bump()
            if obj.kind == USER:
                self.upns.pop(str(obj.props.get("userPrincipalName")).lower(), None)
            touched = self._touch_memberships(obj, obj.seq)
        self._changed_with_groups(obj, touched)

    def restore(self, obj: DirObject) -> None:
        with self.lock:
            if obj.kind == USER:
                upn = str(obj.props.get("userPrincipalName")).lower()
                if upn in self.upns:
                    raise bad_request(UPN_TAKEN)
                self.upns[upn] = obj.id
            obj.deleted = None
            obj.seq = self._bump()
            touched = self._touch_memberships(obj, obj.seq)
        self._changed_with_groups(obj, touched)

    def purge(self, obj: DirObject) -> None:
        """Delete for good: the object, its memberships and (for groups) its links."""
        with self.lock:
            seq = self._bump()
            del self.objects[obj.id]
            self.tombstones[obj.id] = Tombstone(obj.kind, obj.ordinal, seq)
            if obj.kind == USER and obj.deleted is None:
                self.upns.pop(str(obj.props.get("userPrincipalName")).lower(), None)
            touched = []
            for group_id in obj.member_of:
                group = self.objects.get(group_id)
                if group is not None and group.members is not None:
                    group.members.pop(obj.id, None)
                    assert group.removed_members is not None
                    group.removed_members[obj.id] = seq
                    group.member_seq = seq
                    touched.append(group_id)
            for group_id in obj.owner_of:
                group = self.objects.get(group_id)
                if group is not None and group.owners is not None:
                    group.owners.pop(obj.id, None)
                    touched.append(group_id)
            for other_id in list(obj.members or ()):
                other = self.objects.get(other_id)
                if other is not None:
                    other.member_of.discard(obj.id)
            for other_id in list(obj.owners or ()):
                other = self.objects.get(other_id)
                if other is not None:
                    other.owner_of.discard(obj.id)
        self._changed_with_groups(obj, touched, "deleted")

    # --- summary -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.lock:
            users = list(self.live(USER))
            groups = list(self.live(GROUP))
            roles = [u.edu.get("primaryRole") if u.edu else None for u in users]
            return {
                "users": len(users),
                "students": roles.count("student"),
                "teachers": roles.count("teacher"),
                "guests": sum(1 for u in users if u.props.get("userType") == "Guest"),
                "groups": len(groups),
                "classes": sum(1 for g in groups if g.edu is not None),
                "schools": len(self.schools),
                "deleted": sum(1 for o in self.objects.values() if o.deleted is not None),
            }
