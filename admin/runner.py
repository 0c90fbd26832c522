"""Runs a person starts from a page: a full reconcile (to test, or the first production sync)
and "Synka nu" for people or classes.

A reconcile runs in a thread of the admin process that started it, under the tenant's
reconcile lease (the same one the workers take, so one full reconcile per tenant at a time),
and writes its progress to Redis (``common.state.progress``): the page that shows the bar may
be served by any admin process. "Synka nu" runs each object at once, under its object lease,
through the same engine functions the real-time jobs call.

Failure policy: a run's ``SkolsynkError`` becomes the progress record's sentence; anything else
is logged by type and recorded as failed, so a progress bar never spins for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask_babel import gettext as _

from common.errors import AlreadyRunning, SkolsynkError
from common.state.dispatch import ObjectKind
from common.state.guards import JobGuards
from common.state.progress import ProgressStore
from common.state.runs import RunReport
from common.sync import engine
from common.sync.services import Services

log = logging.getLogger(__name__)

#: after the first production sync, the school's real-time changes need its subscriptions
AfterRun = Callable[[], None]


def start_reconcile(
    services: Services,
    progress: ProgressStore,
    tenant_id: str,
    environment: str,
    *,
    why: str,
    after: AfterRun | None = None,
    busy_sentence: str,
) -> str:
    """Start a reconcile of ``tenant_id`` in the background; returns its progress id."""
    progress_id = progress.start(tenant_id, environment=environment)
    thread = threading.Thread(
        target=_reconcile,
        args=(services, progress, progress_id, tenant_id, why, after, busy_sentence),
        name=f"admin-reconcile-{tenant_id}",
        daemon=True,
    )
    thread.start()
    return progress_id


#: how long a sync asked for in the app waits for another reconcile of the school to end
BUSY_WAIT_SECONDS = 15 * 60
BUSY_POLL_SECONDS = 1.0


def _reconcile(  # noqa: PLR0917 - the thread's argument tuple
    services: Services,
    progress: ProgressStore,
    progress_id: str,
    tenant_id: str,
    why: str,
    after: AfterRun | None,
    busy_sentence: str,
) -> None:
    try:
        # the reconcile takes its tenant's lease (common.state.leases); while another one runs
        # (the hourly one, or one queued when the portal was set), the page says so and this
        # one starts when that one has ended: the person asked for a sync and gets one
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            try:
                report = engine.reconcile_tenant(
                    services,
                    tenant_id,
                    why=why,
                    status=lambda sentence: progress.status(progress_id, sentence),
                    progress=lambda phase, done, total: progress.advance(
                        progress_id, phase, done, total
                    ),
                    started_by="the admin app",
                )
                break
            except AlreadyRunning:
                if time.monotonic() > deadline:
                    progress.finish(progress_id, None, message=busy_sentence)
                    return
                progress.status(progress_id, busy_sentence)
                time.sleep(BUSY_POLL_SECONDS)
        if after is not None:
            after()
        progress.finish(progress_id, report.to_dict())
    except SkolsynkError as exc:
        progress.finish(progress_id, None, message=str(exc))
    except Exception as exc:  # a thread's last resort: the page must learn it ended
        log.error("a run started from the admin app failed", extra={"error": type(exc).__name__})
        progress.finish(progress_id, None, message="unexpected")


def sync_now(
    services: Services, tenant_id: str, objects: list[tuple[ObjectKind, str]]
) -> list[tuple[ObjectKind, str, RunReport | None, str]]:
    """Sync each (kind, id) at once; per object its report, or a sentence why not."""
    guards = JobGuards(services.redis)
    results: list[tuple[ObjectKind, str, RunReport | None, str]] = []
    for kind, object_id in objects:
        sync = engine.sync_user if kind == "user" else engine.sync_group
        try:
            with guards.object_job(tenant_id, kind, object_id) as turn:
                if not turn:
                    results.append(
                        (
                            kind,
                            object_id,
                            None,
                            _("En synkning av den pågår redan; den körs strax."),
                        )
                    )
                    continue
                report = sync(services, tenant_id, object_id, why="on demand")
            results.append((kind, object_id, report, ""))
        except SkolsynkError as exc:
            results.append((kind, object_id, None, str(exc)))
    return results
