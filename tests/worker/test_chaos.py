"""A bounded chaos run in the suite (``bench/chaos.py`` is the full one): faults on both sides,
a worker killed, Redis stopped and killed, then faults off; the portal comes back to equal
Microsoft 365 by itself, with no duplicate, no licence or manual group touched, no process
dead."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chaos", ROOT / "bench" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_short_chaos_run_converges_without_a_reconcile(tmp_path: Path) -> None:
    chaos = _bench()
    args = chaos.parse(
        ["--users", "80", "--changes", "20", "--max-wait", "150", "--workdir", str(tmp_path)]
    )
    figures = chaos.run(args)
    assert sum(figures.changes.values()) == 20
    assert figures.converged_after is not None, figures.remaining
    assert figures.duplicates == 0
    assert figures.licences_changed == 0
    assert figures.manual_groups_changed == 0
    assert figures.died == []
