"""Listener throughput and latency: notifications accepted per second under load, beside a bare
endpoint that only answers 202, both under the same gunicorn settings, measured in one run.

    python bench/listener.py [--duration 8] [--rounds 3] [--connections 32]

Starts a private redis-server and two gunicorn servers (``deploy/gunicorn.conf.py``, loopback
only): ``listener.app:create_app()`` and ``bench.listener:bare_app()``. ``wrk`` (Debian package
``wrk``) POSTs notifications shaped like Graph's, each for a new user, so every request is
verified and queues a job: the listener's worst case. The rounds alternate between the two
servers; the figures are min/median/max over rounds, and the ratio is taken per round.

Both servers run ``deploy/gunicorn.conf.py`` as it ships (gthread, a worker per core, 4 threads
each, a listening socket per worker); ``WEB_CONCURRENCY`` and ``GUNICORN_THREADS`` change both
alike.

Targets (DESIGN §7): at least half of the bare endpoint, above 1,000/s on 2 cores, p99 under
100 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import requests
from flask import Flask, Response

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.config import Secret  # noqa: E402
from common.state.subscriptions import SubscriptionStore  # noqa: E402

TENANT = "6c1f8a3e-2b7d-4e59-9a10-3f5c2d8e7b41"
SUBSCRIPTION = "7e0c2a44-1b3d-4c5e-8f6a-9b0c1d2e3f40"
SECRET_KEY = "bench-secret-key-" + "0123456789abcdef"

WRK_SCRIPT = r"""
local sub, state, tenant
function init(args)
  sub, state, tenant = args[1], args[2], args[3]
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
local function hex(n)
  local s = ""
  for _ = 1, n do s = s .. string.format("%x", math.random(0, 15)) end
  return s
end
request = function()
  local id = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(12)
  local body = '{"value":[{"subscriptionId":"' .. sub .. '","clientState":"' .. state ..
    '","tenantId":"' .. tenant .. '","changeType":"updated","resource":"Users/' .. id ..
    '","resourceData":{"@odata.type":"#Microsoft.Graph.User","@odata.id":"Users/' .. id ..
    '","id":"' .. id .. '","organizationId":"' .. tenant ..
    '"},"subscriptionExpirationDateTime":"2026-12-20T10:00:00.0000000+00:00"}]}'
  return wrk.format("POST", "/graph/notifications",
    {["Content-Type"] = "application/json; charset=utf-8"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def bare_app() -> Flask:
    """The baseline: the same framework and server, an endpoint that only answers 202."""
    app = Flask(__name__)

    @app.post("/graph/notifications")
    def notifications() -> Response:
        return Response(status=202)

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


@contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    with log.open("ab") as out:
        child = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        yield child.pid
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@dataclass(frozen=True)
class Round:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run_wrk(url: str, script: Path, args: argparse.Namespace, client_state: str) -> Round:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        SUBSCRIPTION,
        client_state,
        TENANT,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return Round(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["status_errors"] + data["socket_errors"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
    )


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux ``/proc``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def with_workers(pid: int) -> list[int]:
    """A gunicorn master and its workers (its children)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return [pid, *children]


def spread(values: list[float]) -> str:
    return f"{min(values):8.1f} {statistics.median(values):8.1f} {max(values):8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install {tool})")

    work = Path(tempfile.mkdtemp(prefix="bench-listener-"))
    script = work / "notify.lua"
    script.write_text(WRK_SCRIPT)
    redis_port, listener_port, bare_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    client_state = secrets.token_urlsafe(32)
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
    env = {
        "REDIS_URL": redis_url,
        "SKOLSYNK_CLIENT_ID": "00000000-0000-4000-8000-0000000be4c0",
        "SKOLSYNK_CLIENT_SECRET": "not-used-by-the-listener",
        "SKOLSYNK_SECRET_KEY": SECRET_KEY,
        "SKOLSYNK_PUBLIC_URL": "https://skolsynk.example.test",
    }
    redis_args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis_args += ["--save", "", "--appendonly", "no", "--dir", str(work)]
    with (
        process(redis_args, work / "redis.log") as redis_pid,
        process(
            [*gunicorn, "--bind", f"127.0.0.1:{listener_port}", "listener.app:create_app()"],
            work / "listener.log",
            {**env, "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics-listener")},
        ) as listener_pid,
        process(
            [*gunicorn, "--bind", f"127.0.0.1:{bare_port}", "bench.listener:bare_app()"],
            work / "bare.log",
            {**env, "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics-bare")},
        ) as bare_pid,
    ):
        client = redis.Redis.from_url(redis_url)
        wait_for(lambda: bool(client.ping()), "redis-server")
        listener_url = f"http://127.0.0.1:{listener_port}/graph/notifications"
        bare_url = f"http://127.0.0.1:{bare_port}/graph/notifications"
        wait_for(lambda: requests.post(bare_url, timeout=1).status_code == 202, "bare server")
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{listener_port}/readyz", timeout=1).ok,
            "listener",
        )
        store = SubscriptionStore(client, Secret(SECRET_KEY))

        def fresh() -> None:
            client.flushdb()
            store.add(
                SUBSCRIPTION,
                tenant_id=TENANT,
                resource="/users",
                expires_at=datetime.now(UTC) + timedelta(days=20),
                notification_url="https://skolsynk.example.test/graph/notifications",
                lifecycle_url="https://skolsynk.example.test/graph/lifecycle",
                client_state=client_state,
            )

        fresh()
        run_wrk(
            listener_url, script, argparse.Namespace(**{**vars(args), "duration": 2}), client_state
        )
        run_wrk(bare_url, script, argparse.Namespace(**{**vars(args), "duration": 2}), client_state)

        listener_rounds: list[Round] = []
        bare_rounds: list[Round] = []
        # CPU per answered request, in microseconds: the gunicorn processes, and Redis
        cpu_us: dict[str, list[float]] = {"listener": [], "redis": [], "bare": []}
        queued_ok = True
        for number in range(1, args.rounds + 1):
            bare_before = cpu_seconds(bare_workers := with_workers(bare_pid))
            bare = run_wrk(bare_url, script, args, client_state)
            cpu_us["bare"].append(1e6 * (cpu_seconds(bare_workers) - bare_before) / bare.requests)
            fresh()
            listener_workers = with_workers(listener_pid)
            before = cpu_seconds(listener_workers), cpu_seconds([redis_pid])
            listener = run_wrk(listener_url, script, args, client_state)
            used = cpu_seconds(listener_workers) - before[0], cpu_seconds([redis_pid]) - before[1]
            cpu_us["listener"].append(1e6 * used[0] / listener.requests)
            cpu_us["redis"].append(1e6 * used[1] / listener.requests)
            jobs = int(client.llen("rq:queue:live"))
            # wrk stops counting with requests in flight, which the listener may still queue
            answered = listener.requests - listener.errors
            queued_ok &= answered <= jobs <= answered + args.connections
            bare_rounds.append(bare)
            listener_rounds.append(listener)
            print(
                f"round {number}: listener {listener.per_second:7.0f}/s "
                f"(p50 {listener.p50_ms:.1f} ms, p99 {listener.p99_ms:.1f} ms, "
                f"{listener.errors} errors, {listener.requests} answered, {jobs} jobs queued), "
                f"bare {bare.per_second:7.0f}/s (p99 {bare.p99_ms:.1f} ms), "
                f"ratio {listener.per_second / bare.per_second:.2f}"
            )
        client.close()

    ratios = [
        lst.per_second / bare.per_second
        for lst, bare in zip(listener_rounds, bare_rounds, strict=True)
    ]
    print()
    print(f"{os.cpu_count()} cores; {args.connections} connections; {args.duration} s per round")
    print("                                      min   median      max")
    print(f"listener accepted/s            {spread([r.per_second for r in listener_rounds])}")
    print(f"bare 202 endpoint/s            {spread([r.per_second for r in bare_rounds])}")
    print(f"ratio listener/bare            {spread([100 * r for r in ratios])} %")
    print(f"listener p50 ms                {spread([r.p50_ms for r in listener_rounds])}")
    print(f"listener p99 ms                {spread([r.p99_ms for r in listener_rounds])}")
    print(f"bare p99 ms                    {spread([r.p99_ms for r in bare_rounds])}")
    print(f"listener CPU us/request        {spread(cpu_us['listener'])}")
    print(f"  + its Redis CPU us/request   {spread(cpu_us['redis'])}")
    print(f"bare CPU us/request            {spread(cpu_us['bare'])}")
    errors = sum(r.errors for r in listener_rounds)
    print(f"listener errors                {errors}")
    print(f"every accepted request queued  {'yes' if queued_ok else 'NO'}")
    median_ratio = statistics.median(ratios)
    median_rate = statistics.median(r.per_second for r in listener_rounds)
    worst_p99 = max(r.p99_ms for r in listener_rounds)
    verdicts = {
        "ratio >= 0.5": median_ratio >= 0.5,
        "> 1000/s": median_rate > 1000,
        "p99 < 100 ms": worst_p99 < 100,
        "0 errors": errors == 0,
    }
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdicts.items()))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(verdicts.values()) and queued_ok else 1


if __name__ == "__main__":
    sys.exit(main())
