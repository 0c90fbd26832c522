"""Subscriptions with Graph's checks, the validation handshake, and notifications shaped as
Graph sends them, for every kind of change."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.graph.notifications import BATCH_WINDOW_SECONDS
from tests.fixtures.graph import GraphSandbox, SandboxTenant
from tests.fixtures.processes import wait_until
from tests.sandbox.graph.webhook import Receiver

CLIENT_STATE = "secret-client-state-for-tests"
#: "nothing more arrives" needs time to pass: a few of the sandbox's batch windows, well past
#: the moment an item queued with the change would have been posted
NOTHING_MORE_SECONDS = 3 * BATCH_WINDOW_SECONDS
ITEM_KEYS = {
    "subscriptionId",
    "subscriptionExpirationDateTime",
    "changeType",
    "resource",
    "resourceData",
    "clientState",
    "tenantId",
}


def _expiry(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _subscribe(tenant: SandboxTenant, receiver: Receiver, resource: str, **extra: Any):
    body = {
        "changeType": "updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "resource": resource,
        "expirationDateTime": _expiry(60),
        "clientState": CLIENT_STATE,
        **extra,
    }
    return tenant.graph.post("/subscriptions", json=body)


def test_creation_runs_the_validation_handshake_then_answers_201(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    response = _subscribe(graph_tenant, receiver, "/users")
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["resource"] == "/users"
    assert sub["changeType"] == "updated,deleted"
    assert sub["notificationUrl"] == f"{receiver.url}/notify"
    assert sub["clientState"] == CLIENT_STATE
    assert receiver.validations and receiver.validations[0][0] == "/notify"
    assert receiver.validations[0][1].startswith("Validation: ")  # decoded, spaces and all
    listed = graph_tenant.graph.get("/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [sub["id"]]


@pytest.mark.parametrize(
    ("change", "resource", "expiry", "url"),
    [
        ("created", "/users", 60, None),
        ("updated", "/education/classes", 60, None),
        ("updated", "/groups", 41_770, None),
        ("updated", "/groups", -5, None),
        ("updated", "/users", 60, "http://example.com/notify"),
    ],
    ids=["created-on-users", "education-classes", "too-far", "in-the-past", "http-not-loopback"],
)
def test_subscriptions_graph_refuses_are_refused(  # noqa: PLR0917 (parametrized)
    graph_tenant: SandboxTenant,
    receiver: Receiver,
    change: str,
    resource: str,
    expiry: float,
    url: str | None,
) -> None:
    response = _subscribe(
        graph_tenant,
        receiver,
        resource,
        changeType=change,
        expirationDateTime=_expiry(expiry),
        notificationUrl=url or f"{receiver.url}/notify",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"


def test_almost_29_days_is_allowed(graph_tenant: SandboxTenant, receiver: Receiver) -> None:
    response = _subscribe(graph_tenant, receiver, "/groups", expirationDateTime=_expiry(41_700))
    assert response.status_code == 201


def test_an_endpoint_that_fails_the_handshake_gets_no_subscription(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    receiver.answer_validation = False
    response = _subscribe(graph_tenant, receiver, "/users")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"
    assert graph_tenant.graph.get("/subscriptions").json()["value"] == []


def test_lifecycle_url_is_validated_too(graph_tenant: SandboxTenant, receiver: Receiver) -> None:
    response = _subscribe(
        graph_tenant, receiver, "/users", lifecycleNotificationUrl=f"{receiver.url}/lifecycle"
    )
    assert response.status_code == 201
    assert {path for path, _ in receiver.validations} == {"/notify", "/lifecycle"}


def _check_item(
    item: dict[str, Any],
    *,
    sub: dict[str, Any],
    tenant: SandboxTenant,
    kind: str,
    obj_id: str,
    change: str,
) -> None:
    assert set(item) == ITEM_KEYS
    resource = f"{kind}s/{obj_id}"
    assert item == {
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": sub["expirationDateTime"],
        "changeType": change,
        "resource": resource,
        "resourceData": {
            "@odata.type": f"#Microsoft.Graph.{kind}",
            "@odata.id": resource,
            "id": obj_id,
            "organizationId": tenant.id,
        },
        "clientState": CLIENT_STATE,
        "tenantId": tenant.id,
    }


def _next_items(receiver: Receiver, seen: int, count: int) -> list[dict[str, Any]]:
    receiver.wait_for(lambda: len(receiver.items()) >= seen + count)
    time.sleep(NOTHING_MORE_SECONDS)
    items = receiver.items()[seen:]
    assert len(items) == count, items
    return items


@pytest.mark.slow
def test_every_kind_of_change_notifies_as_graph_does(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    graph = graph_tenant.graph
    users_sub = _subscribe(graph_tenant, receiver, "/users").json()
    groups_sub = _subscribe(graph_tenant, receiver, "/groups").json()

    student = graph.create_student("Selma", "Åkesson", school_id="S1")
    klass: dict[str, Any] = {}

    def about_student(item: dict[str, Any], change: str) -> None:
        _check_item(
            item,
            sub=users_sub,
            tenant=graph_tenant,
            kind="User",
            obj_id=student["id"],
            change=change,
        )

    def about_class(item: dict[str, Any], change: str) -> None:
        _check_item(
            item,
            sub=groups_sub,
            tenant=graph_tenant,
            kind="Group",
            obj_id=klass["id"],
            change=change,
        )

    (item,) = _next_items(receiver, 0, 1)
    about_student(item, "updated")

    graph.rename_user(student["id"], "Selma", "Björk")
    (item,) = _next_items(receiver, 1, 1)
    about_student(item, "updated")

    klass.update(graph.create_class("3A", school_id="S1"))
    (item,) = _next_items(receiver, 2, 1)
    about_class(item, "updated")

    graph.add_member(klass["id"], student["id"])  # a membership change notifies the group
    (item,) = _next_items(receiver, 3, 1)
    about_class(item, "updated")

    graph.remove_member(klass["id"], student["id"])
    (item,) = _next_items(receiver, 4, 1)
    about_class(item, "updated")

    graph.delete_user(student["id"])  # soft delete arrives as updated
    (item,) = _next_items(receiver, 5, 1)
    about_student(item, "updated")

    graph.restore(student["id"])
    (item,) = _next_items(receiver, 6, 1)
    about_student(item, "updated")

    graph.delete_user(student["id"])
    graph.purge(student["id"])  # only a purge is deleted
    first, second = _next_items(receiver, 7, 2)
    about_student(first, "updated")
    about_student(second, "deleted")

    graph.delete_group(klass["id"])
    graph.purge(klass["id"])
    first, second = _next_items(receiver, 9, 2)
    about_class(first, "updated")
    about_class(second, "deleted")
    assert all(d.content_type.startswith("application/json") for d in receiver.deliveries)


def test_changes_close_together_arrive_in_one_post(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    _subscribe(graph_tenant, receiver, "/users")
    staff = graph_tenant.graph.create_staff("Tove", "Lundgren")
    graph_tenant.graph.rename_user(staff["id"], "Tove", "Sundström")
    receiver.wait_for(lambda: len(receiver.items()) >= 2)
    assert len(receiver.deliveries) == 1
    assert len(receiver.deliveries[0].body["value"]) == 2


def test_a_subscription_on_one_user_hears_only_that_user(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    watched = graph_tenant.graph.create_staff("Hedda", "Ek")
    other = graph_tenant.graph.create_staff("Hedda", "Ask")
    _subscribe(graph_tenant, receiver, f"users/{watched['id']}")
    graph_tenant.graph.rename_user(other["id"], "Hedda", "Asp")
    graph_tenant.graph.rename_user(watched["id"], "Hedda", "Eke")
    receiver.wait_for(lambda: len(receiver.items()) >= 1)
    time.sleep(NOTHING_MORE_SECONDS)
    assert [i["resourceData"]["id"] for i in receiver.items()] == [watched["id"]]


def test_a_failing_endpoint_gets_the_same_notifications_again(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    _subscribe(graph_tenant, receiver, "/users")
    receiver.failures_before_success = 1
    staff = graph_tenant.graph.create_staff("Viggo", "Ström")
    receiver.wait_for(lambda: len(receiver.items()) >= 1, timeout=15)
    assert receiver.items()[0]["resourceData"]["id"] == staff["id"]

    def outcomes() -> dict[str, int]:
        return graph_sandbox.counters()["tenants"][graph_tenant.id]["notifications"]

    # the sandbox counts a delivery once it has read the 202, a moment after the receiver saw it
    wait_until(lambda: outcomes()["delivered"] == 1, timeout=10, what="the delivery counted")
    assert outcomes()["failed_attempts"] >= 1


def test_renew_list_and_delete(graph_tenant: SandboxTenant, receiver: Receiver) -> None:
    sub = _subscribe(graph_tenant, receiver, "/groups").json()
    later = _expiry(40_000)
    renewed = graph_tenant.graph.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": later}
    )
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"][:16] == later[:16]
    too_far = graph_tenant.graph.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": _expiry(50_000)}
    )
    assert too_far.status_code == 400
    assert graph_tenant.graph.delete(f"/subscriptions/{sub['id']}").status_code == 204
    gone = graph_tenant.graph.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": later}
    )
    assert gone.status_code == 404


@pytest.mark.slow
def test_an_expired_subscription_disappears_and_hears_nothing(
    graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    sub = _subscribe(graph_tenant, receiver, "/users", expirationDateTime=_expiry(1.5 / 60))
    assert sub.status_code == 201
    wait_until(
        lambda: graph_tenant.graph.get(f"/subscriptions/{sub.json()['id']}").status_code == 404,
        timeout=10,
        what="the subscription expired",
    )
    graph_tenant.graph.create_staff("Östen", "Sent")
    time.sleep(NOTHING_MORE_SECONDS)
    assert receiver.items() == []


def test_reauthorization_required_reaches_the_lifecycle_url(
    graph_sandbox: GraphSandbox, graph_tenant: SandboxTenant, receiver: Receiver
) -> None:
    sub = _subscribe(
        graph_tenant, receiver, "/users", lifecycleNotificationUrl=f"{receiver.url}/lifecycle"
    ).json()
    answer = graph_sandbox.admin(
        "POST", f"/tenants/{graph_tenant.id}/reauthorization-required"
    ).json()
    assert answer == {"sent": 1}
    receiver.wait_for(lambda: len(receiver.items("/lifecycle")) == 1)
    assert receiver.items("/lifecycle") == [
        {
            "subscriptionId": sub["id"],
            "subscriptionExpirationDateTime": sub["expirationDateTime"],
            "tenantId": graph_tenant.id,
            "clientState": CLIENT_STATE,
            "lifecycleEvent": "reauthorizationRequired",
        }
    ]
    assert receiver.items() == []
