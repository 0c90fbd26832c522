"""The portal URL policy holds when a token is sent, not only when a URL is registered."""

from __future__ import annotations

import pytest

from common.config import Secret
from common.portal.urls import PortalUrlRefused
from common.state.registry import PortalEnvironment, Tenant
from common.sync import engine
from tests.fixtures.engine import SyncWorld


@pytest.mark.slow
def test_a_url_stored_before_the_policy_never_gets_the_token(make_world) -> None:
    world: SyncWorld = make_world(sample="classic-min")
    world.services.registry.save(
        Tenant(
            id=world.tenant_id,
            name="Gammal skola",
            portals={"test": PortalEnvironment("http://169.254.169.254/scim", Secret("tok"))},
        )
    )
    with pytest.raises(PortalUrlRefused, match="cloud metadata service"):
        engine.preview(world.services, world.tenant_id)
    result = world.cli("reconcile", world.tenant_id)
    assert result.returncode == 1
    assert "The URL of the test portal of Gammal skola" in result.stderr
    assert "Traceback" not in result.stderr
