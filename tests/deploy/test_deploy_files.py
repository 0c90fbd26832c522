"""The files operations install from ``deploy/`` parse, and agree with the Procfile."""

from __future__ import annotations

import os
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = dict(line.split(":", 1) for line in lines if line.strip())
    return {name.strip(): shlex.split(command) for name, command in entries.items()}


def program(argv: list[str]) -> list[str]:
    """The program and its arguments without paths, shells or variable expansions."""
    if len(argv) > 2 and Path(argv[0]).name == "sh" and argv[1] == "-c":
        # systemd and compose write a literal "$" as "$$"
        argv = shlex.split(argv[2].replace("$$", "$"))
    if argv and argv[0] == "exec":
        argv = argv[1:]
    cleaned = [Path(argv[0]).name, *argv[1:]]
    return [a for a in cleaned if "REDIS_URL" not in a and a != "--url"]


def test_procfile_has_web_worker_scheduler_and_admin() -> None:
    assert set(procfile()) == {"web", "worker", "scheduler", "admin"}


def test_gunicorn_config_imports_and_uses_threaded_workers() -> None:
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["worker_class"] == "gthread"
    assert settings["threads"] >= 1
    assert callable(settings["child_exit"])


def test_compose_file_runs_the_procfile_processes_and_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "proxy", *procfile()}
    # only the proxy faces the network: it lives in the listener's namespace, which publishes
    # nothing but HTTPS (gunicorn listens on loopback there)
    assert services["proxy"]["network_mode"] == "service:web"
    assert services["web"]["ports"] == ["443:443"]
    assert all("ports" not in services[name] for name in services if name != "web")
    for name, argv in procfile().items():  # the proxy is not a Skolsynk process
        assert program(services[name]["command"]) == program(argv), name
    assert "noeviction" in (DEPLOY / "redis.conf").read_text()
    assert "appendonly yes" in (DEPLOY / "redis.conf").read_text()


@pytest.mark.parametrize("unit", ["web", "worker@", "scheduler", "admin"])
def test_systemd_units_run_the_procfile_commands(unit: str) -> None:
    text = (DEPLOY / "systemd" / f"skolsynk-{unit}.service").read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    name = unit.rstrip("@")
    expected = program(procfile()[name])
    got = [a for a in program(argv) if not a.startswith(("--name", "skolsynk-%H"))]
    if name == "scheduler":
        got = got[1:] if got[0].startswith("python") else got
        expected = expected[1:] if expected[0].startswith("python") else expected
    assert got == expected


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    venv = Path(sys.executable).parent.parent
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = (
            unit.read_text()
            .replace("/opt/skolsynk/.venv", str(venv))
            .replace("/opt/skolsynk", str(ROOT))
            .replace("/etc/skolsynk/skolsynk.env", str(DEPLOY / "skolsynk.env.example"))
        )
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    result = subprocess.run(
        [analyze, "verify", *units],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_environment_lists_every_configuration_variable() -> None:
    example = (DEPLOY / "skolsynk.env.example").read_text()
    source = (ROOT / "common" / "config.py").read_text()
    import re

    names = set(re.findall(r'"((?:SKOLSYNK|REDIS)_[A-Z_]+)"', source))
    assert names
    for name in names:
        assert name in example, name
