"""gunicorn settings for the listener (the Procfile's ``web`` line uses them).

    gunicorn -c deploy/gunicorn.conf.py 'listener.app:create_app()'

Threaded workers (gthread): a request spends most of its time waiting on Redis, so a few threads
per process keep a core busy; processes add cores. Tunable from the environment:

- ``BIND_ADDRESS`` (default ``127.0.0.1``) and ``PORT`` (default 8000): where to listen. The
  listener runs behind nginx (``deploy/nginx/skolsynk.conf``), which alone faces the network;
  bind elsewhere only for that proxy (the compose file binds the container's address, which
  it does not publish)
- ``WEB_CONCURRENCY`` (default: the number of cores, at least 2): worker processes
- ``GUNICORN_THREADS`` (default 4): threads per worker
- ``PROMETHEUS_MULTIPROC_DIR`` (optional): where workers keep their metrics so that ``/metrics``
  adds them up; emptied at start, and a dead worker's files are removed

Slow clients: a gthread worker's thread reads a request to its end, so a client that sends its
headers a byte at a time holds a thread. Measured on 2 busy cores with 2 workers of 4 threads:
20 such clients straight at gunicorn delayed valid notifications up to 7.7 s (one of 20 timed out
after 10 s); with 16 threads, 0.04 s; behind the shipped nginx config with 4 threads, under 1 s
(``tests/deploy/test_proxy.py``), since nginx hands gunicorn only whole requests. Threads stay at
4 (more cost throughput on the hot path) and nginx is the defence; the request-line and header
limits below refuse oversized heads at once.

Logs are JSON lines on stderr (``common.logs.JsonFormatter``); the access log is off, since
``/metrics`` counts every request by endpoint and status.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

bind = f"{os.environ.get('BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, os.cpu_count() or 1))))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Graph wants an answer within 3 s; a worker silent for 30 s is stuck and is replaced
timeout = 30
graceful_timeout = 20
keepalive = 5
# Graph's requests have a short line and a dozen headers: anything far bigger is not Graph's
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads connections
# over them; on one shared socket whichever worker wakes first takes a whole burst of new
# connections, and a listener whose connections all sit in one worker runs on one core
# (measured: half the throughput, for the listener and a bare endpoint alike). The flip side:
# two listeners started by one user on one port share it without a word, so give each its own
reuse_port = True
# workers are not recycled after a number of requests (gunicorn's max_requests): a worker that
# stops closes its own socket (reuse_port, below), and the connections the kernel had queued on
# it are reset. A deployment's restart resets a few the same way; Graph delivers those again
max_requests = 0
# several listeners may run on one host; nothing here uses gunicorn's control socket
control_socket_disable = True
accesslog = None
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "common.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}


def _metrics_dir() -> Path | None:
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(raw) if raw else None


class _ListeningAt(logging.Filter):
    """Fills in the address of gunicorn's "Listening at: %s (%s)" line, empty under
    ``reuse_port`` (the workers bind, not the arbiter, so it has no listeners to name)."""

    def __init__(self, addresses: str) -> None:
        super().__init__()
        self.addresses = addresses

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        listening = str(record.msg).startswith("Listening at:")
        if listening and isinstance(args, tuple) and args and not args[0]:
            record.args = (self.addresses, *args[1:])
        return True


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory, so counters of an earlier run do not count."""
    server.log.error_log.addFilter(_ListeningAt(",".join(f"http://{b}" for b in server.cfg.bind)))
    directory = _metrics_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    if _metrics_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
