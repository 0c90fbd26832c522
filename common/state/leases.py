"""One full reconcile per tenant at a time: a lease in Redis, and the hand-over between a
reconcile and the real-time object runs of the same tenant.

The lease is redis-py's ``Lock`` (a TTL of ``RECONCILE_LEASE_SECONDS``), renewed every
``RECONCILE_RENEW_SECONDS`` by a thread while the run goes on and released at its end; a process
that dies stops renewing it and it lapses within the TTL. The lock's token is a small JSON
record of who started the run and when (with a random part, so it stays unique): taking the
lease and naming its holder are one write, and a second run that finds it taken can always say
which run holds it.

A reconcile and an object run never write the same object at once. The object runs keep their
per-object leases (``common.state.dispatch``); an object run that starts while its tenant's
reconcile holds the lease goes back on the queue (``Dispatcher.object_job``), and a reconcile
that takes the lease first waits until the object runs already under way have ended. Each side
writes its own lease before it looks for the other's, so at least one of them sees the other.
While it runs, ``enqueue_reconcile`` queues no other reconcile of the tenant.

Failure policy: Redis failures raise ``QueueUnavailable``; a lease that is busy raises
``AlreadyRunning`` with a sentence naming the run that holds it. A lease lost while running
(Redis away longer than the TTL) is logged; the run goes on, since runs are idempotent.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import redis
from redis.exceptions import LockError

from common.errors import AlreadyRunning
from common.logs import get_logger
from common.state.dispatch import OBJECT_JOB_TIMEOUT_SECONDS, reconcile_pending_key
from common.state.guards import reconcile_lock_key
from common.state.store import KEY_PREFIX, redis_errors

log = get_logger(__name__)

RECONCILE_LEASE_SECONDS: Final = 60
RECONCILE_RENEW_SECONDS: Final = 15.0
#: a reconcile waits at most this long for object runs under way (their own job timeout)
OBJECT_RUNS_WAIT_SECONDS: Final = OBJECT_JOB_TIMEOUT_SECONDS
_POLL_SECONDS: Final = 0.1


def _object_locks(tenant_id: str) -> str:
    # the per-object lock keys of common.state.guards.object_lock_key, for this tenant
    return f"{KEY_PREFIX}lock:{tenant_id}:*"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a tenant's reconcile lease, since when."""

    started_at: datetime
    started_by: str

    def describe(self) -> str:
        local = self.started_at.astimezone(UTC)
        when = local.strftime("%H:%M UTC")
        if local.date() != datetime.now(UTC).date():
            when = local.strftime("%Y-%m-%d %H:%M UTC")
        return f"started {when} by {self.started_by}"


def reconcile_running(client: redis.Redis, tenant_id: str) -> bool:
    """Whether a reconcile of the tenant holds its lease now."""
    with redis_errors():
        return bool(client.exists(reconcile_lock_key(tenant_id)))


def holder(client: redis.Redis, tenant_id: str) -> LeaseHolder | None:
    """Who holds the tenant's reconcile lease, or ``None`` when nobody does."""
    with redis_errors():
        raw: Any = client.get(reconcile_lock_key(tenant_id))
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return LeaseHolder(datetime.fromisoformat(data["started_at"]), data["started_by"])
    except (ValueError, KeyError, TypeError):  # a lease taken by an older release
        return None


@contextmanager
def reconcile_lease(
    client: redis.Redis, tenant_id: str, tenant_name: str, *, started_by: str | None = None
) -> Iterator[None]:
    """Hold the tenant's reconcile lease for the block; ``AlreadyRunning`` when it is taken.

    ``started_by`` says who asked (default: this process's user, host and pid). Enters the
    block only after object runs of the tenant already under way have ended.
    """
    started_by = started_by or this_process()
    lock = client.lock(
        reconcile_lock_key(tenant_id),
        timeout=RECONCILE_LEASE_SECONDS,
        blocking=False,
        thread_local=False,
    )
    with redis_errors():
        acquired = lock.acquire(blocking=False, token=_token(started_by))
        if acquired:
            # while it runs, a requested reconcile of the tenant is absorbed (it would redo this)
            client.set(reconcile_pending_key(tenant_id), b"running", ex=RECONCILE_LEASE_SECONDS)
    if not acquired:
        busy = holder(client, tenant_id)
        log.info(
            "reconcile already running; this one wrote nothing",
            extra={"tenant": tenant_id, "holder": busy.started_by if busy else ""},
        )
        if busy is None:  # it ended between the two reads
            message = f"A reconcile of {tenant_name} ran at the same moment and has just ended"
        else:
            message = f"A reconcile of {tenant_name} is already running, {busy.describe()}"
        raise AlreadyRunning(
            f"{message}; this one wrote nothing.",
            hint="It repairs the same differences; `skolsynk status` shows how it ended.",
        )
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, lock, tenant_id, stop), name="reconcile-lease", daemon=True
    )
    renewer.start()
    try:
        _wait_for_object_runs(client, tenant_id)
        yield
    finally:
        stop.set()
        renewer.join()
        with redis_errors():
            client.delete(reconcile_pending_key(tenant_id))
            with suppress(LockError):
                lock.release()


def this_process() -> str:
    """Who runs this process, as a second run's message names it: ``anna on host1 (pid 42)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user} on {socket.gethostname()} (pid {os.getpid()})"


def _token(started_by: str) -> str:
    return json.dumps(
        {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "started_by": started_by,
            "nonce": secrets.token_hex(16),
        }
    )


def _renew(client: redis.Redis, lock: Any, tenant_id: str, stop: threading.Event) -> None:
    while not stop.wait(RECONCILE_RENEW_SECONDS):
        try:
            lock.extend(RECONCILE_LEASE_SECONDS, replace_ttl=True)
            client.expire(reconcile_pending_key(tenant_id), RECONCILE_LEASE_SECONDS)
        except LockError:
            log.warning("reconcile lease lost; the run goes on", extra={"tenant": tenant_id})
            return
        except redis.RedisError:
            log.warning("could not renew the reconcile lease", extra={"tenant": tenant_id})


def _wait_for_object_runs(client: redis.Redis, tenant_id: str) -> None:
    deadline = time.monotonic() + OBJECT_RUNS_WAIT_SECONDS
    while time.monotonic() < deadline:
        with redis_errors():
            busy = next(iter(client.scan_iter(match=_object_locks(tenant_id), count=1000)), None)
        if busy is None:
            return
        time.sleep(_POLL_SECONDS)
    log.warning("object runs still under way; reconciling anyway", extra={"tenant": tenant_id})
