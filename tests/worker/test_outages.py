"""A worker and the scheduler keep running through Redis outages (stopped, then SIGKILLed) and
work again once Redis is back, with each outage logged once rather than once per attempt."""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.state.guards import INFLIGHT_KEY
from tests.conftest import ROOT
from tests.fixtures.processes import ServiceProcess, free_port, wait_until

pytestmark = pytest.mark.slow

#: longer than the scheduler's shortest interval, so that it meets every outage
OUTAGE_SECONDS = 6.0


class PersistentRedis:
    """A private redis-server with its append-only file, as ``deploy/redis.conf`` runs it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: ServiceProcess | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)]
        self.process = ServiceProcess(args, log_path=self.workdir / "redis.log").start()
        client = redis.Redis.from_url(self.url)
        self.process.wait_ready(lambda: bool(client.ping()), timeout=20)
        client.close()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[PersistentRedis]:
    server = PersistentRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.process.stop()


def test_worker_and_scheduler_survive_redis_stopped_and_sigkilled_and_work_after(
    persistent_redis: PersistentRedis, tmp_path: Path
) -> None:
    env = {
        "REDIS_URL": persistent_redis.url,
        "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-0000000000aa",
        "SKOLSYNK_CLIENT_SECRET": "not-used-here",
        "SKOLSYNK_SECRET_KEY": "outage-tests-secret-key-0123456789",
    }
    rq = str(Path(sys.executable).with_name("rq"))
    worker = ServiceProcess(
        [
            *(rq, "worker", "--worker-class", "worker.runner.SkolsynkWorker", "--with-scheduler"),
            *("--connection-class", "worker.runner.PatientRedis"),
            *("--serializer", "rq.serializers.JSONSerializer", "--url", persistent_redis.url),
            *("live", "reconcile"),
        ],
        log_path=tmp_path / "worker.log",
        env=env,
        cwd=ROOT,
    ).start()
    scheduler = ServiceProcess(
        [sys.executable, "-m", "worker.cron"],
        log_path=tmp_path / "scheduler.log",
        env=env,
        cwd=ROOT,
    ).start()
    client = redis.Redis.from_url(persistent_redis.url, socket_timeout=5)
    try:

        def lost_run_is_recovered(name: str) -> None:
            """A run whose lease ran out is queued again: the scheduler queued the recovery
            job and the worker ran it."""
            member = f"00000000-0000-4000-8000-0000000000bb|user|{name}"
            client.zadd(INFLIGHT_KEY, {member: time.time() - 60})
            wait_until(
                lambda: client.zscore(INFLIGHT_KEY, member) is None,
                timeout=30,
                what=f"the lost run {name} to be recovered",
            )

        lost_run_is_recovered("before")
        assert persistent_redis.process is not None

        persistent_redis.process.stop()  # Redis stopped (SIGTERM: it writes its file)
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for an event
        assert worker.running() and scheduler.running()
        persistent_redis.start()
        lost_run_is_recovered("after-stop")

        persistent_redis.process.signal(signal.SIGKILL)  # Redis killed
        persistent_redis.process.process.wait(timeout=10)  # type: ignore[union-attr]
        time.sleep(OUTAGE_SECONDS)
        assert worker.running() and scheduler.running()
        persistent_redis.start()
        lost_run_is_recovered("after-kill")

        assert worker.running(), worker.log_tail()
        assert scheduler.running(), scheduler.log_tail()
        for process in (worker, scheduler):
            # every outage a process noticed ends with its "reachable again" line (a process
            # that slept through an outage, as the scheduler may between its ticks, notices
            # none); the line comes with its first command after Redis is back
            wait_until(
                lambda process=process: _told_it_is_back(process.log_path.read_text()),
                timeout=30,
                what=f"{process.log_path.name} to say Redis is reachable again",
            )
            text = process.log_path.read_text()
            assert "found an unhandled exception" not in text
            # once per outage per Redis client of the process (the worker forks rq's
            # scheduler too; a Redis going down may answer once more on its way, which starts
            # a second outage), never once per reconnection attempt (dozens in 6 s)
            assert text.count("Redis unreachable") <= 6, text[-3000:]
        # the worker waits on Redis all the time: it noticed both outages
        assert worker.log_path.read_text().count("Redis reachable again") >= 2
    finally:
        client.close()
        worker.stop()
        scheduler.stop()


def _told_it_is_back(log: str) -> bool:
    """Whether a log that says Redis was unreachable says after it that it is back (a log
    that never says so has nothing to tell)."""
    return log.rfind("Redis reachable again") >= log.rfind("Redis unreachable")


def test_the_scheduler_refuses_a_bad_configuration_in_sentences_without_its_secrets() -> None:
    import subprocess

    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "http://:hunter2-in-the-url@redis.example:6379/0",
        "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-0000000000aa",
        "SKOLSYNK_CLIENT_SECRET": "client-secret-value",
        "SKOLSYNK_SECRET_KEY": "tiny-key-9",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker.cron"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "REDIS_URL" in done.stderr and "SKOLSYNK_SECRET_KEY" in done.stderr
    for secret in ("hunter2-in-the-url", "client-secret-value", "tiny-key-9"):
        assert secret not in done.stderr


def test_a_worker_started_while_redis_is_away_waits_for_it_and_then_works(
    persistent_redis: PersistentRedis, tmp_path: Path
) -> None:
    env = {
        "REDIS_URL": persistent_redis.url,
        "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-0000000000aa",
        "SKOLSYNK_CLIENT_SECRET": "not-used-here",
        "SKOLSYNK_SECRET_KEY": "outage-tests-secret-key-0123456789",
    }
    assert persistent_redis.process is not None
    persistent_redis.process.stop()
    rq = str(Path(sys.executable).with_name("rq"))
    # as a supervisor starts one during an outage (rq's command line alone would exit at once)
    worker = ServiceProcess(
        [
            *(rq, "worker", "--worker-class", "worker.runner.SkolsynkWorker", "--with-scheduler"),
            *("--connection-class", "worker.runner.PatientRedis"),
            *("--serializer", "rq.serializers.JSONSerializer", "--url", persistent_redis.url),
            *("live", "reconcile"),
        ],
        log_path=tmp_path / "late-worker.log",
        env=env,
        cwd=ROOT,
    ).start()
    try:
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for an event
        assert worker.running(), (tmp_path / "late-worker.log").read_text()[-2000:]
        persistent_redis.start()
        client = redis.Redis.from_url(persistent_redis.url, socket_timeout=5)
        # the worker went on once Redis was back: it registered itself
        wait_until(
            lambda: client.scard("rq:workers") >= 1, timeout=30, what="the worker to register"
        )
        client.close()
    finally:
        worker.stop()
