"""The sync engine: read both sides, plan, guard, apply, record. One code path for a whole
tenant (the full reconcile and its preview) and for one object (the real-time jobs and
approvals).

A full reconcile (and an approval) holds the tenant's reconcile lease (``common.state.leases``),
so only one runs per tenant at a time; a disabled tenant gets no writes, and a real-time job for
a disabled or removed tenant is dropped with a log line.

Failure policy: a failed read raises before anything is planned, so nothing is written from a
partial view; the failure is stored as the tenant's last run with a sentence saying why. A busy
lease raises ``AlreadyRunning``, a disabled tenant ``TenantDisabled``, before anything is read.
A ``TransientError`` or ``AuthError`` that stops the writes part-way goes on once the record
step has recorded every write made before it. Errors are the ones of ``common.errors``; nothing
here catches ``requests`` or ``redis`` errors.

Every entry of a run lives here (preview, reconcile, the two object runs, approvals), each
read -> plan -> guard -> apply -> record in a few lines: the read
(``common.graph.source``, the portal, ``at_hand``), the plan (``planner.make_plan``), the guard
(``SafetyState.facts``, then ``guard.decide``), the apply (``applier.Applier``, writes only) and
the record (``record``: audit log, held actions, links, report, run record). What stands alone
is elsewhere: class re-checks (``class_rechecks``), tenant rules (``tenants``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from common.errors import SkolsynkError
from common.graph import source
from common.graph.client import GraphClient
from common.model import REMOVAL_KINDS, MicrosoftState, Plan, PortalState
from common.state.held import HeldAction
from common.state.leases import reconcile_lease
from common.state.registry import Tenant
from common.state.runs import RunReport, new_run_id, now_iso
from common.sync import at_hand, class_rechecks, record
from common.sync.applier import Applier, Progress
from common.sync.guard import Decision, GuardFacts, decide
from common.sync.planner import make_plan
from common.sync.services import Services
from common.sync.tenants import refuse_disabled, writable_tenant


@dataclass(frozen=True)
class Preview:
    """What a run would do, for a person or a tool to read before anything is written."""

    tenant: Tenant
    plan: Plan
    microsoft: MicrosoftState
    portal: PortalState
    #: what the guards know and what they decided
    facts: GuardFacts
    decision: Decision
    #: Graph requests the read took, as Graph's throttling counts them
    graph_requests: int = 0
    #: the Graph client that read (its counters feed the metrics)
    graph: GraphClient | None = None
    #: what this portal cannot hold ("this portal has no attribute for grade; it is not sent")
    notes: tuple[str, ...] = ()

    @property
    def gate(self) -> str | None:
        """Why removals would be skipped (source-health gate), if they would."""
        return self.facts.gate

    @property
    def would_hold(self) -> bool:
        """Whether removals would be held (mass-change guard)."""
        return self.decision.mass_change

    @property
    def foreign(self) -> str | None:
        """Why the whole plan would be held (a portal holding someone else's objects), if so."""
        return self.facts.foreign


#: reading progress: a sentence (the applier reports its own progress)
Status = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def preview(
    services: Services, tenant_id: str, *, status: Status = _noop, environment: str | None = None
) -> Preview:
    """Read both sides of a tenant, plan and guard, writing nothing; ``environment`` plans
    against that portal environment instead of the tenant's current one (before switching)."""
    tenant = services.registry.get(tenant_id)
    if environment is not None and environment != tenant.environment:
        tenant = replace(tenant, environment=environment)  # type: ignore[arg-type]
    status(f"Reading Microsoft 365 tenant {tenant.name}")
    graph = services.graph(tenant.id)
    microsoft = source.read_tenant(graph, tenant.scope)
    status(
        f"Read {len(microsoft.users)} students and teachers and {len(microsoft.classes)} "
        f"classes in scope; reading the {tenant.environment} portal"
    )
    portal = services.portal(tenant)
    portal.capabilities(refresh=True)  # what the portal declares is read at every reconcile
    state = at_hand.with_links(
        services,
        tenant.id,
        PortalState(users=tuple(portal.list_users()), groups=tuple(portal.list_groups())),
        everything=True,
    )
    plan = make_plan(microsoft, state)
    facts = services.safety.facts(tenant, plan, state, whole_read=microsoft)
    return Preview(
        tenant,
        plan,
        microsoft,
        state,
        facts,
        decide(plan, facts),
        graph.graph_requests,
        graph,
        notes=(*portal.mapping().notes, *portal.capabilities().notes),
    )


def reconcile_tenant(
    services: Services,
    tenant_id: str,
    *,
    dry_run: bool = False,
    why: str = "reconcile",
    status: Status = _noop,
    progress: Progress | None = None,
    started_by: str | None = None,
) -> RunReport:
    """Make the tenant's portal match Microsoft 365 (or, with ``dry_run``, say what would).

    ``started_by`` says who asked, for a second run to read ("the scheduler"; by default
    this process's user and host).
    """
    tenant = services.registry.get(tenant_id)
    if dry_run:
        return _reconcile(services, tenant, dry_run=True, why=why, status=status)
    refuse_disabled(tenant)
    with reconcile_lease(services.redis, tenant.id, tenant.name, started_by=started_by):
        return _reconcile(services, tenant, why=why, status=status, progress=progress)


def _reconcile(
    services: Services,
    tenant: Tenant,
    *,
    why: str,
    status: Status,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    report = RunReport(new_run_id(), tenant.id, why, now_iso(), dry_run=dry_run)
    report.environment = tenant.environment
    started = time.monotonic()
    view: Preview | None = None
    try:
        view = preview(services, tenant.id, status=status)  # read -> plan -> guard
        _read_counts(report, view)
        if dry_run:
            report.outcome = "preview"
        elif view.decision.held_whole:
            report.outcome, report.message = view.decision.outcome, view.decision.message
        elif not services.registry.get(tenant.id).enabled:
            # disabled while this run read: the writes it planned are not made
            report.outcome = "skipped"
            report.message = (
                f"Tenant {tenant.name} was disabled during the run; nothing was written."
            )
        else:
            status(f"Applying {len(view.plan.actions)} changes")
            _apply_and_record(
                services, tenant, report, view.portal, view.decision, progress=progress
            )
            record.healthy_read(services, report, view.microsoft, view.facts)
    except SkolsynkError as exc:
        report.outcome = "failed"
        report.message = str(exc)
        raise
    finally:
        record.finished(report, started)
        if not dry_run:
            record.run(services, report, kind="reconcile", graph=view.graph if view else None)
    return report


def sync_user(
    services: Services, tenant_id: str, user_id: str, *, why: str, believe_missing: bool = True
) -> RunReport:
    """Bring one Microsoft user's portal account in line (a real-time job).

    With ``believe_missing=False``, a user Graph does not show (a 404 right after a change can
    be replication lag) is left alone: the report's outcome is ``UNSEEN`` and nothing is
    written, so the caller can look again later (``JobGuards.schedule_recheck`` in
    ``common.state.guards``) instead of waiting here.
    """
    tenant = writable_tenant(services, tenant_id, why=why)
    if isinstance(tenant, RunReport):
        return tenant
    graph = services.graph(tenant.id)
    microsoft = source.read_user(graph, tenant.scope, user_id)
    if not believe_missing and not at_hand.known(microsoft, user_id):
        return _unseen(tenant, why, graph)
    portal = services.portal(tenant)
    microsoft, users = at_hand.accounts(graph, tenant.scope, portal, microsoft, [user_id])
    state = at_hand.with_links(services, tenant.id, PortalState(users=tuple(users), groups=()))
    report = _apply_small(services, tenant, microsoft, state, why=why, graph=graph)
    if user_id not in microsoft.users:
        class_rechecks.classes_left(services, tenant.id, portal, users, user_id)
    elif not any(u.active for u in users if u.external_id == user_id):
        # no active account before this job: she may be coming (back) into scope
        class_rechecks.classes_joined(services, tenant.id, graph, portal, user_id)
    return report


def sync_group(
    services: Services, tenant_id: str, group_id: str, *, why: str, believe_missing: bool = True
) -> RunReport:
    """Bring one class (its name, school and members) in line (a real-time job).

    The class's members in scope come classified from the read (the same rule as a full
    read); members that already have an active managed portal account need nothing more (their
    own jobs keep them right), members without one, or with an inactive one, are read from
    Graph so that they are created, adopted, reactivated or take an account over in the same
    run, before they are added. Every copy of the group in the portal is looked at, so that
    duplicates are planned for as a full reconcile plans for them. ``believe_missing`` as in
    ``sync_user``.
    """
    tenant = writable_tenant(services, tenant_id, why=why)
    if isinstance(tenant, RunReport):
        return tenant
    graph = services.graph(tenant.id)
    microsoft = source.read_class(graph, tenant.scope, group_id)
    if not believe_missing and not at_hand.known(microsoft, group_id):
        return _unseen(tenant, why, graph)
    portal = services.portal(tenant)
    groups = portal.find_groups(group_id)
    cls = microsoft.classes.get(group_id)
    member_ids = sorted(cls.member_ids) if cls is not None else []
    users = portal.find_users(external_ids=member_ids) if member_ids else []
    # an inactive account is not trusted as it is: it may belong to a member just restored or
    # enabled whose own job has not run yet, and left out it would be dropped from the class
    # for good (nothing runs this class again). Such members are read from Graph as well.
    linked = {u.external_id for u in users if u.active}
    newcomers = [m for m in member_ids if m not in linked]
    for member_id in newcomers:
        microsoft = at_hand.merge(microsoft, source.read_user(graph, tenant.scope, member_id))
    if newcomers:
        microsoft, more = at_hand.accounts(graph, tenant.scope, portal, microsoft, newcomers)
        users += more
    for group in groups:
        known = {u.id for u in users}
        users += [portal.get_user(pid) for pid in sorted(group.member_ids - known)]
    state = at_hand.with_links(
        services, tenant.id, PortalState(users=tuple(at_hand.unique(users)), groups=tuple(groups))
    )
    return _apply_small(services, tenant, microsoft, state, why=why, graph=graph)


#: the outcome of an object run that found no such object and did not believe it gone yet
UNSEEN = "unseen"


def _unseen(tenant: Tenant, why: str, graph: GraphClient) -> RunReport:
    report = RunReport(new_run_id(), tenant.id, why, now_iso(), outcome=UNSEEN)
    report.finished_at = now_iso()
    report.graph_requests = graph.graph_requests
    return report


def approve_held(
    services: Services, tenant_id: str, keys: list[str] | None = None
) -> tuple[list[HeldAction], RunReport]:
    """Apply held removals a person approved, after checking each object is still gone."""
    tenant = services.registry.get(tenant_id)
    refuse_disabled(tenant)
    with reconcile_lease(services.redis, tenant.id, tenant.name, started_by="an approval"):
        return _approve(services, tenant, keys)


def _approve(
    services: Services, tenant: Tenant, keys: list[str] | None
) -> tuple[list[HeldAction], RunReport]:
    started = time.monotonic()
    taken = services.safety.take(tenant.id, keys)
    report = RunReport(new_run_id(), tenant.id, "approval", now_iso())
    microsoft, state = at_hand.held(services, tenant, [h.action for h in taken])
    plan = _only_approved(make_plan(microsoft, state), taken)
    decision = decide(plan, GuardFacts(tenant.thresholds, tenant_id=tenant.id, approved=True))
    _apply_and_record(services, tenant, report, state, decision)
    record.finished(report, started)
    record.verdicts(services, tenant.id, taken, "approved", run_id=report.run_id)
    return taken, report


def _only_approved(plan: Plan, taken: list[HeldAction]) -> Plan:
    """The approved removals of ``plan`` and what undoes them, if the object came back."""
    approved = {h.action.key for h in taken}
    return replace(
        plan,
        actions=tuple(a for a in plan.actions if a.kind not in REMOVAL_KINDS or a.key in approved),
    )


def reject_held(
    services: Services, tenant_id: str, keys: list[str] | None = None
) -> list[HeldAction]:
    """Drop held removals; a later run that finds the same difference holds them again."""
    tenant = services.registry.get(tenant_id)
    taken = services.safety.take(tenant.id, keys)
    record.verdicts(services, tenant.id, taken, "rejected", run_id=new_run_id())
    return taken


# --- helpers ------------------------------------------------------------------------------


def _apply_small(
    services: Services,
    tenant: Tenant,
    microsoft: MicrosoftState,
    state: PortalState,
    *,
    why: str,
    graph: GraphClient,
) -> RunReport:
    started = time.monotonic()
    report = RunReport(new_run_id(), tenant.id, why, now_iso())
    plan = make_plan(microsoft, state)
    record.planned(report, plan)
    decision = decide(plan, services.safety.facts(tenant, plan, state))
    _apply_and_record(services, tenant, report, state, decision)
    record.finished(report, started)
    report.graph_requests = graph.graph_requests
    record.run(services, report, kind="live", graph=graph, keep=bool(plan.actions))
    return report


def _apply_and_record(
    services: Services,
    tenant: Tenant,
    report: RunReport,
    state: PortalState,
    decision: Decision,
    *,
    progress: Progress | None = None,
) -> None:
    """Apply what the guards let through, then record it: also when the writes stop part-way,
    so that the audit log holds every write made before the error goes on."""
    # the removals let through count in the window before they are made, so that a run
    # deciding meanwhile counts them (the mass-change guard across concurrent runs)
    services.safety.note_removals(tenant.id, decision.removals, report.run_id)
    writer = services.portal(tenant)
    applier = Applier(
        writer,
        state,
        progress=progress,
        on_ended=lambda outcomes: record.ended(services, report, outcomes),
    )
    try:
        applier.apply(decision.apply)
    finally:
        record.writes(services, report, decision, applier.take_outcomes(), writer.refusals)


def _read_counts(report: RunReport, view: Preview) -> None:
    """What a whole-tenant read found and planned, in the report."""
    record.planned(report, view.plan)
    report.graph_requests = view.graph_requests
    report.microsoft_users = len(view.microsoft.users)
    report.microsoft_classes = len(view.microsoft.classes)
    report.notes = list(view.notes)
