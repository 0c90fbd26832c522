"""How long ``skolsynk sandbox graph --generate N`` takes to start, and how much memory it holds.

Starts the real command as a subprocess (in a temporary data directory) several times and
prints, over the runs, the time from start until ``sandbox.json`` appears (tenant built, HTTPS
listening), the process's peak resident memory (``VmHWM``), and the time to page through every
user with ``$top=999`` as a client would. Targets (issue 2): 100,000 users load in under a
minute and in under 2 GB.

    python bench/sandbox_load.py [--users 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

STARTUP_TIMEOUT_SECONDS = 300.0
LOAD_TARGET_SECONDS = 60.0
MEMORY_TARGET_MB = 2048.0


class CASession(requests.Session):
    """Trusts the sandbox CA on every request (environment CA variables would override it)."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.verify = ca_bundle

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        kw.setdefault("verify", self.verify)
        kw.setdefault("timeout", 60)
        return super().request(method, url, *args, **kw)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status (Linux only)")


def _list_all_users(info: dict[str, Any]) -> tuple[float, int, int]:
    """Seconds, users and requests to page through /users with $top=999."""
    session = CASession(info["ca_bundle"])
    try:
        tenant = info["tenants"][0]["id"]
        token = session.post(
            f"{info['authority']}/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        url: str | None = info["graph_url"] + "/users?$top=999&$select=id,displayName,mail"
        users = pages = 0
        while url:
            body = session.get(url, headers=headers).json()
            users += len(body["value"])
            pages += 1
            url = body.get("@odata.nextLink")
        return time.monotonic() - started, users, pages
    finally:
        session.close()


def one_run(users: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sandbox-load-") as tmp:
        data_dir = Path(tmp)
        command = [
            sys.executable,
            "-m",
            "skolsynk.cli",
            "sandbox",
            "graph",
            "--data-dir",
            str(data_dir),
            "--generate",
            str(users),
        ]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            info_path = data_dir / "sandbox.json"
            while not info_path.is_file():
                if process.poll() is not None:
                    raise RuntimeError(process.stderr.read().decode() if process.stderr else "")
                if time.monotonic() - started > STARTUP_TIMEOUT_SECONDS:
                    raise RuntimeError("the sandbox did not start in time")
                time.sleep(0.05)
            load_seconds = time.monotonic() - started
            info = json.loads(info_path.read_text())
            list_seconds, listed, pages = _list_all_users(info)
            peak = _peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stderr:
                process.stderr.close()
    return {
        "load_s": load_seconds,
        "peak_mb": peak,
        "list_s": list_seconds,
        "listed": listed,
        "pages": pages,
    }


def _summary(values: list[float]) -> str:
    return (
        f"min {min(values):8.2f}  median {statistics.median(values):8.2f}  max {max(values):8.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.users) for _ in range(args.runs)]
    print(f"skolsynk sandbox graph --generate {args.users}, {args.runs} runs")
    print(f"  start to sandbox.json, s      {_summary([r['load_s'] for r in runs])}")
    print(f"  peak resident memory, MB      {_summary([r['peak_mb'] for r in runs])}")
    print(
        f"  list every user ($top=999), s {_summary([r['list_s'] for r in runs])}"
        f"  ({runs[0]['listed']:.0f} users in {runs[0]['pages']:.0f} requests)"
    )
    worst_load = max(r["load_s"] for r in runs)
    worst_memory = max(r["peak_mb"] for r in runs)
    ok = worst_load < LOAD_TARGET_SECONDS and worst_memory < MEMORY_TARGET_MB
    print(
        f"  targets: load under {LOAD_TARGET_SECONDS:.0f} s and memory under "
        f"{MEMORY_TARGET_MB:.0f} MB: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
