"""A second, short-lived sandbox for the tests that need tokens to expire within seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from tests.fixtures.graph import GraphSandbox, start_graph_sandbox
from tests.sandbox.graph.webhook import Receiver, webhook_receiver

#: access tokens and delta tokens of the short-lived sandbox expire after these many seconds
SHORT_TOKEN_LIFETIME_SECONDS = 1
SHORT_DELTA_TOKEN_MAX_AGE_SECONDS = 1


@pytest.fixture(scope="session")
def short_lived_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphSandbox]:
    sandbox = start_graph_sandbox(
        tmp_path_factory.mktemp("sandbox-graph-short"),
        "--token-lifetime",
        str(SHORT_TOKEN_LIFETIME_SECONDS),
        "--delta-token-max-age",
        str(SHORT_DELTA_TOKEN_MAX_AGE_SECONDS),
    )
    yield sandbox
    sandbox.stop()


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Receiver:
    """A webhook receiver for the sandbox's notifications, on a loopback port."""
    return webhook_receiver(httpserver)
