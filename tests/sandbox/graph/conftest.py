"""A second, short-lived sandbox for the tests that need tokens to expire within seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.graph import GraphSandbox, start_graph_sandbox

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
