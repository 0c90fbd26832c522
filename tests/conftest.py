"""Fixtures shared by the whole suite; each area keeps its own in ``tests/fixtures/``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.portal",
    "tests.fixtures.redis",
    "tests.fixtures.graph",
    "tests.fixtures.graph_client",
    "tests.fixtures.scim_server",
    "tests.fixtures.independent_scim",
    "tests.fixtures.engine",
    "tests.fixtures.live",
    "tests.fixtures.browser",
]

ROOT = Path(__file__).resolve().parent.parent
#: where Microsoft's SDS sample CSVs may be, in order (they are not in the repository)
SAMPLES_SETTING = "SKOLSYNK_SDS_SAMPLES"


def _sample_places() -> list[Path]:
    """``SKOLSYNK_SDS_SAMPLES``; ``../shared/sds-samples`` beside this checkout; and beside the
    checkout this one was cloned from, when that is a local directory (a throw-away clone made
    elsewhere, as CI makes one)."""
    places = [Path(os.environ[SAMPLES_SETTING])] if os.environ.get(SAMPLES_SETTING) else []
    places.append(ROOT.parent / "shared" / "sds-samples")
    origin = subprocess.run(
        ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    origin = origin.removeprefix("file://")
    if origin and "://" not in origin and Path(origin).is_dir():
        places.append(Path(origin).resolve().parent / "shared" / "sds-samples")
    return places


SAMPLE_PLACES = _sample_places()
SDS_SAMPLES = next((p for p in SAMPLE_PLACES if p.is_dir()), SAMPLE_PLACES[0])


def pytest_configure(config: pytest.Config) -> None:
    if not SDS_SAMPLES.is_dir():
        looked = ", ".join(str(p) for p in SAMPLE_PLACES)
        raise pytest.UsageError(
            f"Microsoft's SDS sample CSVs are not found (looked in {looked}); "
            f"put them at ../shared/sds-samples or set {SAMPLES_SETTING}."
        )
