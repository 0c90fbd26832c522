"""Initial sync and a no-change reconcile of generated tenants, with sandbox latency.

For each size: a generated municipality in the sandbox tenant (Graph latency 30 ms), an empty
organisation in the reference portal (latency 10 ms), then ``skolsynk reconcile`` twice as a
child process. Prints wall time, Graph requests beside the least possible for that tenant (as
Graph's throttling counts them, ``common.graph.source.least_requests``), portal writes and the peak
memory of the reconcile process. Targets (DESIGN §7): Graph requests at most 1.1 times the
least possible, peak memory under 500 MB, 0 writes on the second run, time linear in size.

    python bench/reconcile.py                 # 10,000 and 100,000 users
    python bench/reconcile.py --sizes 2000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.graph.source import least_requests
from skolsynk.stack import Stack


def run_child(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """Run a command; its JSON output, wall seconds and its own peak resident memory in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(args, stdout=out, stderr=err, env={**os.environ, **env})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(args[2:])} failed:\n{err.read().decode()[-2000:]}")
        return json.loads(out.read()), seconds, usage.ru_maxrss / 1024


def bench_size(users: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="skolsynk-bench-") as tmp, Stack(Path(tmp)) as stack:
        loaded = time.monotonic()
        graph = stack.start_graph("--generate", str(users), "--seed", "1")
        load_seconds = time.monotonic() - loaded
        portal = stack.start_portal()
        stack.ensure_redis()
        env = stack.env()
        tenant = graph["tenants"][0]
        org = portal["organisations"][0]
        admin = {"Authorization": f"Bearer {graph['admin_token']}"}
        ca = graph["ca_bundle"]
        counts = requests.get(
            f"{graph['admin_url']}/tenants/{tenant['id']}", headers=admin, verify=ca, timeout=30
        ).json()["counts"]
        requests.put(
            f"{graph['admin_url']}/knobs",
            json={"latency_ms": args.graph_latency_ms},
            headers=admin,
            verify=ca,
            timeout=30,
        ).raise_for_status()
        requests.put(
            f"{portal['url']}/_sandbox/knobs",
            json={"latency_ms": args.portal_latency_ms},
            headers={"Authorization": f"Bearer {portal['admin_token']}"},
            timeout=30,
        ).raise_for_status()
        cli = [sys.executable, "-m", "skolsynk.cli"]
        subprocess.run(
            [
                *cli,
                "tenant",
                "add",
                tenant["id"],
                "--name",
                "Bench",
                "--test-portal",
                org["scim_url"],
                "--test-token",
                org["token"],
            ],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        least = least_requests(
            counts["users"],
            counts["students"] + counts["teachers"],
            counts["classes"],
            counts["classes"],
            counts["schools"],
        )
        first, first_s, first_mb = run_child(
            [*cli, "reconcile", tenant["id"], "--format", "json"], env
        )
        second, second_s, second_mb = run_child(
            [*cli, "reconcile", tenant["id"], "--format", "json"], env
        )
        return {
            "users": counts["users"],
            "classes": counts["classes"],
            "load_s": load_seconds,
            "least": least,
            "first": (first, first_s, first_mb),
            "second": (second, second_s, second_mb),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="generated users, comma-separated")
    parser.add_argument("--graph-latency-ms", type=float, default=30.0)
    parser.add_argument("--portal-latency-ms", type=float, default=10.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"reconcile benchmark: Graph latency {args.graph_latency_ms:.0f} ms, "
        f"portal latency {args.portal_latency_ms:.0f} ms"
    )
    header = (
        f"{'users':>8} {'classes':>7} {'run':>7} {'wall s':>8} {'graph req':>9} {'least':>6} "
        f"{'ratio':>5} {'writes':>7} {'peak MB':>7}"
    )
    print(header)
    results = []
    for size in sizes:
        result = bench_size(size, args)
        results.append(result)
        for name in ("first", "second"):
            report, seconds, peak = result[name]
            writes = sum(report["applied"].values())
            ratio = report["graph_requests"] / result["least"]
            print(
                f"{result['users']:>8} {result['classes']:>7} {name:>7} {seconds:>8.1f} "
                f"{report['graph_requests']:>9} {result['least']:>6} {ratio:>5.2f} "
                f"{writes:>7} {peak:>7.0f}",
                flush=True,
            )
    if len(results) > 1:
        a, b = results[0], results[-1]
        size_ratio = b["users"] / a["users"]
        time_ratio = b["first"][1] / a["first"][1]
        print(
            f"size x{size_ratio:.1f} -> initial sync time x{time_ratio:.1f} "
            f"({time_ratio / size_ratio:.2f} of linear)"
        )


if __name__ == "__main__":
    main()
