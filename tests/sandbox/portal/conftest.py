"""A reference portal with sign-in with Microsoft switched on, against the session's sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.graph import GraphSandbox
from tests.fixtures.portal import PortalServer


@pytest.fixture(scope="session")
def signin_portal(
    graph_sandbox: GraphSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortalServer]:
    """``skolsynk sandbox portal --microsoft sandbox.json`` (the sandbox's ``portal`` app)."""
    server = PortalServer(tmp_path_factory.mktemp("portal-signin"))
    server.start("--microsoft", str(graph_sandbox.data_dir / "sandbox.json"))
    yield server
    server.close()
