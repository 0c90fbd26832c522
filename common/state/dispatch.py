"""Putting work on the RQ queues: the listener's enqueue path, reconciles and renewals.

Queues: ``live`` (one object changed; workers take it first) and ``reconcile`` (whole tenants).
Every job is JSON-serialized and enqueued by dotted name, so ``rq enqueue`` can start the same
jobs by hand::

    rq enqueue --url "$REDIS_URL" --serializer rq.serializers.JSONSerializer \\
        --queue reconcile worker.jobs.full_reconcile TENANT_ID

Coalescing: a change notification sets a *pending marker* for its object (``SET NX``) and, in
the same atomic script, only if it set it, writes the job; so a burst of notifications for one
object while its job waits becomes one job, and a marker never exists without its job. The job
clears the marker when it starts (``common.state.guards``), so a notification that arrives
while it runs queues exactly one more run, and an object run waits while its tenant's full
reconcile runs (the reconcile's lease is in ``common.state.leases``). Full reconciles are
coalesced per tenant the same way, while pending or running.

Job-level retries are configured here, once per kind of job (``*_RETRY_INTERVALS_SECONDS``,
rq's ``Retry``); the HTTP transport's own retries are in ``common.http``.

Failure policy: every Redis failure becomes ``QueueUnavailable``
(``common.state.store.redis_errors``; the listener answers 503 so Graph delivers again). A job
that keeps failing ends in rq's failed registry with its exception as the reason. Markers carry
a TTL, so a lost job cannot block an object or a tenant for longer than that.

Long because the listener's enqueue fast path (one script that writes rq's job hash, and the
constants it must agree with rq on) sits beside the ordinary enqueues it has to match; the job
side's guards are in ``common.state.guards``, connections in ``common.state.connections``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import uuid
import weakref
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import get_call_string

from common.state.connections import LISTENER_REDIS_RETRIES
from common.state.store import KEY_PREFIX, redis_errors

log = logging.getLogger(__name__)

LIVE_QUEUE: Final = "live"
RECONCILE_QUEUE: Final = "reconcile"
QUEUE_NAMES: Final = (LIVE_QUEUE, RECONCILE_QUEUE)

SYNC_USER_JOB: Final = "worker.jobs.sync_user"
SYNC_GROUP_JOB: Final = "worker.jobs.sync_group"
FULL_RECONCILE_JOB: Final = "worker.jobs.full_reconcile"
RENEW_SUBSCRIPTIONS_JOB: Final = "worker.jobs.renew_subscriptions"
RECONCILE_ALL_JOB: Final = "worker.jobs.reconcile_all"
RENEW_ALL_SUBSCRIPTIONS_JOB: Final = "worker.jobs.renew_all_subscriptions"
RECOVER_ABANDONED_JOB: Final = "worker.jobs.recover_abandoned"

ObjectKind = Literal["user", "group"]
_OBJECT_JOBS: Final[dict[str, str]] = {"user": SYNC_USER_JOB, "group": SYNC_GROUP_JOB}

OBJECT_JOB_TIMEOUT_SECONDS: Final = 300
RECONCILE_TIMEOUT_SECONDS: Final = 2 * 60 * 60
RENEWAL_TIMEOUT_SECONDS: Final = 300
#: finished jobs are kept this long (results are small; the live queue sees many jobs)
RESULT_TTL_SECONDS: Final = 10 * 60
#: failed jobs stay in rq's failed registry this long, for a person to read and requeue
FAILURE_TTL_SECONDS: Final = 7 * 24 * 60 * 60

#: seconds rq waits before each retry; the job ends in the failed registry after the last
#: (the transport has already ridden out failures of a few seconds: common/http.py says the product)
OBJECT_RETRY_INTERVALS_SECONDS: Final = (30, 300)
RECONCILE_RETRY_INTERVALS_SECONDS: Final = (600,)
RENEWAL_RETRY_INTERVALS_SECONDS: Final = (60, 600, 1800)

#: how long a queued object job keeps absorbing notifications; after this a second job may be
#: queued for the same object (harmless: jobs are idempotent), so a lost job blocks nothing
PENDING_TTL_SECONDS: Final = 60 * 60
#: a requested reconcile absorbs further requests for its tenant this long while it waits
RECONCILE_PENDING_SECONDS: Final = 3 * 60 * 60
#: Graph repeats lifecycle events; one renewal per tenant in this window is enough
RENEWAL_DEDUPE_SECONDS: Final = 5 * 60

#: what rq 3.0's ``Queue.enqueue`` writes into the hash of an object job that no single job
#: changes (``Job.to_dict`` with no callbacks, no group, nothing run yet; numbers as Redis stores
#: them); ``test_dispatch`` holds this against a hash that rq itself wrote, so an rq release
#: that writes its jobs differently fails that test (and pyproject pins rq's minor version)
_OBJECT_JOB_CONSTANT_FIELDS: Final[tuple[tuple[str, str], ...]] = (
    ("status", "queued"),
    ("success_callback_name", ""),
    ("failure_callback_name", ""),
    ("stopped_callback_name", ""),
    ("started_at", ""),
    ("ended_at", ""),
    ("last_heartbeat", ""),
    ("worker_name", ""),
    ("group_id", ""),
    ("retries_left", str(len(OBJECT_RETRY_INTERVALS_SECONDS))),
    ("retry_intervals", json.dumps(list(OBJECT_RETRY_INTERVALS_SECONDS))),
    ("origin", LIVE_QUEUE),
    ("timeout", str(OBJECT_JOB_TIMEOUT_SECONDS)),
    ("result_ttl", str(RESULT_TTL_SECONDS)),
    ("failure_ttl", str(FAILURE_TTL_SECONDS)),
)

#: Sets an object's pending marker and, only if it set it, queues its job as rq's
#: ``Queue.enqueue`` would (register the queue, write the job hash, push the id). The constant
#: fields are part of the script, so a request sends only what differs per job.
#: KEYS: the queue, rq's set of queues (the same in every call), the marker, the job hash;
#: ARGV: the job id, the time (created and enqueued), the job's data, its description
_CLAIM_THEN_ENQUEUE: Final = f"""
if not redis.call('set', KEYS[3], '1', 'NX', 'EX', {PENDING_TTL_SECONDS}) then
    return 0
end
redis.call('sadd', KEYS[2], KEYS[1])
redis.call('hset', KEYS[4], 'created_at', ARGV[2], 'enqueued_at', ARGV[2], 'data', ARGV[3],
    'description', ARGV[4],
    {", ".join(f"'{name}', '{value}'" for name, value in _OBJECT_JOB_CONSTANT_FIELDS)})
redis.call('rpush', KEYS[1], ARGV[1])
return 1
"""
_CLAIM_THEN_ENQUEUE_SHA: Final = hashlib.sha1(
    _CLAIM_THEN_ENQUEUE.encode(), usedforsecurity=False
).hexdigest()
_CLAIM_KEY_COUNT: Final = 4
_LIVE_QUEUE_KEY: Final = Queue.redis_queue_namespace_prefix + LIVE_QUEUE


def _packed(word: bytes) -> bytes:
    """One word of a command in Redis's wire format (RESP)."""
    return b"$%d\r\n%s\r\n" % (len(word), word)


#: ``EVALSHA sha numkeys`` and the two keys every call shares, in RESP, ahead of a call's
#: other two keys and four arguments
_SCRIPT_CALL_HEAD: Final = b"*11\r\n" + b"".join(
    _packed(word)
    for word in (
        b"EVALSHA",
        _CLAIM_THEN_ENQUEUE_SHA.encode(),
        str(_CLAIM_KEY_COUNT).encode(),
        _LIVE_QUEUE_KEY.encode(),
        Queue.redis_queues_keys.encode(),
    )
)
#: rq shortens each argument's repr in a job's description to this many characters
_DESCRIPTION_ARG_LENGTH: Final = 75


def _read_reply(connection: Any) -> Any:
    """The next reply on ``connection``; an error Redis answered is returned, not raised, so
    that every reply is read and none is left on the connection."""
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error


def _pack_script_call(words: tuple[bytes, ...]) -> bytes:
    """One ``EVALSHA`` of the enqueue script in RESP: its last two keys and its arguments."""
    return _SCRIPT_CALL_HEAD + b"".join([_packed(word) for word in words])


def _rq_timestamp() -> bytes:
    """Now, as rq writes it into a job (``utcformat(now())``: ``2026-01-02T03:04:05.123456Z``),
    at half the cost of ``strftime``."""
    return (datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z").encode()


def pending_key(tenant_id: str, kind: ObjectKind, object_id: str) -> str:
    return f"{KEY_PREFIX}pending:{tenant_id}:{kind}:{object_id.lower()}"


def reconcile_pending_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}reconcile:pending:{tenant_id}"


def renewal_pending_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}renewal:pending:{tenant_id}"


def object_change(func_name: str | None, args: Sequence[Any]) -> Change | None:
    """The object a queued job syncs, or ``None`` for other jobs."""
    kinds = {name: kind for kind, name in _OBJECT_JOBS.items()}
    kind = kinds.get(func_name or "")
    if kind is None or len(args) != 2:
        return None
    return Change(str(args[0]), "group" if kind == "group" else "user", str(args[1]))


def object_job_name(kind: ObjectKind) -> str:
    """The dotted name of the job that syncs one object of this kind."""
    return _OBJECT_JOBS[kind]


def object_job_options() -> dict[str, Any]:
    """rq's options for an object job (the same the enqueue script writes)."""
    return {
        "job_timeout": OBJECT_JOB_TIMEOUT_SECONDS,
        "result_ttl": RESULT_TTL_SECONDS,
        "failure_ttl": FAILURE_TTL_SECONDS,
        "retry": Retry(
            max=len(OBJECT_RETRY_INTERVALS_SECONDS),
            interval=list(OBJECT_RETRY_INTERVALS_SECONDS),
        ),
    }


@dataclass(frozen=True)
class Change:
    """One object of a tenant that Graph says has changed."""

    tenant_id: str
    kind: ObjectKind
    object_id: str


class _ThreadConnection:
    """One thread's connection from a pool, held while the thread lives.

    Replaces taking a connection from the pool and giving it back on every enqueue: the pool's
    lock, its bookkeeping and the check that a connection has nothing left to read (a system
    call) came to some 15 us of a notification's CPU. A request thread enqueues one call at a
    time, so it needs one connection; a thread that ends gives it back to the pool (the
    thread's ``threading.local`` goes, and this with it), so threads that come and go (a test's
    thread pool) leak no slot. The pool still counts the connection as in use while it is held.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pid = os.getpid()
        self.connection: Any = pool.get_connection()
        weakref.finalize(self, _give_back, pool, self.connection, self.pid)


def _give_back(pool: redis.ConnectionPool, connection: Any, pid: int) -> None:
    # a forked child leaves its parent's connections alone (the pool resets itself there)
    if os.getpid() == pid:
        pool.release(connection)


class Dispatcher:
    """Enqueues jobs; one per process, safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.live = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer)
        self.reconcile = Queue(RECONCILE_QUEUE, connection=client, serializer=JSONSerializer)
        self._held = threading.local()

    def enqueue_change(self, tenant_id: str, kind: ObjectKind, object_id: str) -> bool:
        """Queue a sync of one object; False when a job for it is already waiting.

        Raises ``QueueUnavailable`` when Redis cannot be reached (nothing is then queued).
        """
        return self.enqueue_changes([Change(tenant_id, kind, object_id)])[0]

    def enqueue_changes(self, changes: Sequence[Change]) -> list[bool]:
        """``enqueue_change`` for many objects in one round trip; True where a job was queued.

        For each object one script sets the pending marker (``SET NX``) and, only if it was not
        set yet, writes the job exactly as rq's ``Queue.enqueue`` would, atomically: there is
        never a marker without its job. Duplicates within ``changes`` count once. The calls go
        in one round trip on the calling thread's connection (``_run_script``). Raises
        ``QueueUnavailable`` when Redis cannot be reached.

        The hand-written job hash replaces ``Queue.enqueue_many`` inside a ``SET NX`` check:
        that path builds and serializes an rq ``Job`` per change and costs the listener a
        second round trip; the listener benchmark (``bench/listener.py``) is where it pays.
        """
        if not changes:
            return []
        stamp = _rq_timestamp()
        calls = [self._object_job_call(change, stamp) for change in changes]
        with redis_errors():
            replies = self._run_script(calls)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return [bool(reply) for reply in replies]

    def _run_script(self, calls: list[bytes]) -> list[Any]:
        """Every call's reply (an integer, or the error Redis answered), in one round trip on
        this thread's connection (``_ThreadConnection``).

        The listener's hot path, written against redis-py's public connection interface
        (``get_connection``, ``send_packed_command``, ``read_response``, ``disconnect``,
        ``release``): the calls are packed here with the script's ``EVALSHA`` header made once,
        which skips redis-py's pipeline and command encoding. Measured in-process under the
        profiler on the shared 2 cores, a notification cost 4,040 us of CPU through a pipeline,
        2,600 us this way (and 2,510 us with the socket written directly, which needed
        redis-py's private ``_sock``). The tests of ``test_dispatch`` run this path against a
        real Redis (a script Redis forgot, a restart, many threads, threads that end), so a
        redis-py release that changes these methods fails them. A broken connection is tried
        once more (Redis restarted, a proxy closed an idle one); a timeout is not. Any failure
        closes the connection, so no reply of a failed call is left on it for the next.
        """
        packed = b"".join(calls)
        connection = self._connection()
        for attempt in range(1 + LISTENER_REDIS_RETRIES):
            try:
                return self._send_and_read(connection, packed, calls)
            except redis.ConnectionError:
                connection.disconnect()
                if attempt == LISTENER_REDIS_RETRIES:
                    raise
            except BaseException:
                connection.disconnect()
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        """This thread's connection, taken from the client's pool at its first enqueue."""
        held: _ThreadConnection | None = getattr(self._held, "connection", None)
        if held is None or held.pid != os.getpid():
            held = self._held.connection = _ThreadConnection(self.redis.connection_pool)
        return held.connection

    @staticmethod
    def _send_and_read(connection: Any, packed: bytes, calls: list[bytes]) -> list[Any]:
        connection.send_packed_command([packed])
        replies = [_read_reply(connection) for _ in calls]
        missing = [
            i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)
        ]
        if missing:
            # Redis forgot the script (restarted, SCRIPT FLUSH): nothing of those ran
            connection.send_command("SCRIPT", "LOAD", _CLAIM_THEN_ENQUEUE)
            connection.read_response()
            connection.send_packed_command([b"".join([calls[i] for i in missing])])
            for i in missing:
                replies[i] = _read_reply(connection)
        return replies

    @staticmethod
    def _object_job_call(change: Change, stamp: bytes) -> bytes:
        """The enqueue script's call for one object, packed: its marker, job and arguments."""
        # random enough to be unique, and no system call (``uuid4`` reads the OS's entropy);
        # ``random`` is seeded again in every forked worker
        job_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        name = object_job_name(change.kind)
        args = (change.tenant_id, change.object_id)
        # rq's JSON job data (function, instance, args, kwargs) and its description, made the
        # way rq makes them, so workers, ``rq info`` and the dashboards read these jobs as theirs.
        # rq compresses job data and reads it uncompressed too; these are a hundred bytes
        data = json.dumps((name, None, args, {})).encode()  # JSONSerializer.dumps
        description = get_call_string(name, args, {}, max_length=_DESCRIPTION_ARG_LENGTH)
        return _pack_script_call(
            (
                pending_key(change.tenant_id, change.kind, change.object_id).encode(),
                (Job.redis_job_namespace_prefix + job_id).encode(),
                job_id.encode(),
                stamp,
                data,
                str(description).encode(),
            )
        )

    def probe(self) -> None:
        """Prove that this process can enqueue now: its pool gives a connection, Redis answers
        and accepts a write (a full Redis refuses it). Raises ``QueueUnavailable``."""
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{KEY_PREFIX}ready-probe", b"1", px=1000)
            pipe.execute()

    def enqueue_reconcile(self, tenant_id: str, *, why: str) -> bool:
        """Queue a full reconcile of a tenant; False when one is already pending or running.

        Raises ``QueueUnavailable`` when Redis cannot be reached.
        """
        queued = self._enqueue_once(
            reconcile_pending_key(tenant_id),
            RECONCILE_PENDING_SECONDS,
            FULL_RECONCILE_JOB,
            args=(tenant_id,),
            job_timeout=RECONCILE_TIMEOUT_SECONDS,
            retry=Retry(
                max=len(RECONCILE_RETRY_INTERVALS_SECONDS),
                interval=list(RECONCILE_RETRY_INTERVALS_SECONDS),
            ),
            meta={"why": why},
            description=f"full reconcile of {tenant_id} ({why})",
        )
        context = {"tenant": tenant_id, "why": why}
        log.info("reconcile queued" if queued else "reconcile already pending", extra=context)
        return queued

    def enqueue_renewal(self, tenant_id: str, *, why: str) -> bool:
        """Queue a renewal of a tenant's subscriptions; False when one was queued in the last
        ``RENEWAL_DEDUPE_SECONDS`` (renewal is idempotent, so a short window is enough).

        Raises ``QueueUnavailable`` when Redis cannot be reached.
        """
        queued = self._enqueue_once(
            renewal_pending_key(tenant_id),
            RENEWAL_DEDUPE_SECONDS,
            RENEW_SUBSCRIPTIONS_JOB,
            args=(tenant_id,),
            job_timeout=RENEWAL_TIMEOUT_SECONDS,
            retry=Retry(
                max=len(RENEWAL_RETRY_INTERVALS_SECONDS),
                interval=list(RENEWAL_RETRY_INTERVALS_SECONDS),
            ),
            meta={"why": why},
            # before queued reconciles: an unrenewed subscription loses notifications
            at_front=True,
        )
        if queued:
            log.info("subscription renewal queued", extra={"tenant": tenant_id, "why": why})
        return queued

    def _enqueue_once(self, marker: str, marker_seconds: int, job: str, **options: Any) -> bool:
        """Queue ``job`` on the reconcile queue only if ``marker`` was not set yet, and set it
        for ``marker_seconds``; False when it was. A failed enqueue gives the marker back, so
        the next request is not turned away for a job that never was."""
        with redis_errors():
            if not self.redis.set(marker, b"queued", nx=True, ex=marker_seconds):
                return False
            try:
                self.reconcile.enqueue(
                    job, result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS, **options
                )
            except redis.RedisError:
                # best effort: Redis is failing, and the marker expires by itself
                with suppress(redis.RedisError):
                    self.redis.delete(marker)
                raise
        return True

    def live_jobs_under_way(self) -> int:
        """Real-time jobs queued, scheduled (retries, re-checks, busy requeues) or running."""
        live = self.live
        with redis_errors():
            return int(
                live.count + live.scheduled_job_registry.count + live.started_job_registry.count
            )

    def queue_depths(self) -> dict[str, int]:
        """Jobs waiting per queue, plus the failed registry of each (``live.failed`` ...)."""
        with redis_errors():
            depths: dict[str, int] = {}
            for queue in (self.live, self.reconcile):
                depths[queue.name] = queue.count
                depths[f"{queue.name}.failed"] = queue.failed_job_registry.count
            return depths


def drop_tenant_jobs(dispatcher: Dispatcher, tenant_id: str) -> int:
    """Take every waiting job of a tenant off the queues, scheduled retries and busy requeues
    included, with its pending markers (a school disconnects); returns how many were dropped.

    A job already running finishes and, once the tenant is unregistered, writes nothing more.
    """
    dropped = 0
    with redis_errors():
        for queue in (dispatcher.live, dispatcher.reconcile):
            waiting = [job for job in queue.get_jobs() if job.args and job.args[0] == tenant_id]
            for job in waiting:
                queue.remove(job.id)
                job.delete()
            scheduled = queue.scheduled_job_registry
            later = [
                job
                for job in (queue.fetch_job(i) for i in scheduled.get_job_ids())
                if job is not None and job.args and job.args[0] == tenant_id
            ]
            for job in later:
                scheduled.remove(job, delete_job=True)
            dropped += len(waiting) + len(later)
        markers = [
            *dispatcher.redis.scan_iter(match=f"{KEY_PREFIX}pending:{tenant_id}:*", count=1000),
            reconcile_pending_key(tenant_id),
            renewal_pending_key(tenant_id),
        ]
        dispatcher.redis.delete(*markers)
    return dropped
