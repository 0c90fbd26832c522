"""``skolsynk demo --check``, run as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from skolsynk.stack import Stack, StackError

pytestmark = pytest.mark.slow  # each test runs the whole demo

DEMO_DB = 2


def test_demo_check_passes_and_cleans_up_its_processes(redis_server: Any, tmp_path: Path) -> None:
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
    shared = redis.Redis.from_url(redis_url)
    shared.flushdb()
    # someone else's data in the Redis the demo is pointed at
    shared.set("elsewhere:data", "theirs")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skolsynk.cli",
            "demo",
            "--check",
            "--users",
            "200",
            "--workdir",
            str(tmp_path),
        ],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Adopted " in out
    assert "COLLISIONS" in out
    for step in ("new student", "renamed", "moved to", "deactivated", "restored", "deleted"):
        assert step in out
    assert "held for approval" in out
    assert "signed in with Microsoft and sees Matematik Origo 7 under Mina läromedel" in out
    assert "Sign in yourself" not in out  # only when kept running
    assert "The portal matches Microsoft 365 exactly." in out
    assert "Stopped every process of the demo." in out
    # no child outlives the demo: every log file's writer has exited
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""
    # the demo cleaned up what it wrote in the shared Redis, and only that
    assert "(shared: cleaned up afterwards)" in out
    assert shared.get("elsewhere:data") == b"theirs"
    left = sorted(shared.scan_iter(match="skolsynk:*"))
    # the metrics' totals only ever count up (Prometheus counters), so they stay
    assert left == [b"skolsynk:metrics"]
    shared.close()


def test_the_demo_runs_a_redis_of_its_own_unless_redis_url_is_set(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        url = stack.ensure_redis()
        assert not stack.shared_redis
        assert [c.name for c in stack.children] == ["redis"]
        assert url != "redis://127.0.0.1:6379/0"
    with Stack(tmp_path, redis_url="redis://127.0.0.1:1/0") as stack:
        with pytest.raises(StackError, match=r"Redis does not answer at REDIS_URL"):
            stack.ensure_redis()
        assert stack.children == []


def test_ctrl_c_stops_every_child_process_of_a_demo_kept_running(
    redis_server: Any, tmp_path: Path
) -> None:
    import signal
    import time

    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
    log = (tmp_path / "demo.out").open("w")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skolsynk.cli",
            "demo",
            "--keep-running",
            "--users",
            "120",
            "--workdir",
            str(tmp_path / "work"),
        ],
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C to stop." not in (tmp_path / "demo.out").read_text():
            assert demo.poll() is None, (tmp_path / "demo.out").read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.5)
        children = subprocess.run(
            ["pgrep", "-P", str(demo.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 6  # sandbox, portal, listener, two workers, scheduler

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()
    out = (tmp_path / "demo.out").read_text()
    assert "Stopped every process of the demo." in out
    assert "Sign in yourself: http://" in out and "password " in out
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert alive == []
