"""The rules of the sync (DESIGN §3): two states in, one ``Plan`` out. Pure: no I/O, no clock.

``make_plan`` works the same for a whole tenant (a full reconcile, ``scope_*_ids`` is ``None``)
and for a few objects a real-time job re-read: every removal is limited to the objects the
Microsoft state speaks for, and a portal object it does not speak for is left alone.

Who belongs in which class is decided before the planner, by the classification both readers
call (``common.graph.classify.class_members``): a class's ``member_ids`` are its members in
scope. The planner adds a member once it has a portal account (linked, or made in this plan).

Portal objects sharing an ``externalId`` are duplicates: the copy the sync linked before, else
the oldest (``PortalState.kept_first``), is the one it keeps and brings up to date; the others
leave the managed groups and are deleted only once a person approves (``ALWAYS_HELD_KINDS``).

Over 400 lines because users and classes are one pass: class membership needs the links the
user rules make (adoptions and takeovers in the same plan). Attribute comparison and wording
live in ``common.sync.attributes``, duplicates in ``common.sync.duplicates``.

Failure policy: none needed; the planner trusts its inputs. Whether the Microsoft state is
healthy enough for removals is the safety guards' question (the source-health gate), not this
one's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from common.model import (
    Action,
    ActionKind,
    Collision,
    MicrosoftState,
    MsClass,
    MsUser,
    Plan,
    PortalGroup,
    PortalState,
    PortalUser,
)
from common.sync.attributes import (
    REASON_CLASS_OUT_OF_SCOPE,
    REASON_CLASS_PURGED,
    REASON_DISABLED,
    REASON_NEW_CLASS,
    REASON_OUT_OF_SCOPE,
    REASON_PURGED,
    REASON_REACTIVATED,
    REASON_SOFT_DELETED,
    changed,
    current_group,
    current_user,
    desired_group,
    desired_user,
    differences,
    email_key,
    name_key,
    words,
)
from common.sync.duplicates import find_duplicates

K = ActionKind

#: the phases a plan runs in, in order, named for progress: every member exists before it is
#: added, removals come last (the applier runs them as they stand here)
PHASES: tuple[tuple[str, tuple[ActionKind, ...]], ...] = (
    ("users", (K.CREATE_USER, K.ADOPT_USER, K.UPDATE_USER, K.REACTIVATE_USER)),
    ("classes", (K.CREATE_GROUP, K.UPDATE_GROUP)),
    ("members added", (K.ADD_MEMBERS,)),
    ("members removed", (K.REMOVE_MEMBERS,)),
    ("classes removed", (K.DELETE_GROUP, K.DELETE_DUPLICATE_GROUP)),
    ("users removed", (K.DEACTIVATE_USER, K.DELETE_USER, K.DELETE_DUPLICATE_USER)),
)

#: the order a plan's actions run in (DESIGN §3)
ACTION_ORDER: tuple[ActionKind, ...] = tuple(kind for _, kinds in PHASES for kind in kinds)


def make_plan(microsoft: MicrosoftState, portal: PortalState) -> Plan:
    """What to write to the portal so that it matches Microsoft 365, in the order to write it."""
    duplicates = find_duplicates(portal)
    planner = _Planner(microsoft, portal, duplicate_ids=set(duplicates.copy_ids))
    planner.actions.extend(duplicates.actions)
    planner.plan_users()
    planner.plan_gone_users()
    classes_in_scope = planner.plan_groups()
    actions = sorted(
        planner.actions, key=lambda a: (ACTION_ORDER.index(a.kind), a.label.lower(), a.object_id)
    )
    return Plan(
        actions=tuple(actions),
        collisions=tuple(planner.collisions),
        duplicates=duplicates.found,
        classes_in_scope=classes_in_scope,
        own_copy_ids=duplicates.own_copy_ids,
    )


# --- the planner ------------------------------------------------------------------------------


@dataclass
class _Planner:
    microsoft: MicrosoftState
    portal: PortalState
    actions: list[Action] = field(default_factory=list)
    collisions: list[Collision] = field(default_factory=list)
    #: portal user id -> the Entra id it will carry once the plan has run; the portal users
    #: taken by this plan (matched, adopted or taken over) are its keys
    linked: dict[str, str] = field(default_factory=dict)
    #: portal ids of the copies that are not kept (users and groups)
    duplicate_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # the kept copy comes first, so it is the one indexed where the portal has several
        users = sorted(self.portal.users, key=self.portal.kept_first)
        self.by_external_id: dict[str, PortalUser] = {}
        self.unmanaged_by_email: dict[str, list[PortalUser]] = defaultdict(list)
        self.managed_by_email: dict[str, list[PortalUser]] = defaultdict(list)
        self.unmanaged_by_name: dict[tuple[str, str], list[PortalUser]] = defaultdict(list)
        for user in users:
            if user.managed:
                assert user.external_id is not None
                if user.external_id in self.by_external_id:
                    self.duplicate_ids.add(user.id)
                    continue
                self.by_external_id[user.external_id] = user
                index = self.managed_by_email
            else:
                index = self.unmanaged_by_email
                name = (name_key(user.given_name), name_key(user.family_name))
                if all(name):
                    self.unmanaged_by_name[name].append(user)
            for key in {email_key(user.email), email_key(user.user_name)} - {None}:
                assert key is not None
                index[key].append(user)
        self.users_by_id = {u.id: u for u in users}

    # --- scope --------------------------------------------------------------------------------

    def speaks_for_user(self, entra_id: str) -> bool:
        scope = self.microsoft.scope_user_ids
        return scope is None or entra_id in scope or entra_id in self.microsoft.users

    def speaks_for_class(self, entra_id: str) -> bool:
        scope = self.microsoft.scope_class_ids
        return scope is None or entra_id in scope or entra_id in self.microsoft.classes

    def user_known_gone(self, entra_id: str) -> bool:
        """The Microsoft user is permanently deleted: spoken for, and found nowhere."""
        ms = self.microsoft
        return (
            self.speaks_for_user(entra_id)
            and entra_id not in ms.users
            and entra_id not in ms.out_of_scope_user_ids
            and entra_id not in ms.soft_deleted_user_ids
        )

    # --- users in scope -----------------------------------------------------------------------

    def plan_users(self) -> None:
        ms_users = sorted(self.microsoft.users.values(), key=lambda u: (u.email.lower(), u.id))
        # links by externalId first, so that adoption never takes an account that is linked
        for user in ms_users:
            linked = self.by_external_id.get(user.id)
            if linked is not None:
                self.linked[linked.id] = user.id
        created: list[MsUser] = []
        for user in ms_users:
            linked = self.by_external_id.get(user.id)
            if linked is not None:
                self.plan_linked(user, linked)
            elif not self.plan_adoption(user):
                self.plan_create(user)
                created.append(user)
        # after every adoption, so that an adopted account is never reported as a collision
        for user in created:
            self.collide(user)

    def plan_linked(self, user: MsUser, account: PortalUser) -> None:
        desired = desired_user(user)
        changes = differences(desired, current_user(account), account.fidelity)
        if user.account_enabled and not account.active:
            self.add(ActionKind.REACTIVATE_USER, user, account, changes, REASON_REACTIVATED)
            return
        if not user.account_enabled and account.active:
            del changes["active"]
            if changes:
                self.add(ActionKind.UPDATE_USER, user, account, changes, changed(changes))
            self.add(ActionKind.DEACTIVATE_USER, user, account, {"active": False}, REASON_DISABLED)
            return
        if changes:
            self.add(ActionKind.UPDATE_USER, user, account, changes, changed(changes))

    def plan_adoption(self, user: MsUser) -> bool:
        """Adopt an existing account holding this user's e-mail, if there is one."""
        addresses = [user.email]
        if email_key(user.user_principal_name) != email_key(user.email):
            addresses.append(user.user_principal_name)
        for address in addresses:
            account = self._free(self.unmanaged_by_email.get(email_key(address) or "", ()))
            if account is not None:
                self.adopt(
                    user,
                    account,
                    f"e-mail matches existing portal account {account.user_name} (adopted)",
                )
                return True
        for address in addresses:
            holders = self.managed_by_email.get(email_key(address) or "", ())
            account = self._free(
                h for h in holders if h.external_id and self.user_known_gone(h.external_id)
            )
            if account is not None:
                self.adopt(
                    user,
                    account,
                    f"takes over portal account {account.user_name} (same e-mail) of "
                    f"Microsoft 365 user {account.external_id}, which was permanently deleted "
                    f"(adopted: the account keeps its licences and history)",
                )
                return True
        return False

    def plan_create(self, user: MsUser) -> None:
        changes = {**desired_user(user), "externalId": user.id}
        self.actions.append(
            Action(
                kind=ActionKind.CREATE_USER,
                object_id=user.id,
                label=user.email,
                reason=f"new {user.role.value} in Microsoft 365",
                changes=changes,
            )
        )

    def _free(self, accounts: Iterable[PortalUser]) -> PortalUser | None:
        return next((a for a in accounts if a.id not in self.linked), None)

    def adopt(self, user: MsUser, account: PortalUser, reason: str) -> None:
        self.linked[account.id] = user.id
        # an adoption writes anyway: it also takes Microsoft's letter case, once
        fidelity = account.fidelity and replace(account.fidelity, case_insensitive=frozenset())
        changes = differences(desired_user(user), current_user(account), fidelity)
        # a deactivation is a removal: it passes the safety gates on its own
        deactivate = changes.get("active") is False
        if deactivate:
            del changes["active"]
        self.add(ActionKind.ADOPT_USER, user, account, {"externalId": user.id, **changes}, reason)
        if deactivate:
            self.add(ActionKind.DEACTIVATE_USER, user, account, {"active": False}, REASON_DISABLED)

    def collide(self, user: MsUser) -> None:
        """Unmanaged accounts that look like this new user but have another e-mail."""
        name = (name_key(user.given_name), name_key(user.family_name))
        if not all(name):
            return
        mine = {email_key(user.email), email_key(user.user_principal_name)}
        for account in self.unmanaged_by_name.get(name, ()):
            if account.id in self.linked:
                continue
            if {email_key(account.email), email_key(account.user_name)} & mine:
                continue
            schools = set(account.school_ids)
            if schools and user.school_ids and not schools & set(user.school_ids):
                continue
            self.collisions.append(
                Collision(
                    object_id=user.id,
                    microsoft_email=user.email,
                    portal_id=account.id,
                    portal_email=account.email or account.user_name,
                    display_name=account.display_name
                    or f"{account.given_name} {account.family_name}",
                    school_ids=account.school_ids,
                )
            )

    def add(
        self,
        kind: ActionKind,
        user: MsUser,
        account: PortalUser,
        changes: Mapping[str, Any],
        reason: str,
    ) -> None:
        self.actions.append(
            Action(
                kind=kind,
                object_id=user.id,
                label=user.email,
                reason=reason,
                portal_id=account.id,
                changes=dict(changes),
            )
        )

    # --- managed users no longer in scope -----------------------------------------------------

    def plan_gone_users(self) -> None:
        ms = self.microsoft
        for entra_id, account in sorted(self.by_external_id.items()):
            if entra_id in ms.users or account.id in self.linked:
                continue
            if not self.speaks_for_user(entra_id):
                continue
            if entra_id in ms.soft_deleted_user_ids or entra_id in ms.out_of_scope_user_ids:
                if account.active:
                    reason = (
                        REASON_SOFT_DELETED
                        if entra_id in ms.soft_deleted_user_ids
                        else REASON_OUT_OF_SCOPE
                    )
                    self.removal(ActionKind.DEACTIVATE_USER, entra_id, account, reason)
                continue
            self.removal(ActionKind.DELETE_USER, entra_id, account, REASON_PURGED)

    def removal(self, kind: ActionKind, entra_id: str, account: PortalUser, reason: str) -> None:
        self.actions.append(
            Action(
                kind=kind,
                object_id=entra_id,
                label=account.user_name,
                reason=reason,
                portal_id=account.id,
                changes={"active": False} if kind is ActionKind.DEACTIVATE_USER else {},
            )
        )

    # --- classes ------------------------------------------------------------------------------

    def plan_groups(self) -> tuple[tuple[str, str], ...]:
        ms = self.microsoft
        groups: dict[str, PortalGroup] = {}
        for group in sorted(self.portal.groups, key=self.portal.kept_first):
            if group.external_id:
                groups.setdefault(group.external_id, group)
        classes = sorted(ms.classes.values(), key=lambda c: (c.display_name.casefold(), c.id))
        for cls in classes:
            self.plan_class(cls, groups.get(cls.id))
        for entra_id, group in sorted(groups.items()):
            if entra_id in ms.classes or not self.speaks_for_class(entra_id):
                continue
            reason = (
                REASON_CLASS_OUT_OF_SCOPE
                if entra_id in ms.out_of_scope_class_ids
                else REASON_CLASS_PURGED
            )
            self.actions.append(
                Action(
                    kind=ActionKind.DELETE_GROUP,
                    object_id=entra_id,
                    label=group.display_name,
                    reason=reason,
                    portal_id=group.id,
                )
            )
        return tuple((c.id, c.display_name) for c in classes)

    def has_account(self, entra_id: str) -> bool:
        """Whether the user has a portal account once the plan has run: every user in the
        state gets one (linked, adopted, taken over or created); of the others, one the state
        speaks for is not a user in scope, one it does not speak for keeps its linked account."""
        if entra_id in self.microsoft.users:
            return True
        return not self.speaks_for_user(entra_id) and entra_id in self.by_external_id

    def plan_class(self, cls: MsClass, group: PortalGroup | None) -> None:
        desired_members = {m for m in cls.member_ids if self.has_account(m)}
        if group is None:
            self.actions.append(
                Action(
                    kind=ActionKind.CREATE_GROUP,
                    object_id=cls.id,
                    label=cls.display_name,
                    reason=REASON_NEW_CLASS,
                    changes={**desired_group(cls), "externalId": cls.id},
                )
            )
            if desired_members:
                self.members(ActionKind.ADD_MEMBERS, cls, None, sorted(desired_members))
            return
        changes = differences(desired_group(cls), current_group(group), group.fidelity)
        if changes:
            self.actions.append(
                Action(
                    kind=ActionKind.UPDATE_GROUP,
                    object_id=cls.id,
                    label=cls.display_name,
                    reason=f"class changed in School Data Sync: {words(changes)}",
                    portal_id=group.id,
                    changes=changes,
                )
            )
        present: set[str] = set()
        unknown_members: list[str] = []
        for portal_id in group.member_ids:
            entra_id = self.linked.get(portal_id) or self._external_id(portal_id)
            if entra_id is not None:
                present.add(entra_id)
            elif portal_id in self.users_by_id or portal_id in self.duplicate_ids:
                # an account the sync does not know, or a copy it does not keep
                unknown_members.append(portal_id)
            # a member this state does not show is not ours to judge: left alone
        to_add = sorted(desired_members - present)
        to_remove = sorted(present - desired_members)
        if to_add:
            self.members(ActionKind.ADD_MEMBERS, cls, group, to_add)
        if to_remove or unknown_members:
            self.members(ActionKind.REMOVE_MEMBERS, cls, group, to_remove, sorted(unknown_members))

    def _external_id(self, portal_id: str) -> str | None:
        if portal_id in self.duplicate_ids:
            return None
        account = self.users_by_id.get(portal_id)
        return account.external_id if account is not None and account.managed else None

    def members(
        self,
        kind: ActionKind,
        cls: MsClass,
        group: PortalGroup | None,
        member_ids: list[str],
        portal_member_ids: list[str] | None = None,
    ) -> None:
        count = len(member_ids) + len(portal_member_ids or ())
        if kind is ActionKind.ADD_MEMBERS:
            reason = f"{count} student(s) or teacher(s) joined the class in School Data Sync"
        else:
            reason = f"{count} member(s) no longer in the class in School Data Sync"
        self.actions.append(
            Action(
                kind=kind,
                object_id=cls.id,
                label=cls.display_name,
                reason=reason,
                portal_id=group.id if group is not None else None,
                member_ids=tuple(member_ids),
                portal_member_ids=tuple(portal_member_ids or ()),
            )
        )
