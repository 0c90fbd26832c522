"""The apply step of a run: writes the actions the guards let through to the portal, phase by
phase, with bounded concurrency, and says how each ended. It decides nothing and records
nothing: the guards (``common.sync.guard``) chose the actions, the record step
(``common.sync.record``) keeps the outcomes.

Phases are the planner's (``planner.PHASES``: users before groups before memberships before
removals) so that every member exists before it is added; within a phase, actions run
concurrently. Once every create has run, a copy a lost create answer made is deleted at once.

Failure policy: an action the portal refuses (``RejectedError``) ends as failed and the run goes
on; a ``TransientError`` or ``AuthError`` stops the run (what was written stays written and is in
``Applier.outcomes``, for the record step; running again converges because the planner starts
from the portal's current state).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from common.errors import ConflictError, RejectedError
from common.model import Action, ActionKind, PortalState, link_key
from common.portal.protocol import Portal
from common.sync.duplicates import find_duplicates, made_during
from common.sync.planner import PHASES

DEFAULT_CONCURRENCY = 8
#: outcomes handed to ``on_ended`` at the latest after this many (and at each phase's end), so
#: that a process killed outright mid-run leaves at most this many writes unrecorded
RECORD_EVERY = 50

#: progress callback: phase, actions done so far, actions in all
Progress = Callable[[str, int, int], None]

#: the kinds that make portal objects; a lost answer to one of them may leave a second copy
_CREATE_KINDS = frozenset({ActionKind.CREATE_USER, ActionKind.CREATE_GROUP})


@dataclass(frozen=True)
class Outcome:
    """How one action ended: ``applied`` (with the portal object it wrote) or ``failed``."""

    action: Action
    applied: bool
    portal_id: str | None = None
    #: why it failed (the portal's refusal)
    error: str = ""
    #: written by another action's write (members given at their group's creation)
    folded: bool = False


class Applier:
    """Writes one run's actions to one tenant's portal, against the state the run read."""

    def __init__(
        self,
        portal: Portal,
        before: PortalState,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Progress | None = None,
        on_ended: Callable[[list[Outcome]], None] | None = None,
    ) -> None:
        """``on_ended`` receives the outcomes as they accumulate (see ``RECORD_EVERY``), each
        once, in order; ``take_outcomes`` gives those it has not had yet (after a stop)."""
        self.portal = portal
        self.before = before
        self.concurrency = concurrency
        self.progress = progress
        self.on_ended = on_ended
        self.ids = _IdMap(before)
        self._lock = threading.Lock()
        self._hand_over = threading.Lock()
        #: every action that ended so far, in the order they ended (also when a run stops)
        self.outcomes: list[Outcome] = []
        self._taken = 0

    def take_outcomes(self) -> list[Outcome]:
        """The outcomes that ended since the last hand-over, in order."""
        with self._lock:
            taken = self.outcomes[self._taken :]
            self._taken = len(self.outcomes)
        return taken

    def _hand_over_ended(self, *, at_least: int = 1) -> None:
        if self.on_ended is None:
            return
        # one hand-over at a time, so that chunks reach on_ended in the order they ended; a
        # chunk counts as handed over only once on_ended took it (else take_outcomes has it)
        with self._hand_over:
            with self._lock:
                start, end = self._taken, len(self.outcomes)
                chunk = self.outcomes[start:end]
            if len(chunk) < at_least:
                return
            self.on_ended(chunk)
            with self._lock:
                self._taken = end

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        """Write ``actions`` phase by phase; return how each ended."""
        total = len(actions)
        done = 0
        folded = _fold_group_creates(actions)
        creates_left = set(_CREATE_KINDS)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for phase, kinds in PHASES:
                batch = [a for a in actions if a.kind in kinds and a.key not in folded.skipped]

                def run(action: Action, phase: str = phase) -> None:
                    nonlocal done
                    self._apply_one(action, folded)
                    with self._lock:
                        done += 1 + (1 if action.key in folded.members_of else 0)
                        if self.progress is not None:
                            self.progress(phase, done, total)
                    self._hand_over_ended(at_least=RECORD_EVERY)

                # list() re-raises the first exception of a stopping error
                list(pool.map(run, batch))
                if creates_left and not creates_left.difference(kinds):
                    self._remove_own_copies()
                creates_left.difference_update(kinds)
                self._hand_over_ended()
        return self.outcomes

    def _remove_own_copies(self) -> None:
        """After the creates: where a create's answer was lost, look for a second copy (the
        lookup after the lost answer may have missed the first write). A copy absent from the
        run's read was made by this run: the one the run linked is kept, the other deleted at
        once. Costs one portal search per such create, none when no answer was lost."""
        uncertain = list(dict.fromkeys(self.portal.uncertain_creates))
        self.portal.uncertain_creates.clear()
        if not uncertain:
            return
        user_ids = sorted({e for endpoint, e in uncertain if endpoint == "Users" and e})
        group_ids = sorted({e for endpoint, e in uncertain if endpoint == "Groups" and e})
        users = self.portal.find_users(external_ids=user_ids) if user_ids else []
        groups = [g for e in group_ids for g in self.portal.find_groups(e)]
        ids = self.ids
        with ids.lock:
            linked = {link_key("user", e): ids.users[e] for e in user_ids if e in ids.users}
            linked |= {link_key("group", e): ids.groups[e] for e in group_ids if e in ids.groups}
        found = find_duplicates(made_during(self.before, users, groups, linked))
        for action in found.actions:
            if action.portal_id in found.own_copy_ids:
                self._apply_one(action, _Folded({}, frozenset()))

    # --- one action ------------------------------------------------------------------------

    def _apply_one(self, action: Action, folded: _Folded) -> None:
        try:
            portal_id = self._write(action, self.ids, folded)
        except RejectedError as exc:
            ended = [Outcome(action, False, error=str(exc))]
        else:
            ended = [Outcome(action, True, portal_id)]
            if action.key in folded.members_of:  # the members it was created with, by name
                ended.append(Outcome(folded.members_of[action.key], True, portal_id, folded=True))
        with self._lock:
            self.outcomes.extend(ended)

    def _write(self, action: Action, ids: _IdMap, folded: _Folded) -> str | None:
        kind = action.kind
        portal = self.portal
        if kind is ActionKind.CREATE_USER:
            try:
                user = portal.create_user(dict(action.changes))
            except ConflictError:
                # created meanwhile (a concurrent job, or a run cut off after the write)
                found = portal.find_users(external_ids=[action.object_id])
                if not found:
                    raise
                user = found[0]
            ids.set_user(action.object_id, user.id)
            return user.id
        if kind in (
            ActionKind.ADOPT_USER,
            ActionKind.UPDATE_USER,
            ActionKind.REACTIVATE_USER,
            ActionKind.DEACTIVATE_USER,
        ):
            assert action.portal_id is not None
            user = portal.update_user(action.portal_id, dict(action.changes))
            ids.set_user(action.object_id, user.id)
            return user.id
        if kind in (ActionKind.DELETE_USER, ActionKind.DELETE_DUPLICATE_USER):
            assert action.portal_id is not None
            portal.delete_user(action.portal_id)
            return action.portal_id
        if kind is ActionKind.CREATE_GROUP:
            attrs: dict[str, Any] = dict(action.changes)
            member_action = folded.members_of.get(action.key)
            if member_action is not None:
                attrs["members"] = ids.portal_ids(member_action.member_ids)
            try:
                group = portal.create_group(attrs)
            except ConflictError:
                existing = portal.find_group(action.object_id)
                if existing is None:
                    raise
                group = existing
                if member_action is not None:
                    missing = set(attrs.get("members", ())) - set(existing.member_ids)
                    if missing:
                        portal.add_members(existing.id, sorted(missing))
            ids.set_group(action.object_id, group.id)
            return group.id
        if kind is ActionKind.UPDATE_GROUP:
            assert action.portal_id is not None
            portal.update_group(action.portal_id, dict(action.changes))
            return action.portal_id
        if kind is ActionKind.ADD_MEMBERS:
            group_id = action.portal_id or ids.group(action.object_id)
            members = ids.portal_ids(action.member_ids)
            if members:
                portal.add_members(group_id, members)
            return group_id
        if kind is ActionKind.REMOVE_MEMBERS:
            assert action.portal_id is not None
            members = ids.portal_ids(action.member_ids, missing_ok=True)
            members += list(action.portal_member_ids)
            if members:
                portal.remove_members(action.portal_id, members)
            return action.portal_id
        if kind in (ActionKind.DELETE_GROUP, ActionKind.DELETE_DUPLICATE_GROUP):
            assert action.portal_id is not None
            portal.delete_group(action.portal_id)
            return action.portal_id
        raise AssertionError(f"unknown action kind {kind}")


class _IdMap:
    """Entra id -> portal id, filled from the portal state and from creates as they happen."""

    def __init__(self, state: PortalState) -> None:
        self.lock = threading.Lock()
        # where the portal holds copies, the kept one is the one members go to
        self.users: dict[str, str] = {}
        for user in sorted(state.users, key=state.kept_first):
            if user.external_id:
                self.users.setdefault(user.external_id, user.id)
        self.groups: dict[str, str] = {}
        for group in sorted(state.groups, key=state.kept_first):
            if group.external_id:
                self.groups.setdefault(group.external_id, group.id)

    def set_user(self, entra_id: str, portal_id: str) -> None:
        with self.lock:
            self.users[entra_id] = portal_id

    def set_group(self, entra_id: str, portal_id: str) -> None:
        with self.lock:
            self.groups[entra_id] = portal_id

    def group(self, entra_id: str) -> str:
        with self.lock:
            try:
                return self.groups[entra_id]
            except KeyError:
                raise RejectedError(
                    f"the class {entra_id} is not in the portal (its creation failed)"
                ) from None

    def portal_ids(self, entra_ids: Iterable[str], *, missing_ok: bool = False) -> list[str]:
        with self.lock:
            found = [self.users[i] for i in entra_ids if i in self.users]
            missing = [i for i in entra_ids if i not in self.users]
        if missing and not missing_ok:
            raise RejectedError(
                f"{len(missing)} members are not in the portal (their creation failed)"
            )
        return found


@dataclass(frozen=True)
class _Folded:
    """Member additions folded into the creation of their group: one write instead of two."""

    members_of: dict[str, Action]  # CREATE_GROUP key -> its ADD_MEMBERS action
    skipped: frozenset[str]  # ADD_MEMBERS keys done by the create


def _fold_group_creates(actions: Sequence[Action]) -> _Folded:
    creates = {a.object_id: a for a in actions if a.kind is ActionKind.CREATE_GROUP}
    members_of: dict[str, Action] = {}
    for action in actions:
        if action.kind is ActionKind.ADD_MEMBERS and action.object_id in creates:
            members_of[creates[action.object_id].key] = action
    return _Folded(members_of, frozenset(a.key for a in members_of.values()))
