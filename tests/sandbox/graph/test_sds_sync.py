"""Each of Microsoft's SDS sample sets, loaded into the sandbox, reaches the reference portal in
one full sync with the counts computed from its files; a second sync writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SDS_SAMPLES
from tests.fixtures.engine import SyncWorld, environment, registered_services, reset_and_close
from tests.fixtures.graph import sample_format
from tests.sandbox.graph.sds_samples import SAMPLE_FOLDERS, expected_counts


@pytest.fixture
def sample_world(graph_sandbox: Any, portal_server: Any, redis_url: str) -> Iterator[Any]:
    """``sample_world(name)``: the sample folder ``name`` in a new tenant, synced to a new
    portal organisation."""
    worlds: list[SyncWorld] = []

    def build(name: str) -> SyncWorld:
        microsoft = graph_sandbox.new_tenant(load=[(sample_format(name), SDS_SAMPLES / name)])
        portal = portal_server.new_organisation()
        env = environment(graph_sandbox.info, redis_url)
        services = registered_services(env, microsoft, portal, name=f"Skola {microsoft.name}")
        world = SyncWorld(services, microsoft, portal, env, graph_sandbox, portal_server)
        worlds.append(world)
        return world

    yield build
    reset_and_close(graph_sandbox, portal_server, worlds)


@pytest.mark.parametrize("name", SAMPLE_FOLDERS)
def test_a_full_sync_of_each_sample_set_reaches_the_portal_with_the_counts_of_its_files(
    sample_world: Any, name: str
) -> None:
    expected = expected_counts(name)
    world = sample_world(name)

    first = world.reconcile()

    assert first.outcome == "ok", first.message
    users, groups = world.portal.users(), world.portal.groups()
    assert len(users) == expected["students"] + expected["teachers"]
    assert len(groups) == expected["classes"]
    assert sum(len(g["members"]) for g in groups) == expected["enrollments"]
    assert world.reconcile().written == 0
