"""The job side's guards: leases that keep two runs of one object (or two reconciles of one
tenant) from overlapping, their heartbeat, recovery of runs lost with their worker, and the
delayed re-check of an object Graph does not show yet.

Leases are redis-py ``Lock``s with a short timeout, extended by a heartbeat thread while the run
lasts: a run killed with its worker (SIGKILL, a lost machine, a Redis outage that outlasted the
lease) frees its object or tenant within one lease. Object runs are also recorded by lease
expiry in ``INFLIGHT_KEY``; a run whose lease ran out without ending was lost, and
``recover_abandoned`` (the scheduler, every few seconds) queues its object again.

Scheduled jobs (re-checks, busy objects queued again, rq's retries) are moved to their queue by
rq's scheduler, which runs in the one worker holding rq's scheduler lock. When that worker dies,
the lock lapses only after about a minute (rq's heartbeat TTL), and every scheduled job waits
that long; ``release_overdue`` (called with ``recover_abandoned``) moves the jobs that are
``SCHEDULED_GRACE_SECONDS`` late instead.

Failure policy: Redis failures raise ``QueueUnavailable``; a heartbeat that cannot reach Redis
logs and carries on (a second run of the same object is harmless: runs are idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import redis
from redis.lock import Lock
from rq.job import Job
from rq.queue import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from common.state.dispatch import (
    PENDING_TTL_SECONDS,
    Change,
    Dispatcher,
    ObjectKind,
    object_job_name,
    object_job_options,
    pending_key,
)
from common.state.latency import received_meta
from common.state.store import KEY_PREFIX, redis_errors

log = logging.getLogger(__name__)

#: an object run's lease; the heartbeat renews it, so a dead worker frees its object this soon
OBJECT_LEASE_SECONDS: Final = 15
OBJECT_HEARTBEAT_SECONDS: Final = 5.0
#: runs in progress, by lease expiry; a run whose lease ran out without ending was lost with
#: its worker, and ``recover_abandoned`` queues its object again
INFLIGHT_KEY: Final = KEY_PREFIX + "inflight"
#: a run that finds its object locked goes back on the queue this much later
BUSY_REQUEUE_DELAY: Final = timedelta(seconds=2)
#: an object Graph does not show (yet) is looked at again after these delays, each a scheduled
#: job (rq's scheduler, workers run ``--with-scheduler``), never a sleep holding a worker; after
#: the last one it is believed gone
RECHECK_DELAYS_SECONDS: Final = (0.5, 1.5, 4.0)
#: a scheduled job this late was not moved by rq's scheduler (which moves due jobs every second):
#: the worker holding rq's scheduler lock is gone, and ``release_overdue`` moves it instead
SCHEDULED_GRACE_SECONDS: Final = 5


def object_lock_key(tenant_id: str, kind: ObjectKind, object_id: str) -> str:
    return f"{KEY_PREFIX}lock:{tenant_id}:{kind}:{object_id.lower()}"


def reconcile_lock_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}reconcile:running:{tenant_id}"


def _inflight_member(change: Change) -> str:
    return f"{change.tenant_id}|{change.kind}|{change.object_id}"


def _inflight_change(raw: bytes | str) -> Change:
    text = raw.decode() if isinstance(raw, bytes) else raw
    tenant_id, kind, object_id = text.split("|", 2)
    return Change(tenant_id, "group" if kind == "group" else "user", object_id)


@dataclass(frozen=True)
class Turn:
    """Whether a job got its turn; when not, it must return without doing the work."""

    acquired: bool

    def __bool__(self) -> bool:
        return self.acquired


class _Heartbeat:
    """Extends a lease (and runs ``also``) every ``interval`` seconds until stopped."""

    def __init__(self, lock: Lock, seconds: int, interval: float, also: Callable[[], None]):
        self._lock, self._seconds, self._interval, self._also = lock, seconds, interval, also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-heartbeat")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._lock.extend(self._seconds, replace_ttl=True)
                self._also()
            except redis.exceptions.LockNotOwnedError:
                log.warning("a run's lease lapsed and another run took it")
                return
            except redis.RedisError:
                log.warning("could not renew a run's lease", extra={"lock": self._lock.name})


def _release(lock: Lock) -> None:
    # the lease may have lapsed during an outage and been taken by another run: not ours
    with suppress(redis.exceptions.LockNotOwnedError):
        lock.release()


def _move_scheduled(
    client: redis.Redis, queue: Queue, registry: ScheduledJobRegistry, job: Job
) -> bool:
    """Move one scheduled job to its queue, unless another caller moved or changed it since it
    was read (then False)."""
    with client.pipeline() as pipe:
        try:
            pipe.watch(job.key)  # type: ignore[no-untyped-call]
            if pipe.zscore(registry.key, job.id) is None:
                return False
            pipe.multi()
            registry.remove(job.id, pipeline=pipe)
            queue.enqueue_job(job, pipeline=pipe)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


class JobGuards:
    """Leases, heartbeats and recovery for the jobs of one process; safe to share."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.dispatcher = Dispatcher(client)

    def _lease(self, key: str, seconds: int) -> Lock:
        return Lock(self.redis, key, timeout=seconds, blocking=False, thread_local=False)

    @contextmanager
    def object_job(
        self,
        tenant_id: str,
        kind: ObjectKind,
        object_id: str,
        *,
        received_at: datetime | None = None,
    ) -> Iterator[Turn]:
        """Guard one run of an object job: yields a ``Turn``; do the work only when acquired.

        Acquired: the pending marker is cleared at once (a notification from now on queues one
        more run, which sees this run's result) and the object's lease is held until the block
        ends. Not acquired (another run of this object, or a full reconcile of its tenant, is in
        progress): the job is queued again
        ``BUSY_REQUEUE_DELAY`` later and the pending marker is kept, so notifications keep
        folding into that one job. Requeueing rather than waiting keeps a worker free for other
        objects; rather than raising, it keeps rq's retries and failed registry for real errors.
        The job queued again carries ``received_at`` (when the change reached Skolsynk).
        """
        change = Change(tenant_id, kind, object_id)
        lock = self._lease(object_lock_key(tenant_id, kind, object_id), OBJECT_LEASE_SECONDS)
        member = _inflight_member(change)
        with redis_errors():
            acquired = bool(lock.acquire(blocking=False))
            # the object's lease first, then the tenant's reconcile lease (which takes its lease
            # first, then waits for object leases, ``common.state.leases``): one of the two
            # always sees the other
            if acquired and self.redis.exists(reconcile_lock_key(tenant_id)):
                _release(lock)
                # no run of this object is under way: the lease the worker took for it must
                # not look like a lost run (its recovery would start a second chain of jobs)
                self.redis.zrem(INFLIGHT_KEY, member)
                acquired = False
            if not acquired:
                self._requeue_busy(change, received_at)
            else:
                with self.redis.pipeline(transaction=False) as pipe:
                    pipe.delete(pending_key(tenant_id, kind, object_id))
                    pipe.zadd(INFLIGHT_KEY, {member: time.time() + OBJECT_LEASE_SECONDS})
                    pipe.execute()
        if not acquired:
            log.info(
                "object busy; run queued again",
                extra={"tenant": tenant_id, "kind": kind, "object_id": object_id},
            )
            yield Turn(acquired=False)
            return

        def renew_inflight() -> None:
            self.redis.zadd(INFLIGHT_KEY, {member: time.time() + OBJECT_LEASE_SECONDS})

        try:
            with _Heartbeat(lock, OBJECT_LEASE_SECONDS, OBJECT_HEARTBEAT_SECONDS, renew_inflight):
                yield Turn(acquired=True)
        finally:
            with redis_errors():
                self.redis.zrem(INFLIGHT_KEY, member)
                _release(lock)

    def take_lease(self, change: Change) -> None:
        """Record that a run of this object is starting (the worker calls it before the job
        runs): if the run never ends, the lease runs out and the object is queued again."""
        with redis_errors():
            self.redis.zadd(
                INFLIGHT_KEY, {_inflight_member(change): time.time() + OBJECT_LEASE_SECONDS}
            )

    def recover_abandoned(self, *, now: float | None = None) -> list[Change]:
        """Queue again every object whose run ended without finishing (its worker died).

        Each lost run is claimed by exactly one caller (``ZREM`` decides), so several
        schedulers or workers calling this at once queue each object once.
        """
        moment = time.time() if now is None else now
        recovered: list[Change] = []
        with redis_errors():
            expired: list[bytes] = self.redis.zrangebyscore(INFLIGHT_KEY, "-inf", moment)  # type: ignore[assignment]
            for raw in expired:
                if self.redis.zrem(INFLIGHT_KEY, raw):
                    change = _inflight_change(raw)
                    # the lost run may have died before clearing the pending marker; left in
                    # place, it would fold this recovery into a job that no longer exists
                    self.redis.delete(pending_key(change.tenant_id, change.kind, change.object_id))
                    self.dispatcher.enqueue_change(change.tenant_id, change.kind, change.object_id)
                    recovered.append(change)
        for change in recovered:
            log.warning(
                "run lost with its worker; queued again",
                extra={
                    "tenant": change.tenant_id,
                    "kind": change.kind,
                    "object_id": change.object_id,
                },
            )
        return recovered

    def release_overdue(self, *, now: float | None = None) -> list[str]:
        """Move to its queue every scheduled job more than ``SCHEDULED_GRACE_SECONDS`` past its
        time; returns their ids.

        Each job moves in one transaction that fails if anyone touched the job since it was
        read (``WATCH``), so concurrent callers never queue one twice. rq's scheduler, come back
        at the same instant, might still move one of them too: a second run of an object job is
        harmless.
        """
        moment = time.time() if now is None else now
        moved: list[str] = []
        with redis_errors():
            for queue in (self.dispatcher.live, self.dispatcher.reconcile):
                registry = queue.scheduled_job_registry
                late = registry.get_jobs_to_schedule(int(moment - SCHEDULED_GRACE_SECONDS))
                jobs = Job.fetch_many(late, connection=self.redis, serializer=JSONSerializer)
                for job_id, job in zip(late, jobs, strict=True):
                    if job is None:
                        registry.remove(job_id)  # expired or deleted: nothing to run
                    elif _move_scheduled(self.redis, queue, registry, job):
                        moved.append(job_id)
        if moved:
            log.warning(
                "scheduled jobs were late (rq's scheduler is not running); queued them",
                extra={"jobs": len(moved)},
            )
        return moved

    def schedule_recheck(
        self, change: Change, attempt: int, *, received_at: datetime | None = None
    ) -> bool:
        """Look at an object Graph does not show again after ``RECHECK_DELAYS_SECONDS
        [attempt - 1]``, as a scheduled job with ``recheck=attempt`` that carries
        ``received_at``; False when every re-check is spent (the caller then believes the
        object is gone)."""
        if attempt > len(RECHECK_DELAYS_SECONDS):
            return False
        delay = timedelta(seconds=RECHECK_DELAYS_SECONDS[attempt - 1])
        with redis_errors():
            self.dispatcher.live.enqueue_in(
                delay,
                object_job_name(change.kind),
                args=(change.tenant_id, change.object_id),
                kwargs={"recheck": attempt},
                meta=received_meta(received_at),
                **object_job_options(),
            )
        return True

    def _requeue_busy(self, change: Change, received_at: datetime | None) -> None:
        marker = pending_key(change.tenant_id, change.kind, change.object_id)
        with self.redis.pipeline(transaction=True) as pipe:
            self.dispatcher.live.enqueue_in(
                BUSY_REQUEUE_DELAY,
                object_job_name(change.kind),
                args=(change.tenant_id, change.object_id),
                pipeline=pipe,
                meta=received_meta(received_at),
                **object_job_options(),
            )
            pipe.set(marker, b"1", ex=PENDING_TTL_SECONDS)
            pipe.execute()
