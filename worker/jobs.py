"""RQ jobs. Thin: ids in, ``common`` does the work; each re-reads current state and is
idempotent, so replays, duplicates and the hourly reconcile converge on the same result.

Start a reconcile by hand (see the README for the exact line):
``rq enqueue --serializer rq.serializers.JSONSerializer --queue reconcile
worker.jobs.full_reconcile TENANT_ID``

Failure policy: errors propagate to RQ, which retries them as the job was enqueued to (bounded)
and then keeps the job in its failed registry with the error's sentence as the reason.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

from common.config import load_config
from common.logs import bind_job_context, get_logger
from common.state.dispatch import Dispatcher, ObjectKind
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


def full_reconcile(tenant_id: str) -> dict[str, Any]:
    """Reconcile one tenant: make its portal match Microsoft 365."""
    svc = _services()
    bind_job_context(tenant=tenant_id, job="full_reconcile")
    with _dispatcher(svc).reconcile_guard(tenant_id) as turn:
        if not turn:
            return {"outcome": "skipped", "message": "a reconcile of this tenant is running"}
        report = engine.reconcile_tenant(svc, tenant_id, why="reconcile")
    return _finished("reconcile finished", report)


def reconcile_all() -> list[str]:
    """Queue a reconcile for every enabled tenant (the hourly schedule); returns those queued."""
    svc = _services()
    dispatcher = _dispatcher(svc)
    return [
        tenant.id
        for tenant in svc.registry.all()
        if tenant.enabled and dispatcher.enqueue_reconcile(tenant.id, why="schedule")
    ]


def sync_user(tenant_id: str, user_id: str) -> dict[str, Any]:
    """Apply the current state of one Microsoft user to the portal (after a notification)."""
    return _sync_object(tenant_id, "user", user_id, engine.sync_user, noun="user")


def sync_group(tenant_id: str, group_id: str) -> dict[str, Any]:
    """Apply the current state of one class (name, school, members) to the portal."""
    return _sync_object(tenant_id, "group", group_id, engine.sync_group, noun="class")


class _ObjectSync(Protocol):
    def __call__(
        self, services: Services, tenant_id: str, object_id: str, /, *, why: str
    ) -> RunReport: ...


def _sync_object(
    tenant_id: str, kind: ObjectKind, object_id: str, sync: _ObjectSync, *, noun: str
) -> dict[str, Any]:
    """One real-time run of an object; while another run of it holds the object, requeued."""
    svc = _services()
    bind_job_context(tenant=tenant_id, job=f"sync_{kind}", object_id=object_id)
    with _dispatcher(svc).object_job(tenant_id, kind, object_id) as turn:
        if not turn:
            return {"outcome": "requeued", "message": f"another run of this {noun} is in progress"}
        report = sync(svc, tenant_id, object_id, why="notification")
    return _finished(f"{kind} synced", report)


def _finished(event: str, report: RunReport) -> dict[str, Any]:
    """Log how the run ended; its report is the job's result, which RQ keeps."""
    log.info(
        event,
        extra={"outcome": report.outcome, "written": report.written, "held": report.held},
    )
    return report.to_dict()


def recover_abandoned() -> list[str]:
    """Queue again the objects whose runs were lost with their worker (the schedule)."""
    return [c.object_id for c in _dispatcher(_services()).recover_abandoned()]


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
