"""The whole system on one machine as child processes: Redis, the sandbox tenant, the reference
portal, the listener under gunicorn, RQ workers and the scheduler. Used by ``skolsynk demo``
and the benchmarks.

Every child runs in its own process group with its output in a log file under the stack's work
directory; ``stop()`` (also on leaving the ``with`` block) ends them all, children included.

Failure policy: a child that exits or does not answer in time raises ``StackError`` naming it
and quoting the end of its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import requests

from common.errors import SkolsynkError

READY_TIMEOUT_SECONDS = 90.0
SECRET_KEY_BYTES = 24


class StackError(SkolsynkError):
    """A child process of the local stack failed to start or died."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_without_password(url: str) -> str:
    """A Redis URL as it may be shown: its password as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{parts.username or ''}:***@{host}", parts.path, "", ""))


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=timeout)


class Stack:
    """A local installation of Skolsynk and its stand-ins, started piece by piece."""

    def __init__(self, workdir: Path, *, redis_url: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.redis_url = redis_url
        #: the Redis was given (REDIS_URL): what the stack writes there, it must clean up
        self.shared_redis = redis_url is not None
        self.graph: dict[str, Any] = {}
        self.portal: dict[str, Any] = {}
        self.listener_url = ""
        self.secret_key = os.urandom(SECRET_KEY_BYTES).hex()

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    def start(self, name: str, args: Sequence[str], *, env: dict[str, str] | None = None) -> Child:
        child = Child(
            name,
            args,
            self.workdir / f"{name}.log",
            {**os.environ, **(env or {})},
        )
        self.children.append(child)
        return child

    def wait(self, child: Child, ready: Callable[[], bool], *, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not child.alive:
                raise StackError(
                    f"{what} exited while starting; its log ends with:\n{child.log_tail()}"
                )
            try:
                if ready():
                    return
            except (OSError, ValueError, requests.RequestException, redis.RedisError):
                pass
            time.sleep(0.1)
        raise StackError(
            f"{what} did not become ready in time; its log ends with:\n{child.log_tail()}"
        )

    def check_alive(self) -> None:
        """Raise if any child died."""
        for child in self.children:
            if not child.alive:
                raise StackError(
                    f"{child.name} stopped unexpectedly; its log ends with:\n{child.log_tail()}"
                )

    # --- the pieces ----------------------------------------------------------------------------

    def ensure_redis(self) -> str:
        """The Redis the stack uses: the one ``REDIS_URL`` names when it is set explicitly
        (``shared_redis``: whatever else is there is someone else's), else a redis-server of the
        stack's own on a free port, never one that merely happens to answer on 6379."""
        if self.redis_url:
            if not self.shared_redis:
                return self.redis_url
            if not redis_answers(self.redis_url):
                raise StackError(
                    f"Redis does not answer at REDIS_URL ({url_without_password(self.redis_url)}).",
                    hint="Start it, fix REDIS_URL, or unset REDIS_URL to let the demo run its own.",
                )
            return self.redis_url
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server is not installed, and REDIS_URL does not name a Redis to use.",
                hint="Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL.",
            )
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        child = self.start(
            "redis",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        self.wait(child, lambda: redis_answers(url), what="redis-server")
        self.redis_url = url
        self.shared_redis = False
        return url

    def start_graph(self, *args: str) -> dict[str, Any]:
        """``skolsynk sandbox graph ARGS`` with its data in the work directory."""
        data_dir = self.workdir / "graph"
        info_path = data_dir / "sandbox.json"
        info_path.unlink(missing_ok=True)
        child = self.start(
            "sandbox-graph",
            [
                sys.executable,
                "-m",
                "skolsynk.cli",
                "sandbox",
                "graph",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                *args,
            ],
        )

        def ready() -> bool:
            if not info_path.is_file():
                return False
            self.graph = json.loads(info_path.read_text())
            return True

        self.wait(child, ready, what="the sandbox tenant")
        return self.graph

    def start_portal(self, *args: str) -> dict[str, Any]:
        """``skolsynk sandbox portal`` with its database in the work directory."""
        db = self.workdir / "portal" / "portal.sqlite3"
        db.parent.mkdir(parents=True, exist_ok=True)
        info_path = db.parent / "portal.json"
        info_path.unlink(missing_ok=True)
        child = self.start(
            "sandbox-portal",
            [
                sys.executable,
                "-m",
                "skolsynk.cli",
                "sandbox",
                "portal",
                "--db",
                str(db),
                "--port",
                "0",
                *args,
            ],
        )

        def ready() -> bool:
            if not info_path.is_file():
                return False
            self.portal = json.loads(info_path.read_text())
            return True

        self.wait(child, ready, what="the reference portal")
        return self.portal

    def env(self) -> dict[str, str]:
        """The environment every Skolsynk process of this stack runs with."""
        env = {
            "REDIS_URL": self.ensure_redis(),
            "SKOLSYNK_SECRET_KEY": self.secret_key,
            "SKOLSYNK_LOG_FORMAT": "json",
        }
        if self.graph:
            env.update(
                {
                    "SKOLSYNK_CLIENT_ID": self.graph["client_id"],
                    "SKOLSYNK_CLIENT_SECRET": self.graph["client_secret"],
                    "SKOLSYNK_AUTHORITY": self.graph["authority"],
                    "SKOLSYNK_GRAPH_URL": self.graph["graph_url"],
                    "SKOLSYNK_CA_BUNDLE": self.graph["ca_bundle"],
                }
            )
        if self.listener_url:
            env["SKOLSYNK_PUBLIC_URL"] = self.listener_url
        return env

    def start_listener(self, *, workers: int = 2, threads: int = 8) -> str:
        """The listener under gunicorn, as the Procfile's ``web`` line runs it."""
        port = free_port()
        self.listener_url = f"http://127.0.0.1:{port}"
        metrics_dir = self.workdir / "metrics"
        metrics_dir.mkdir(exist_ok=True)
        root = Path(__file__).resolve().parent.parent
        child = self.start(
            "listener",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(root / "deploy" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "listener.app:create_app()",
            ],
            env={
                **self.env(),
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": str(threads),
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            },
        )
        self.wait(
            child,
            lambda: requests.get(f"{self.listener_url}/readyz", timeout=1).status_code == 200,
            what="the listener",
        )
        return self.listener_url

    def start_workers(self, count: int = 2) -> list[Child]:
        """RQ workers as the Procfile's ``worker`` line runs them (live work first)."""
        rq = str(Path(sys.executable).with_name("rq"))
        return [
            self.start(
                f"worker-{i + 1}",
                [
                    rq,
                    "worker",
                    "--worker-class",
                    "worker.runner.SkolsynkWorker",
                    "--connection-class",
                    "worker.runner.PatientRedis",
                    "--with-scheduler",
                    "--serializer",
                    "rq.serializers.JSONSerializer",
                    "--url",
                    self.ensure_redis(),
                    "live",
                    "reconcile",
                ],
                env=self.env(),
            )
            for i in range(count)
        ]

    def start_scheduler(self) -> Child:
        """The one scheduler process (hourly reconcile, subscription renewal)."""
        return self.start("scheduler", [sys.executable, "-m", "worker.cron"], env=self.env())
