"""The record step of a run: what it decided and wrote, kept where people and later runs read
it. The report's counts, the audit log (an entry for every write, every held or skipped action
and every attribute the portal refused), the held actions, the links, the size of a healthy
read and the run record.

Failure policy: Redis failures raise ``QueueUnavailable``. Writes are recorded as they end, at
the latest every ``applier.RECORD_EVERY`` writes and at each phase's end (``ended``), so that a
process killed outright leaves at most that many unrecorded; the engine calls ``writes`` in a
``finally``, so that a run the portal or Graph stopped part-way (``TransientError``,
``AuthError``) records every write it made before the error goes on; a write is never undone
because its record could not be written, but the run then fails loudly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from common.graph.client import GraphClient
from common.model import Action, ActionKind, MicrosoftState, Plan
from common.state.held import HeldAction
from common.state.runs import RunReport, now_iso
from common.state.telemetry import graph_statuses
from common.sync.applier import Outcome
from common.sync.guard import Decision, GuardFacts
from common.sync.services import Services

#: the kinds whose write links a portal object to its Microsoft object, and those that unlink it
_LINKING = frozenset({ActionKind.CREATE_USER, ActionKind.ADOPT_USER, ActionKind.CREATE_GROUP})
_UNLINKING = frozenset(
    {
        ActionKind.DELETE_USER,
        ActionKind.DELETE_DUPLICATE_USER,
        ActionKind.DELETE_GROUP,
        ActionKind.DELETE_DUPLICATE_GROUP,
    }
)
_GROUP_KINDS = frozenset(
    {ActionKind.CREATE_GROUP, ActionKind.DELETE_GROUP, ActionKind.DELETE_DUPLICATE_GROUP}
)

#: an audit entry: action, outcome, detail, portal id
_Entry = tuple[Action, str, str, str | None]


def planned(report: RunReport, plan: Plan) -> None:
    """What the plan holds, in the report."""
    report.planned = {k: n for k, n in plan.counts().items() if n}
    report.collisions = len(plan.collisions)
    report.duplicates = sum(len(d.duplicate_ids) for d in plan.duplicates)


def ended(services: Services, report: RunReport, outcomes: Iterable[Outcome]) -> None:
    """Writes as they end, while the run goes on (``Applier``'s ``on_ended``): counted in the
    report, each in the audit log, and the links they made or undid."""
    outcomes = list(outcomes)
    if not outcomes:
        return
    entries = [_counted(report, outcome) for outcome in outcomes]
    services.audit.record_many(report.tenant_id, entries, why=report.why, run_id=report.run_id)
    services.links.update(report.tenant_id, _link_changes(outcomes))


def writes(
    services: Services,
    report: RunReport,
    decision: Decision,
    outcomes: Iterable[Outcome],
    refusals: Iterable[str],
) -> None:
    """What the guards set aside and how the writes not recorded yet ended (``ended`` took the
    others), with the attributes the portal refused (once each): in the report, the held
    actions, the audit log and the links."""
    outcomes = list(outcomes)
    report.skipped = len(decision.skipped)
    report.held = len(decision.held)
    if decision.outcome != "ok":
        report.outcome, report.message = decision.outcome, decision.message
    services.safety.hold(
        report.tenant_id, list(decision.held), run_id=report.run_id, why=report.why
    )
    entries: list[_Entry] = [
        (a, "skipped", decision.skipped_why, a.portal_id) for a in decision.skipped
    ]
    entries += [(a, "held", decision.held_why, a.portal_id) for a in decision.held]
    for outcome in outcomes:
        entries.append(_counted(report, outcome))
    for sentence in dict.fromkeys(refusals):
        report.notes.append(sentence)
        refused = Action(ActionKind.UPDATE_USER, "portal", "attribute refused", sentence)
        entries.append((refused, "refused", sentence, None))
    services.audit.record_many(report.tenant_id, entries, why=report.why, run_id=report.run_id)
    services.links.update(report.tenant_id, _link_changes(outcomes))
    if report.failed and report.outcome == "ok":
        report.outcome = "partial"
        report.message = f"{len(report.failed)} changes were refused by the portal."


def _counted(report: RunReport, outcome: Outcome) -> _Entry:
    """Count one ended action in the report; its audit entry."""
    action = outcome.action
    if not outcome.applied:
        report.failed.append(
            {
                "action": action.kind.value,
                "object_id": action.object_id,
                "label": action.label,
                "error": outcome.error,
            }
        )
        return (action, "failed", outcome.error, None)
    report.applied[action.kind.value] = report.applied.get(action.kind.value, 0) + 1
    if not outcome.folded:
        report.portal_writes += 1
    return (action, "applied", "", outcome.portal_id)


def _link_changes(outcomes: list[Outcome]) -> Iterator[tuple[str, str, str, bool]]:
    """The portal objects the run's creates and adoptions linked, and its deletions unlinked."""
    for outcome in outcomes:
        kind = outcome.action.kind
        if not outcome.applied or outcome.portal_id is None:
            continue
        if kind in _LINKING or kind in _UNLINKING:
            what = "group" if kind in _GROUP_KINDS else "user"
            yield (what, outcome.action.object_id, outcome.portal_id, kind in _LINKING)


def healthy_read(
    services: Services, report: RunReport, microsoft: MicrosoftState, facts: GuardFacts
) -> None:
    """The size of a whole-tenant read the source-health gate found healthy, the yardstick of
    the next runs (nothing when the gate closed)."""
    if facts.gate is None:
        services.safety.remember_good(report.tenant_id, microsoft, facts.managed_seen)


def verdicts(
    services: Services, tenant_id: str, taken: list[HeldAction], verdict: str, *, run_id: str
) -> None:
    """A person's verdict (``approved``, ``rejected``) on held actions, in the audit log."""
    services.audit.record_many(
        tenant_id,
        [(h.action, verdict, "", h.action.portal_id) for h in taken],
        why="approval",
        run_id=run_id,
    )


def finished(report: RunReport, started: float) -> None:
    """When the run ended and how long it took (``started`` from ``time.monotonic``)."""
    report.finished_at = now_iso()
    report.seconds = round(time.monotonic() - started, 3)


def run(
    services: Services,
    report: RunReport,
    *,
    kind: str,
    graph: GraphClient | None,
    keep: bool = True,
) -> None:
    """The run record: kept as the tenant's last run of ``kind`` (with ``keep``), and counted
    in the telemetry with the Graph statuses it met."""
    if keep:
        services.runs.save(report, kind=kind)
    services.telemetry.record_run(
        report, kind=kind, graph_statuses=graph_statuses(graph) if graph else None
    )
