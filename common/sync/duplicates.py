"""Portal objects sharing an ``externalId`` (duplicates): which copy the sync keeps, and the
deletions of the others. Pure, no I/O.

However they came about (a lost answer, a concurrent run, another client), the copy the sync
linked before (``PortalState.links``: it created or adopted it) is kept, else the oldest
(``PortalState.kept_first``); the planner brings it up to date and treats the others as
accounts it does not know (they leave the managed groups). Each other copy gets a
``DELETE_DUPLICATE_*`` action. One this very run created (``PortalState.created_ids``: a create
whose answer was lost and that the lookup after it missed) is the run's own mistake and is
deleted at once (``Duplicates.own_copy_ids``); every other is held for a person's approval,
since it may carry licences the sync cannot see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from common.model import (
    Action,
    ActionKind,
    Duplicate,
    PortalGroup,
    PortalState,
    PortalUser,
)
from common.sync.attributes import REASON_DUPLICATE, REASON_OWN_DUPLICATE

DELETE_KINDS = {
    "user": ActionKind.DELETE_DUPLICATE_USER,
    "group": ActionKind.DELETE_DUPLICATE_GROUP,
}


@dataclass(frozen=True)
class Duplicates:
    """What ``find_duplicates`` found: per object, the copy kept and the others; the actions."""

    found: tuple[Duplicate, ...]
    actions: tuple[Action, ...]
    #: the copies this very run created (deleted at once)
    own_copy_ids: frozenset[str] = frozenset()

    @property
    def copy_ids(self) -> frozenset[str]:
        """Portal ids of every copy that is not kept."""
        return frozenset(i for d in self.found for i in d.duplicate_ids)


def find_duplicates(portal: PortalState) -> Duplicates:
    """Every portal user and group whose ``externalId`` another one carries too."""
    copies_of: dict[tuple[str, str], list[PortalUser | PortalGroup]] = defaultdict(list)
    objects: list[PortalUser | PortalGroup] = [*portal.users, *portal.groups]
    for obj in objects:
        if obj.external_id:
            what = "user" if isinstance(obj, PortalUser) else "group"
            copies_of[(what, obj.external_id)].append(obj)
    found: list[Duplicate] = []
    actions: list[Action] = []
    own: set[str] = set()
    for (what, entra_id), copies in sorted(copies_of.items()):
        if len(copies) < 2:
            continue
        kept, *others = sorted(copies, key=portal.kept_first)
        label = kept.user_name if isinstance(kept, PortalUser) else kept.display_name
        found.append(Duplicate(what, entra_id, label, kept.id, tuple(o.id for o in others)))
        for other in others:
            mine = other.id in portal.created_ids
            if mine:
                own.add(other.id)
            reason = REASON_OWN_DUPLICATE if mine else REASON_DUPLICATE
            actions.append(
                Action(
                    kind=DELETE_KINDS[what],
                    object_id=entra_id,
                    label=label,
                    reason=reason.format(what=what, kept=kept.id),
                    portal_id=other.id,
                )
            )
    return Duplicates(tuple(found), tuple(actions), frozenset(own))


def made_during(
    before: PortalState,
    users: Iterable[PortalUser],
    groups: Iterable[PortalGroup],
    links: Mapping[str, str],
) -> PortalState:
    """The objects a run found after its creates, as a state for ``find_duplicates``: those
    absent from what the run read ``before`` were made during the run (``created_ids``), and
    ``links`` are the portal objects the run linked (its creates' answers)."""
    users, groups = tuple(users), tuple(groups)
    seen = {u.id for u in before.users} | {g.id for g in before.groups}
    made = {o.id for o in users if o.id not in seen} | {o.id for o in groups if o.id not in seen}
    return PortalState(users=users, groups=groups, links=links, created_ids=frozenset(made))
