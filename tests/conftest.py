"""Fixtures shared by the whole suite; each area keeps its own in ``tests/fixtures/``."""

from __future__ import annotations

from pathlib import Path

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
SDS_SAMPLES = ROOT.parent / "shared" / "sds-samples"
