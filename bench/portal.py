"""Benchmark of the reference portal over real HTTP.

Starts ``skolsynk sandbox portal`` on a temporary database, creates users through SCIM
(``POST /Users``, several clients at once) up to each size, and prints at each size:

- creates per second (min/median/max over batches of 1,000),
- the time to read all users page by page (``startIndex``/``count``; min/median/max over runs),
- the latency of one ``userName eq`` lookup (the sync's most common query).

Usage: ``python bench/portal.py [--sizes 10000 100000] [--workers 4] [--runs 3]``.
Use ``--sizes 2000`` for a quick look; the default takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from common.portal.scim import SCHOOL_USER_SCHEMA, SCIM_MEDIA_TYPE, USER_SCHEMA

BATCH = 1000
GIVEN = ["Åsa", "Björn", "Elin", "Göran", "Linnéa", "Märta", "Oskar", "Sofia", "Ture", "Ylva"]
FAMILY = ["Öberg", "Ström", "Lindqvist", "Åkesson", "Nyström", "Eriksson", "Bäck", "Holm"]


def start_portal(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    command = [sys.executable, "-m", "sandbox.portal.cli", "--port", "0"]
    command += ["--db", str(workdir / "portal.sqlite3")]
    log = (workdir / "portal.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    info_path = workdir / "portal.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((workdir / "portal.log").read_text())
        if info_path.exists():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            try:
                if requests.get(f"{info['url']}/_sandbox/health", timeout=2).ok:
                    return process, info
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    process.terminate()
    raise SystemExit("the portal did not start")


def user_body(n: int) -> dict[str, Any]:
    given, family = GIVEN[n % len(GIVEN)], FAMILY[n // len(GIVEN) % len(FAMILY)]
    email = f"{given}.{family}.{n}@skola.example".lower()
    return {
        "schemas": [USER_SCHEMA, SCHOOL_USER_SCHEMA],
        "externalId": f"entra-{n:08}",
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "displayName": f"{given} {family}",
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
        SCHOOL_USER_SCHEMA: {
            "role": "student" if n % 12 else "teacher",
            "schools": [f"skola-{n % 20}"],
            "grade": str(n % 9 + 1),
        },
    }


class Clients:
    """One keep-alive session per worker thread."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.local = threading.local()
        self.all: list[requests.Session] = []
        self.lock = threading.Lock()

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.token}"
            session.headers["Content-Type"] = SCIM_MEDIA_TYPE
            self.local.session = session
            with self.lock:
                self.all.append(session)
        return session

    def close(self) -> None:
        for session in self.all:
            session.close()


def create_users(
    clients: Clients, scim_url: str, start: int, stop: int, workers: int
) -> list[float]:
    """Create users ``start..stop-1``; creates per second of each batch of ``BATCH``."""

    def create(n: int) -> None:
        response = clients.session().post(f"{scim_url}/Users", data=json.dumps(user_body(n)))
        if response.status_code != 201:
            raise RuntimeError(f"create {n}: {response.status_code} {response.text[:200]}")

    rates = []
    with ThreadPoolExecutor(workers) as pool:
        for batch_start in range(start, stop, BATCH):
            batch = range(batch_start, min(stop, batch_start + BATCH))
            began = time.perf_counter()
            list(pool.map(create, batch))
            rates.append(len(batch) / (time.perf_counter() - began))
    return rates


def read_all(session: requests.Session, scim_url: str, page_size: int) -> tuple[float, int]:
    began = time.perf_counter()
    seen, start, total = 0, 1, None
    while total is None or start <= total:
        page = session.get(
            f"{scim_url}/Users", params={"startIndex": start, "count": page_size}
        ).json()
        total = page["totalResults"]
        seen += len(page["Resources"])
        start += page_size
    return time.perf_counter() - began, seen


def lookup_ms(session: requests.Session, scim_url: str, size: int, tries: int = 200) -> list[float]:
    times = []
    for _ in range(tries):
        n = random.randrange(size)
        wanted = user_body(n)["userName"].upper()
        began = time.perf_counter()
        page = session.get(f"{scim_url}/Users", params={"filter": f'userName eq "{wanted}"'})
        times.append((time.perf_counter() - began) * 1000)
        assert page.json()["totalResults"] == 1
    return times


def spread(values: list[float], unit: str, digits: int = 0) -> str:
    return (
        f"min {min(values):.{digits}f} / median {statistics.median(values):.{digits}f} / "
        f"max {max(values):.{digits}f} {unit}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=4, help="clients creating at once")
    parser.add_argument("--runs", type=int, default=3, help="full reads per size")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        process, info = start_portal(Path(tmp))
        org = info["organisations"][0]
        clients = Clients(org["token"])
        reader = clients.session()
        print(f"portal benchmark: {args.workers} creating clients, pages of {args.page_size}")
        created = 0
        try:
            for size in sorted(args.sizes):
                rates = create_users(clients, org["scim_url"], created, size, args.workers)
                created = size
                reads = []
                for _ in range(args.runs):
                    seconds, seen = read_all(reader, org["scim_url"], args.page_size)
                    assert seen == size, (seen, size)
                    reads.append(seconds)
                lookups = lookup_ms(reader, org["scim_url"], size)
                print(f"{size:>7,} users")
                print(f"  creates/s (batches of {BATCH}): {spread(rates, '/s')}")
                print(f"  read all in pages:             {spread(reads, 's', 2)}")
                print(f"  userName eq lookup:            {spread(lookups, 'ms', 1)}")
        finally:
            clients.close()
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
