"""Portal objects sharing an ``externalId`` (duplicates): which copy the sync keeps, and the
held deletions of the others. Pure, no I/O.

However they came about (a lost answer, a concurrent run, another client), the oldest copy
(``model.oldest_first``) is kept; the planner brings it up to date and treats the others as
accounts it does not know (they leave the managed groups). Each other copy gets a
``DELETE_DUPLICATE_*`` action, which the applier holds for a person's approval: a copy may carry
licences the sync cannot see.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from common.model import (
    Action,
    ActionKind,
    Duplicate,
    PortalGroup,
    PortalState,
    PortalUser,
    oldest_first,
)
from common.sync.attributes import REASON_DUPLICATE

DELETE_KINDS = {
    "user": ActionKind.DELETE_DUPLICATE_USER,
    "group": ActionKind.DELETE_DUPLICATE_GROUP,
}


@dataclass(frozen=True)
class Duplicates:
    """What ``find_duplicates`` found: per object, the copy kept and the others; the actions."""

    found: tuple[Duplicate, ...]
    actions: tuple[Action, ...]

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
    for (what, entra_id), copies in sorted(copies_of.items()):
        if len(copies) < 2:
            continue
        kind = (
            ActionKind.DELETE_DUPLICATE_USER
            if what == "user"
            else ActionKind.DELETE_DUPLICATE_GROUP
        )
        kept, *others = sorted(copies, key=oldest_first)
        label = kept.user_name if isinstance(kept, PortalUser) else kept.display_name
        found.append(Duplicate(what, entra_id, label, kept.id, tuple(o.id for o in others)))
        actions += [
            Action(
                kind=kind,
                object_id=entra_id,
                label=label,
                reason=REASON_DUPLICATE.format(what=what, kept=kept.id),
                portal_id=other.id,
            )
            for other in others
        ]
    return Duplicates(tuple(found), tuple(actions))
