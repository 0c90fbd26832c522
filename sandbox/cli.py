"""``skolsynk sandbox graph|portal``: the stand-ins for Microsoft 365 and the portal."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``skolsynk sandbox ...`` to the command line."""
    from sandbox.graph.cli import register as register_graph
    from sandbox.portal.cli import register as register_portal

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run a simulated Microsoft 365 school tenant or the reference portal",
        description="Stand-ins that run everything on one machine (tests, benchmarks, demo).",
    )
    kinds = parser.add_subparsers(dest="sandbox_kind", metavar="KIND", required=True)
    register_graph(kinds)
    register_portal(kinds)
