"""RQ jobs. Thin: ids in, ``common`` does the work; each re-reads current state and is
idempotent, so replays, duplicates and the hourly reconcile converge on the same result.

Start a reconcile by hand (see the README for the exact line):
``rq enqueue --serializer rq.serializers.JSONSerializer --queue reconcile
worker.jobs.full_reconcile TENANT_ID``

Failure policy: errors propagate to RQ, which retries them as the job was enqueued to (bounded)
and then keeps the job in its failed registry with the error's sentence as the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from rq import get_current_job

from common.config import load_config
from common.errors import AlreadyRunning, QueueUnavailable, TenantDisabled
from common.logs import bind_job_context, get_logger
from common.state.dispatch import Change, Dispatcher, ObjectKind
from common.state.guards import RECHECK_DELAYS_SECONDS, JobGuards
from common.state.latency import ChangeLatency, LatencyStore, received_at
from common.state.runs import RunReport
from common.state.subscription_lifecycle import renew_subscriptions as renew_tenant_subscriptions
from common.state.subscriptions import SubscriptionStore
from common.sync import engine
from common.sync.services import Services, build_services

log = get_logger(__name__)


@cache
def _services() -> Services:
    return build_services(load_config())


def _dispatcher(svc: Services) -> Dispatcher:
    return Dispatcher(svc.redis)


def _guards(svc: Services) -> JobGuards:
    return JobGuards(svc.redis)


def full_reconcile(tenant_id: str) -> dict[str, Any]:
    """Reconcile one tenant: make its portal match Microsoft 365.

    While another reconcile of the tenant runs, or while the tenant is disabled, it writes
    nothing and says why in the log and its result (no retry: that is not a failure).
    """
    svc = _services()
    bind_job_context(tenant=tenant_id, job="full_reconcile")
    job = get_current_job()
    why = str(job.meta.get("why", "")) if job is not None else ""
    try:
        report = engine.reconcile_tenant(
            svc, tenant_id, why="reconcile", started_by=_started_by(why)
        )
    except (AlreadyRunning, TenantDisabled) as exc:
        log.info("reconcile skipped", extra={"outcome": "skipped", "reason": str(exc)})
        return {"outcome": "skipped", "message": str(exc)}
    return _finished("reconcile finished", report)


def _started_by(why: str) -> str:
    """Who queued a reconcile, as the second run's message names it."""
    if why == "schedule":
        return "the scheduler"
    if not why:
        return "a queued job (rq enqueue)"
    return f"a queued job ({why})"


def reconcile_all() -> list[str]:
    """Queue a reconcile for every enabled tenant (the hourly schedule); returns those queued."""
    svc = _services()
    dispatcher = _dispatcher(svc)
    return [
        tenant.id
        for tenant in svc.registry.all()
        if tenant.enabled and dispatcher.enqueue_reconcile(tenant.id, why="schedule")
    ]


def sync_user(tenant_id: str, user_id: str, recheck: int = 0) -> dict[str, Any]:
    """Apply the current state of one Microsoft user to the portal (after a notification);
    ``recheck`` counts the scheduled looks at a user Graph did not show."""
    return _sync_object(tenant_id, "user", user_id, engine.sync_user, noun="user", recheck=recheck)


def sync_group(tenant_id: str, group_id: str, recheck: int = 0) -> dict[str, Any]:
    """Apply the current state of one class (name, school, members) to the portal."""
    return _sync_object(
        tenant_id, "group", group_id, engine.sync_group, noun="class", recheck=recheck
    )


class _ObjectSync(Protocol):
    def __call__(
        self,
        services: Services,
        tenant_id: str,
        object_id: str,
        /,
        *,
        why: str,
        believe_missing: bool,
    ) -> RunReport: ...


def _sync_object(
    tenant_id: str,
    kind: ObjectKind,
    object_id: str,
    sync: _ObjectSync,
    *,
    noun: str,
    recheck: int,
) -> dict[str, Any]:
    """One real-time run of an object; while another run of it holds the object, requeued.

    An object Graph does not show is not believed gone at once (replication lag): the run ends,
    freeing its worker and lease, and a scheduled job looks again (``RECHECK_DELAYS_SECONDS``);
    only the last look believes it.
    """
    svc = _services()
    bind_job_context(tenant=tenant_id, job=f"sync_{kind}", object_id=object_id)
    guards = _guards(svc)
    job = get_current_job()
    received = received_at(job.meta, job.created_at) if job is not None else None
    with guards.object_job(tenant_id, kind, object_id, received_at=received) as turn:
        if not turn:
            return {"outcome": "requeued", "message": f"another run of this {noun} is in progress"}
        final = recheck >= len(RECHECK_DELAYS_SECONDS)
        report = sync(svc, tenant_id, object_id, why="notification", believe_missing=final)
    if report.outcome == engine.UNSEEN:
        guards.schedule_recheck(
            Change(tenant_id, kind, object_id), recheck + 1, received_at=received
        )
        svc.telemetry.count("rechecks", kind)
        log.info(f"{noun} not in Graph (yet); looking again later", extra={"recheck": recheck + 1})
        return {"outcome": "recheck", "recheck": recheck + 1}
    if report.written and received is not None:
        _record_latency(svc, tenant_id, kind, received, writes=report.written)
    return _finished(f"{kind} synced", report)


def _record_latency(
    svc: Services, tenant_id: str, kind: ObjectKind, received: datetime, *, writes: int
) -> None:
    """Keep how long this change took from reaching Skolsynk to the portal written, for the
    dashboard; best effort: the portal is written already."""
    latency = ChangeLatency(kind, received, datetime.now(UTC), writes)
    try:
        LatencyStore(svc.redis).record(tenant_id, latency)
    except QueueUnavailable:
        log.warning("could not keep a change's latency")


def _finished(event: str, report: RunReport) -> dict[str, Any]:
    """Log how the run ended; its report is the job's result, which RQ keeps."""
    log.info(
        event,
        extra={"outcome": report.outcome, "written": report.written, "held": report.held},
    )
    return report.to_dict()


def recover_abandoned() -> list[str]:
    """Queue again the objects whose runs were lost with their worker, and the scheduled jobs
    that a lost worker's rq scheduler would have queued (the schedule, every few seconds)."""
    guards = _guards(_services())
    guards.release_overdue()
    return [c.object_id for c in guards.recover_abandoned()]


def renew_subscriptions(tenant_id: str) -> list[str]:
    """Renew the tenant's subscriptions that expire soon; recreate lost ones and reconcile."""
    svc = _services()
    tenant = svc.registry.get(tenant_id)
    report = renew_tenant_subscriptions(
        svc.graph(tenant.id), _subscription_store(svc), tenant.id, _dispatcher(svc)
    )
    return [s.id for s in (*report.renewed, *report.recreated)]


def renew_all_subscriptions() -> list[str]:
    """Renew subscriptions of every enabled tenant (the schedule)."""
    svc = _services()
    renewed: list[str] = []
    for tenant in svc.registry.all():
        if tenant.enabled:
            renewed += renew_subscriptions(tenant.id)
    return renewed


def _subscription_store(svc: Services) -> SubscriptionStore:
    return SubscriptionStore(svc.redis, svc.config.secret_key)
