"""Carries out a plan against the portal, phase by phase, with bounded concurrency.

Phases are the planner's (``planner.PHASES``: users before groups before memberships before
removals) so that every member exists before it is added. Within a phase, actions run
concurrently. Removals (deactivations and deletions) pass the safety guards first: skipped when
the source-health gate closed, held when the mass-change guard trips; the deletion of a
duplicate is always held unless a person approved it. Every write is recorded in the audit log.

Failure policy: an action the portal refuses (``RejectedError``) is recorded as failed and the
run goes on; a ``TransientError`` or ``AuthError`` stops the run (what was written stays
written; running again converges because the planner starts from the portal's current state).

Long because the guard step, the phases and what they record (audit, links, own duplicate
copies) belong to one pass over the plan; the rules themselves are the planner's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from common.errors import ConflictError, RejectedError
from common.model import (
    ALWAYS_HELD_KINDS,
    REMOVAL_KINDS,
    Action,
    ActionKind,
    Plan,
    PortalState,
    link_key,
)
from common.portal.protocol import Portal
from common.state.audit import AuditLog
from common.state.links import Links
from common.state.runs import RunReport
from common.sync.duplicates import find_duplicates, made_during
from common.sync.planner import PHASES
from common.sync.safety import SafetyState

DEFAULT_CONCURRENCY = 8

#: progress callback: phase, actions done so far, actions in all
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunContext:
    """Who runs and why: goes into the audit log and the report."""

    tenant_id: str
    run_id: str
    why: str  # "reconcile", "notification", "approval"


class Applier:
    """Applies plans for one tenant's portal."""

    def __init__(
        self,
        portal: Portal,
        *,
        audit: AuditLog,
        safety: SafetyState,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Progress | None = None,
        links: Links | None = None,
    ) -> None:
        self.portal = portal
        self.audit = audit
        self.safety = safety
        self.links = links
        self.concurrency = concurrency
        self.progress = progress

    def apply(
        self,
        plan: Plan,
        portal_state: PortalState,
        report: RunReport,
        ctx: RunContext,
        *,
        gate: str | None,
        hold_removals: bool,
        approved: bool = False,
    ) -> RunReport:
        """Apply ``plan``; removals are skipped when ``gate`` says why, held when asked to.

        Deletions of duplicates are held on their own unless ``approved`` (a person approved
        them) or the whole set of removals is held or skipped anyway."""
        ids = _IdMap(portal_state)
        # copies this very run made are its own mistake: removed at once, past every guard
        own = [a for a in plan.removals if a.portal_id in plan.own_copy_ids]
        removals = tuple(a for a in plan.removals if a.portal_id not in plan.own_copy_ids)
        to_apply = [a for a in plan.actions if a.kind not in REMOVAL_KINDS] + own
        always_held = [] if approved else [a for a in removals if a.kind in ALWAYS_HELD_KINDS]
        if always_held and not gate and not hold_removals:
            self._hold(
                always_held,
                report,
                ctx,
                f"{len(always_held)} duplicate portal objects are held for approval "
                f"(they may carry licences).",
                "duplicate",
            )
            removals = tuple(a for a in removals if a.kind not in ALWAYS_HELD_KINDS)
        if gate:
            report.skipped = len(removals)
            report.outcome = "gated"
            report.message = f"Removals skipped: {gate}."
            self._audit_each(ctx, removals, "skipped", gate)
        elif hold_removals:
            self._hold(
                list(removals),
                report,
                ctx,
                f"{len(removals)} deactivations and deletions are held for approval "
                f"(more than the tenant's threshold).",
                "mass-change guard",
            )
        else:
            to_apply.extend(removals)
            self.safety.note_removals(ctx.tenant_id, len(removals), ctx.run_id)

        total = len(to_apply)
        done = 0
        lock = threading.Lock()
        folded = _fold_group_creates(to_apply)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for phase, kinds in PHASES:
                if phase == "members added":  # every create is done
                    self._remove_own_copies(portal_state, ids, report, ctx)
                batch = [a for a in to_apply if a.kind in kinds and a.key not in folded.skipped]
                if not batch:
                    continue

                def run(action: Action, phase: str = phase) -> None:
                    nonlocal done
                    self._apply_one(action, ids, report, ctx, folded)
                    with lock:
                        done += 1 + (1 if action.key in folded.members_of else 0)
                        if self.progress is not None:
                            self.progress(phase, done, total)

                # list() re-raises the first exception of a stopping error
                list(pool.map(run, batch))
        if report.failed and report.outcome == "ok":
            report.outcome = "partial"
            report.message = f"{len(report.failed)} changes were refused by the portal."
        return report

    def _remove_own_copies(
        self, before: PortalState, ids: _IdMap, report: RunReport, ctx: RunContext
    ) -> None:
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
        with ids.lock:
            linked = {link_key("user", e): ids.users[e] for e in user_ids if e in ids.users}
            linked |= {link_key("group", e): ids.groups[e] for e in group_ids if e in ids.groups}
        found = find_duplicates(made_during(before, users, groups, linked))
        for action in found.actions:
            if action.portal_id in found.own_copy_ids:
                self._apply_one(action, ids, report, ctx, _Folded({}, frozenset()))

    def _hold(
        self, actions: list[Action], report: RunReport, ctx: RunContext, message: str, why: str
    ) -> None:
        """Hold ``actions`` for a person's decision and say so in the report and audit log."""
        self.safety.hold(ctx.tenant_id, actions, run_id=ctx.run_id, why=ctx.why)
        report.held += len(actions)
        report.outcome = "held"
        report.message = message
        self._audit_each(ctx, actions, "held", why)

    # --- one action ------------------------------------------------------------------------

    def _apply_one(
        self,
        action: Action,
        ids: _IdMap,
        report: RunReport,
        ctx: RunContext,
        folded: _Folded,
    ) -> None:
        try:
            portal_id = self._write(action, ids, folded)
        except RejectedError as exc:
            report_failed(report, action, str(exc))
            self._audit(ctx, action, "failed", detail=str(exc))
            return
        with ids.lock:
            _count_applied(report, action)
            report.portal_writes += 1
            if action.key in folded.members_of:
                _count_applied(report, folded.members_of[action.key])
        self._remember_link(ctx, action, portal_id)
        self._audit(ctx, action, "applied", portal_id=portal_id)
        if action.key in folded.members_of:  # the members it was created with, by name
            self._audit(ctx, folded.members_of[action.key], "applied", portal_id=portal_id)

    def _remember_link(self, ctx: RunContext, action: Action, portal_id: str | None) -> None:
        """Record the portal object a create or adoption linked; forget a deleted one's."""
        if self.links is None or portal_id is None:
            return
        kind = action.kind
        what = "group" if kind in _GROUP_KINDS else "user"
        if kind in (ActionKind.CREATE_USER, ActionKind.ADOPT_USER, ActionKind.CREATE_GROUP):
            self.links.record(ctx.tenant_id, what, action.object_id, portal_id)
        elif kind in _DELETE_KINDS:
            self.links.forget(ctx.tenant_id, what, action.object_id, portal_id)

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

    def _audit(
        self,
        ctx: RunContext,
        action: Action,
        outcome: str,
        *,
        detail: str = "",
        portal_id: str | None = None,
    ) -> None:
        """One action's entry in the audit log, under this run's tenant, reason and id."""
        self.audit.record(
            ctx.tenant_id,
            action,
            outcome=outcome,
            why=ctx.why,
            run_id=ctx.run_id,
            detail=detail,
            portal_id=portal_id,
        )

    def _audit_each(
        self, ctx: RunContext, actions: Iterable[Action], outcome: str, detail: str
    ) -> None:
        self.audit.record_many(
            ctx.tenant_id,
            [(a, outcome, detail, a.portal_id) for a in actions],
            why=ctx.why,
            run_id=ctx.run_id,
        )


_GROUP_KINDS = frozenset(
    {ActionKind.CREATE_GROUP, ActionKind.DELETE_GROUP, ActionKind.DELETE_DUPLICATE_GROUP}
)
_DELETE_KINDS = frozenset(
    {
        ActionKind.DELETE_USER,
        ActionKind.DELETE_DUPLICATE_USER,
        ActionKind.DELETE_GROUP,
        ActionKind.DELETE_DUPLICATE_GROUP,
    }
)


def report_failed(report: RunReport, action: Action, message: str) -> None:
    report.failed.append(
        {
            "action": action.kind.value,
            "object_id": action.object_id,
            "label": action.label,
            "error": message,
        }
    )


def _count_applied(report: RunReport, action: Action) -> None:
    """Count one more applied action of its kind (a folded member addition counts as its own)."""
    report.applied[action.kind.value] = report.applied.get(action.kind.value, 0) + 1


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


def _fold_group_creates(actions: list[Action]) -> _Folded:
    creates = {a.object_id: a for a in actions if a.kind is ActionKind.CREATE_GROUP}
    members_of: dict[str, Action] = {}
    for action in actions:
        if action.kind is ActionKind.ADD_MEMBERS and action.object_id in creates:
            members_of[creates[action.object_id].key] = action
    return _Folded(members_of, frozenset(a.key for a in members_of.values()))
