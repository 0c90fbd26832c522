"""``skolsynk demo --check``, run as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DEMO_DB = 2


def test_demo_check_passes_and_cleans_up_its_processes(redis_server: Any, tmp_path: Path) -> None:
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
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
    assert "The portal matches Microsoft 365 exactly." in out
    assert "Stopped every process of the demo." in out
    # no child outlives the demo: every log file's writer has exited
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""
