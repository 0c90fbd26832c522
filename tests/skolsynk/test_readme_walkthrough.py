"""The README's "Setting up a school against the sandbox", run exactly as written."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEADING = "### Setting up a school against the sandbox"


def walkthrough() -> str:
    """The first ``sh`` block under the walk-through's heading in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(HEADING, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the walk-through has no sh block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_walkthrough_sets_up_a_school_as_written(tmp_path: Path) -> None:
    # only what the walk-through itself sets: nothing of this machine's Skolsynk settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKOLSYNK_", "REDIS_URL"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        ["bash", "-e", "-c", walkthrough()],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what the script started and left
            os.killpg(process.pid, signal.SIGTERM)

    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert "Traceback" not in out + err
    assert "Created tenant Lunds kommun" in out
    assert "Created organisation lund: SCIM base URL http://127.0.0.1:" in out
    assert "Registered tenant Lunds kommun" in out
    assert "Classes that will sync" in out
    planned, applied = map(int, re.search(r"Planned (\d+) changes: applied (\d+)", out).groups())
    assert planned == applied > 100
    newest = out.split("Queues:")[-1].splitlines()[3:]  # the audit's five newest entries
    assert len(newest) == 5 and all(" applied " in line for line in newest), newest
    env_file = tmp_path / "var" / "school.env"
    assert env_file.stat().st_mode & 0o077 == 0
    secret = re.search(r"SKOLSYNK_CLIENT_SECRET='?([^'\n]+)", env_file.read_text()).group(1)
    assert secret not in out + err
