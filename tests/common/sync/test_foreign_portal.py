"""The second line of defence against two tenants on one portal organisation: a plan that
would remove most of the portal while creating most of Microsoft 365 anew is held whole."""

from __future__ import annotations

import json

import pytest

from common.config import Secret
from common.state.registry import PortalEnvironment, Tenant
from common.sync import engine
from tests.fixtures.engine import SyncWorld


@pytest.mark.slow
def test_a_portal_holding_another_tenants_school_is_not_touched(make_world) -> None:
    first: SyncWorld = make_world(sample="classic-min")
    assert first.reconcile().outcome == "ok"
    before = first.portal.snapshot()
    second: SyncWorld = make_world(sample="classic-25")
    # registered before the one-portal-per-tenant rule, or by hand in Redis: the guard is all
    # that stands between the second school and the first school's licences
    second.services.registry.save(
        Tenant(
            id=second.tenant_id,
            name="Fel skola",
            portals={"test": PortalEnvironment(first.portal.scim_url, Secret(first.portal.token))},
        )
    )

    view = engine.preview(second.services, second.tenant_id)
    assert view.foreign is not None
    text = second.cli("preview", second.tenant_id)
    assert "The whole run would be HELD: the plan would remove 26 of the 26" in text.stdout
    data = json.loads(second.cli("preview", second.tenant_id, "--format", "json").stdout)
    assert "another tenant" in data["held_whole_because"]
    # what the operator reads: the reason, and no word of the portal matching
    said = second.cli("reconcile", second.tenant_id)
    assert said.returncode == 0, said.stderr
    assert "Held whole, nothing was written" in said.stdout
    assert "Nothing to change" not in said.stdout
    assert "applied 0" in said.stdout or "Planned" not in said.stdout
    assert first.portal.snapshot() == before
    report = second.reconcile()

    assert report.outcome == "held"
    assert "most likely belongs to another tenant" in report.message
    assert report.message.startswith("Held whole, nothing was written: the plan would remove")
    assert "remove 26 of the 26 objects" in report.message
    assert report.written == 0
    assert first.portal.snapshot() == before
    # nothing was put up for approval either: approving would delete the first school
    assert second.services.safety.held(second.tenant_id) == []


def test_a_small_first_sync_beside_a_few_stray_objects_goes_ahead(make_world) -> None:
    world: SyncWorld = make_world(sample="classic-min")
    world.portal.create_user("larare.test@example.org", given_name="Test", family_name="Lärare")
    report = world.reconcile()
    assert report.outcome == "ok"
    assert report.applied["create_user"] == 24
