"""Putting work on the RQ queues, and the job side's guards that keep that work from piling up.

Queues: ``live`` (one object changed; workers take it first) and ``reconcile`` (whole tenants).
Every job is JSON-serialized and enqueued by dotted name, so ``rq enqueue`` can start the same
jobs by hand::

    rq enqueue --url "$REDIS_URL" --serializer rq.serializers.JSONSerializer \\
        --queue reconcile worker.jobs.full_reconcile TENANT_ID

Coalescing: a change notification sets a *pending marker* for its object (``SET NX``) and, in
the same atomic script, only if it set it, writes the job; so a burst of notifications for one
object while its job waits becomes one job, and a marker never exists without its job. The job
clears the marker when it starts, so a notification that arrives while it runs queues exactly
one more run. A per-object *lock* keeps two runs for one object from
overlapping. Full reconciles are coalesced per tenant the same way, while pending or running.

Failure policy: every Redis failure becomes ``QueueUnavailable``
(``common.state.store.redis_errors``;
the listener answers 503 so Graph delivers again). Jobs retry a bounded number of times with rq's
``Retry``; a job that keeps failing ends in rq's failed registry with its exception as the
reason. Markers and locks carry a TTL, so a crashed worker or a lost job cannot block an object
or a tenant for longer than that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import get_call_string, utcformat
from rq.utils import now as rq_now

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
#: the per-object lock is a lease, renewed by a heartbeat while the run lasts: a run killed
#: with its worker (SIGKILL, a lost machine) frees its object this soon
OBJECT_LEASE_SECONDS: Final = 15
OBJECT_HEARTBEAT_SECONDS: Final = 5.0
#: runs in progress, by lease expiry; a run whose lease ran out without ending was lost with
#: its worker, and ``recover_abandoned`` queues its object again
INFLIGHT_KEY: Final = "skolsynk:inflight"
RECOVER_ABANDONED_JOB: Final = "worker.jobs.recover_abandoned"
#: a run that finds its object locked goes back on the queue this much later
BUSY_REQUEUE_DELAY: Final = timedelta(seconds=2)
#: a requested reconcile absorbs further requests for its tenant this long while it waits
RECONCILE_PENDING_SECONDS: Final = 3 * 60 * 60
RECONCILE_LOCK_SECONDS: Final = RECONCILE_TIMEOUT_SECONDS + 5 * 60
#: Graph repeats lifecycle events; one renewal per tenant in this window is enough
RENEWAL_DEDUPE_SECONDS: Final = 5 * 60

#: the listener must answer within 3 s even when Redis hangs: a short timeout, one retry
LISTENER_REDIS_TIMEOUT_SECONDS: Final = 0.5
LISTENER_REDIS_RETRIES: Final = 1

#: what rq 3.0's ``Queue.enqueue`` writes into the hash of an object job that no single job
#: changes (``Job.to_dict`` with no callbacks, no group, nothing run yet; numbers as Redis stores
#: them); ``test_dispatch`` holds this against a hash that rq itself wrote
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
#: KEYS: the marker, the job hash, the queue, rq's set of queues;
#: ARGV: the job id, the time (created and enqueued), the job's data, its description
_CLAIM_THEN_ENQUEUE = f"""
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', {PENDING_TTL_SECONDS}) then
    return 0
end
redis.call('sadd', KEYS[4], KEYS[3])
redis.call('hset', KEYS[2], 'created_at', ARGV[2], 'enqueued_at', ARGV[2], 'data', ARGV[3],
    'description', ARGV[4],
    {", ".join(f"'{name}', '{value}'" for name, value in _OBJECT_JOB_CONSTANT_FIELDS)})
redis.call('rpush', KEYS[3], ARGV[1])
return 1
"""
_CLAIM_THEN_ENQUEUE_SHA = hashlib.sha1(
    _CLAIM_THEN_ENQUEUE.encode(), usedforsecurity=False
).hexdigest()
_CLAIM_KEY_COUNT: Final = 4
_LIVE_QUEUE_KEY: Final = Queue.redis_queue_namespace_prefix + LIVE_QUEUE
#: ``EVALSHA sha numkeys`` in RESP, ahead of a call's four keys and four arguments
_SCRIPT_CALL_HEADER: Final = b"*11\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n%d\r\n" % (
    _CLAIM_THEN_ENQUEUE_SHA.encode(),
    _CLAIM_KEY_COUNT,
)
#: a connection that broke is tried once more (Redis restarted, a proxy closed an idle one)
_SCRIPT_CONNECTION_RETRIES: Final = LISTENER_REDIS_RETRIES
#: the replies to one request's calls are a few bytes each
_RECEIVE_BYTES: Final = 4096
#: rq shortens each argument's repr in a job's description to this many characters
_DESCRIPTION_ARG_LENGTH: Final = 75

#: extends a lease only while it still holds our token
_EXTEND_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""

#: deletes a lock only if it still holds our token (another run may own it after a timeout)
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def connect_listener_redis(url: str) -> redis.Redis:
    """A Redis client for request handlers: 0.5 s timeouts and one retry, so a dead or hung
    Redis turns into ``QueueUnavailable`` (503) well within Graph's 3 s."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=LISTENER_REDIS_TIMEOUT_SECONDS,
        socket_timeout=LISTENER_REDIS_TIMEOUT_SECONDS,
        retry=RedisRetry(NoBackoff(), LISTENER_REDIS_RETRIES),
    )


def _inflight_member(change: Change) -> str:
    return f"{change.tenant_id}|{change.kind}|{change.object_id}"


def _inflight_change(raw: bytes | str) -> Change:
    text = raw.decode() if isinstance(raw, bytes) else raw
    tenant_id, kind, object_id = text.split("|", 2)
    return Change(tenant_id, "group" if kind == "group" else "user", object_id)


def pending_key(tenant_id: str, kind: ObjectKind, object_id: str) -> str:
    return f"{KEY_PREFIX}pending:{tenant_id}:{kind}:{object_id.lower()}"


def object_lock_key(tenant_id: str, kind: ObjectKind, object_id: str) -> str:
    return f"{KEY_PREFIX}lock:{tenant_id}:{kind}:{object_id.lower()}"


def reconcile_pending_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}reconcile:pending:{tenant_id}"


def reconcile_lock_key(tenant_id: str) -> str:
    return f"{KEY_PREFIX}reconcile:running:{tenant_id}"


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


@dataclass(frozen=True)
class Change:
    """One object of a tenant that Graph says has changed."""

    tenant_id: str
    kind: ObjectKind
    object_id: str


@dataclass(frozen=True)
class Turn:
    """Whether a job got its turn; when not, it must return without doing the work."""

    acquired: bool

    def __bool__(self) -> bool:
        return self.acquired


#: one call of the enqueue script: its keys, then its arguments
_Call = list[Any]


class _ScriptChannel:
    """Runs the enqueue script on a connection of this thread's own.

    The listener's hot path. Each request thread keeps one connection, so requests never wait
    on each other's round trips or hand replies between threads: on a busy listener every
    thread switch costs more CPU than the script itself. redis-py makes and sets up the
    connection (address, TLS, password, database); the calls are packed here, written to its
    socket and their one-line replies read back directly, which saves redis-py's per-command
    bookkeeping. On a plain socket the timeouts are the kernel's (``SO_RCVTIMEO``), so a send
    or a receive is one system call instead of a poll and the call.

    A dropped connection is tried once more, as redis-py would; a Redis that forgot the script
    (restarted, or ``SCRIPT FLUSH``) gets it loaded again.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._connection: Any = None
        self._sock: socket.socket | None = None
        self._pid = 0
        self._buffer = b""

    def run(self, calls: list[_Call]) -> list[Any]:
        packed = b"".join(_pack_script_call(argv) for argv in calls)
        for attempt in range(1 + _SCRIPT_CONNECTION_RETRIES):
            try:
                return self._run_once(packed, len(calls))
            except (redis.ConnectionError, redis.TimeoutError):
                self._drop()
                if attempt == _SCRIPT_CONNECTION_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _run_once(self, packed: bytes, count: int) -> list[Any]:
        self._send(packed)
        replies = self._read(count)
        if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            # Redis forgot the script (nothing ran): load it, run again
            self._load_script()
            self._send(packed)
            replies = self._read(count)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def _send(self, packed: bytes) -> None:
        sock = self._connected()
        try:
            sock.sendall(packed)
        except (TimeoutError, BlockingIOError) as exc:
            raise redis.TimeoutError("Redis did not take the command in time") from exc
        except OSError as exc:
            raise redis.ConnectionError(f"the connection to Redis broke: {exc}") from exc

    def _read(self, count: int) -> list[Any]:
        """The next ``count`` replies: integers, or the errors Redis answered (every reply is
        read, errors too, so that none is left on the connection)."""
        replies: list[Any] = []
        while len(replies) < count:
            line = self._line()
            kind, rest = line[:1], line[1:]
            if kind == b":":
                replies.append(int(rest))
            elif kind == b"-":
                replies.append(_response_error(rest.decode(errors="replace")))
            else:
                # the script answers an integer; anything else means the stream is out of step
                raise redis.ConnectionError("Redis answered something the listener did not ask")
        return replies

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._buffer += self._receive()
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line

    def _receive(self) -> bytes:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(_RECEIVE_BYTES)
        except (TimeoutError, BlockingIOError) as exc:
            raise redis.TimeoutError("Redis did not answer in time") from exc
        except OSError as exc:
            raise redis.ConnectionError(f"the connection to Redis broke: {exc}") from exc
        if not chunk:
            raise redis.ConnectionError("Redis closed the connection")
        return chunk

    def _connected(self) -> socket.socket:
        if self._sock is None or self._pid != os.getpid():
            # a connection made before a fork belongs to the parent: never share its socket
            self._connection = self._pool.make_connection()
            self._pid = os.getpid()
            self._buffer = b""
            self._connection.connect()
            self._load_script()
            self._sock = _with_kernel_timeouts(self._connection._sock)
        return self._sock

    def _load_script(self) -> None:
        self._connection.send_command("SCRIPT", "LOAD", _CLAIM_THEN_ENQUEUE, check_health=False)
        self._connection.read_response()

    def _drop(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.disconnect()
        self._connection = None
        self._sock = None
        self._buffer = b""


def _response_error(message: str) -> redis.ResponseError:
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return redis.ResponseError(message)


def _with_kernel_timeouts(sock: socket.socket) -> socket.socket:
    """The socket, blocking, with its timeouts moved into the kernel where that is possible
    (plain TCP and Unix sockets; a TLS socket keeps Python's)."""
    timeout = sock.gettimeout()
    if timeout is None or isinstance(sock, ssl.SSLSocket):
        return sock
    seconds = int(timeout)
    limit = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    sock.settimeout(None)
    return sock


def _pack_script_call(argv: list[Any]) -> bytes:
    """One ``EVALSHA`` of the enqueue script in Redis's wire format (RESP)."""
    words = [word if isinstance(word, bytes) else str(word).encode() for word in argv]
    return _SCRIPT_CALL_HEADER + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


class Dispatcher:
    """Enqueues jobs and guards their runs; one per process, safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.live = Queue(LIVE_QUEUE, connection=client, serializer=JSONSerializer)
        self.reconcile = Queue(RECONCILE_QUEUE, connection=client, serializer=JSONSerializer)
        self._release_lock = client.register_script(_RELEASE_LOCK)
        self._extend_lock = client.register_script(_EXTEND_LOCK)
        self._channels = threading.local()

    # -- the enqueue side -------------------------------------------------------------------

    def enqueue_change(self, tenant_id: str, kind: ObjectKind, object_id: str) -> bool:
        """Queue a sync of one object; False when a job for it is already waiting.

        Raises ``QueueUnavailable`` when Redis cannot be reached (nothing is then queued).
        """
        return self.enqueue_changes([Change(tenant_id, kind, object_id)])[0]

    def enqueue_changes(self, changes: Sequence[Change]) -> list[bool]:
        """``enqueue_change`` for many objects in one round trip; True where a job was queued.

        For each object one script sets the pending marker (``SET NX``) and, only if it was not
        set yet, writes the job exactly as rq's ``Queue.enqueue`` would, atomically: there is
        never a marker without its job. Duplicates within ``changes`` count once. Raises
        ``QueueUnavailable`` when Redis cannot be reached.
        """
        stamp = utcformat(rq_now())
        calls = [self._object_job_call(change, stamp) for change in changes]
        with redis_errors():
            return [bool(result) for result in self._channel().run(calls)]

    def _channel(self) -> _ScriptChannel:
        channel: _ScriptChannel | None = getattr(self._channels, "channel", None)
        if channel is None:
            channel = self._channels.channel = _ScriptChannel(self.redis.connection_pool)
        return channel

    @staticmethod
    def _object_job_call(change: Change, stamp: str) -> _Call:
        """The enqueue script's keys (the pending marker first) and arguments for one object."""
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
        keys = [
            pending_key(change.tenant_id, change.kind, change.object_id),
            Job.redis_job_namespace_prefix + job_id,
            _LIVE_QUEUE_KEY,
            Queue.redis_queues_keys,
        ]
        return [*keys, job_id, stamp, data, description]

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
                self._give_back([marker])
                raise
        return True

    def queue_depths(self) -> dict[str, int]:
        """Jobs waiting per queue, plus the failed registry of each (``live.failed`` ...)."""
        with redis_errors():
            depths: dict[str, int] = {}
            for queue in (self.live, self.reconcile):
                depths[queue.name] = queue.count
                depths[f"{queue.name}.failed"] = queue.failed_job_registry.count
            return depths

    # -- the job side -----------------------------------------------------------------------

    @contextmanager
    def object_job(self, tenant_id: str, kind: ObjectKind, object_id: str) -> Iterator[Turn]:
        """Guard one run of an object job: yields a ``Turn``; do the work only when acquired.

        Acquired: the pending marker is cleared at once (a notification from now on queues one
        more run, which sees this run's result) and the object's lock is held until the block
        ends. Not acquired (another run of this object is in progress): the job is queued again
        ``BUSY_REQUEUE_DELAY`` later and the pending marker is kept, so notifications keep
        folding into that one job. Requeueing rather than waiting keeps a worker free for other
        objects; rather than raising, it keeps rq's retries and failed registry for real errors.
        """
        lock = object_lock_key(tenant_id, kind, object_id)
        token = secrets.token_hex(16)
        member = _inflight_member(Change(tenant_id, kind, object_id))
        with redis_errors():
            acquired = bool(self.redis.set(lock, token, nx=True, ex=OBJECT_LEASE_SECONDS))
            if not acquired:
                self._requeue_busy(Change(tenant_id, kind, object_id))
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
        stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(lock, token, member, stop), daemon=True
        )
        heartbeat.start()
        try:
            yield Turn(acquired=True)
        finally:
            stop.set()
            heartbeat.join()
            with redis_errors():
                self.redis.zrem(INFLIGHT_KEY, member)
                self._release_lock(keys=[lock], args=[token])

    def take_lease(self, change: Change) -> None:
        """Record that a run of this object is starting (the worker calls it before the job
        runs): if the run never ends, the lease runs out and the object is queued again."""
        with redis_errors():
            self.redis.zadd(
                INFLIGHT_KEY, {_inflight_member(change): time.time() + OBJECT_LEASE_SECONDS}
            )

    def _heartbeat(self, lock: str, token: str, member: str, stop: threading.Event) -> None:
        """Renew a run's lease until it ends; a worker that dies stops renewing it."""
        while not stop.wait(OBJECT_HEARTBEAT_SECONDS):
            try:
                self._extend_lock(keys=[lock], args=[token, OBJECT_LEASE_SECONDS])
                self.redis.zadd(INFLIGHT_KEY, {member: time.time() + OBJECT_LEASE_SECONDS})
            except redis.RedisError:
                # Redis is away: the run goes on; if the lease lapses meanwhile, a second run
                # of the same object is harmless (runs are idempotent)
                log.warning("could not renew a run's lease", extra={"lock": lock})

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
                    self.enqueue_change(change.tenant_id, change.kind, change.object_id)
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

    @contextmanager
    def reconcile_guard(self, tenant_id: str) -> Iterator[Turn]:
        """Guard one full reconcile of a tenant: yields a ``Turn``; work only when acquired.

        While it runs, ``enqueue_reconcile`` for the tenant queues nothing (the running one
        repairs the same drift; the hourly schedule follows). A second reconcile that starts
        while one runs (only possible by hand, ``rq enqueue``) is skipped, not queued again: it
        would redo the same whole-tenant work right after.
        """
        lock = reconcile_lock_key(tenant_id)
        token = secrets.token_hex(16)
        with redis_errors():
            acquired = bool(self.redis.set(lock, token, nx=True, ex=RECONCILE_LOCK_SECONDS))
            if acquired:
                self.redis.set(
                    reconcile_pending_key(tenant_id), b"running", ex=RECONCILE_LOCK_SECONDS
                )
        if not acquired:
            log.info("reconcile already running; this run skipped", extra={"tenant": tenant_id})
            yield Turn(acquired=False)
            return
        try:
            yield Turn(acquired=True)
        finally:
            with redis_errors():
                self.redis.delete(reconcile_pending_key(tenant_id))
                self._release_lock(keys=[lock], args=[token])

    # -- internals --------------------------------------------------------------------------

    def _object_job_options(self) -> dict[str, Any]:
        return {
            "job_timeout": OBJECT_JOB_TIMEOUT_SECONDS,
            "result_ttl": RESULT_TTL_SECONDS,
            "failure_ttl": FAILURE_TTL_SECONDS,
            "retry": Retry(
                max=len(OBJECT_RETRY_INTERVALS_SECONDS),
                interval=list(OBJECT_RETRY_INTERVALS_SECONDS),
            ),
        }

    def _requeue_busy(self, change: Change) -> None:
        marker = pending_key(change.tenant_id, change.kind, change.object_id)
        with self.redis.pipeline(transaction=True) as pipe:
            self.live.enqueue_in(
                BUSY_REQUEUE_DELAY,
                object_job_name(change.kind),
                args=(change.tenant_id, change.object_id),
                pipeline=pipe,
                **self._object_job_options(),
            )
            pipe.set(marker, b"1", ex=PENDING_TTL_SECONDS)
            pipe.execute()

    def _give_back(self, markers: list[str]) -> None:
        # best effort: Redis is failing, and the markers expire by themselves soon
        if markers:
            with suppress(redis.RedisError):
                self.redis.delete(*markers)
