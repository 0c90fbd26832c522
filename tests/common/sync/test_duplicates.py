"""Portal objects sharing an ``externalId`` are duplicates the sync repairs (never ignores):
made here by hand through the reference portal's SCIM API, as any other client could."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from common.sync import engine
from tests.fixtures.engine import SyncWorld


def make_copies(world: SyncWorld) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A second portal user and a second group carrying the ids of synced ones; returns the
    synced user, the synced group and the portal ids of the two copies."""
    group = next(g for g in world.portal.groups() if g["managed"] and g["members"])
    users = {u["id"]: u for u in world.portal.users()}
    user = users[sorted(group["members"])[0]]
    scim = world.portal.scim
    copy = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "kopia." + user["userName"],
            "externalId": user["externalId"],
            "name": {"givenName": "Kopia", "familyName": "Kopia"},
            "active": True,
        },
    )
    assert copy.status_code == 201, copy.text
    twin = scim.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": group["displayName"],
            "externalId": group["externalId"],
            "members": [{"value": copy.json()["id"]}],
        },
    )
    assert twin.status_code == 201, twin.text
    # the copy is also put into the synced class, where it does not belong
    added = scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": copy.json()["id"]}]}
            ],
        },
    )
    assert added.status_code in (200, 204), added.text
    return user, group, copy.json()["id"], twin.json()["id"]


@pytest.mark.slow  # four command-line runs
def test_duplicates_made_by_hand_are_reported_held_and_removed_once_approved(make_world) -> None:
    world: SyncWorld = make_world(sample="classic-25")
    assert world.reconcile().outcome == "ok"
    user, group, copy, twin = make_copies(world)
    licence = world.portal.assign_licence("Matte 7", user_id=user["id"])
    class_licence = world.portal.assign_licence("Svenska 7", group_id=group["id"])

    shown = world.cli("preview", world.tenant_id, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    duplicates = json.loads(shown.stdout)["duplicates"]
    assert sorted((d["kind"], d["kept_portal_id"]) for d in duplicates) == sorted(
        [("group", group["id"]), ("user", user["id"])]
    )
    assert [len(d["duplicate_portal_ids"]) for d in duplicates] == [1, 1]
    text = world.cli("preview", world.tenant_id)
    assert "DUPLICATES (2)" in text.stdout and copy in text.stdout
    rows = list(
        csv.reader(io.StringIO(world.cli("preview", world.tenant_id, "--format", "csv").stdout))
    )
    assert sorted(r[1] for r in rows if r[0] == "duplicate") == ["group", "user"]

    report = world.reconcile()

    # the copies wait for a person; the kept class loses the copy it should not hold
    assert (report.outcome, report.held, report.duplicates) == ("held", 2, 2)
    assert report.applied == {"remove_members": 1}
    held = world.services.safety.held(world.tenant_id)
    assert sorted(h.action.portal_id for h in held) == sorted([copy, twin])
    kept = next(g for g in world.portal.groups() if g["id"] == group["id"])
    assert copy not in kept["members"] and user["id"] in kept["members"]
    assert len(world.portal.users()) == 25  # nothing deleted yet
    status = world.cli("status", world.tenant_id, "--format", "json")
    assert json.loads(status.stdout)["last_reconcile"]["duplicates"] == 2

    taken, approval = engine.approve_held(world.services, world.tenant_id)

    assert len(taken) == 2 and approval.applied == {
        "delete_duplicate_user": 1,
        "delete_duplicate_group": 1,
    }
    ids = {u["id"] for u in world.portal.users()}
    assert copy not in ids and user["id"] in ids
    assert [g["id"] for g in world.portal.groups() if g["externalId"] == group["externalId"]] == [
        group["id"]
    ]
    licences = {lic["id"]: lic for lic in world.portal.licences()}
    assert licences[licence["id"]] == licence and licences[class_licence["id"]] == class_licence
    again = world.reconcile()
    assert (again.written, again.duplicates, again.held) == (0, 0, 0)
