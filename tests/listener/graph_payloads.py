"""Notification bodies shaped like Microsoft Graph's, for the listener tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TENANT = "6c1f8a3e-2b7d-4e59-9a10-3f5c2d8e7b41"
OTHER_TENANT = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
USER_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
GROUP_ID = "9d1c7a52-8b4e-4f6a-b3d2-7e5f1a0c9b84"


@dataclass(frozen=True)
class Sub:
    """A subscription the tests registered: its id, tenant, resource and clientState."""

    id: str
    tenant_id: str
    resource: str
    client_state: str


def change(
    sub: Sub,
    object_id: str,
    *,
    resource: str | None = None,
    client_state: str | None = None,
    tenant_id: str | None = None,
    change_type: str = "updated",
) -> dict[str, Any]:
    """One change notification item as Graph sends it for a user or group."""
    collection = "Users" if sub.resource == "/users" else "Groups"
    odata_type = "#Microsoft.Graph.User" if collection == "Users" else "#Microsoft.Graph.Group"
    tenant = tenant_id if tenant_id is not None else sub.tenant_id
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": "2026-12-20T10:00:00.0000000+00:00",
        "changeType": change_type,
        "resource": resource if resource is not None else f"{collection}/{object_id}",
        "resourceData": {
            "@odata.type": odata_type,
            "@odata.id": f"{collection}/{object_id}",
            "id": object_id,
            "organizationId": tenant,
        },
        "clientState": client_state if client_state is not None else sub.client_state,
        "tenantId": tenant,
    }


def lifecycle(
    sub: Sub,
    event: str = "reauthorizationRequired",
    *,
    client_state: str | None = None,
    tenant_key: str = "tenantId",
) -> dict[str, Any]:
    """One lifecycle notification item; real ones may name the tenant ``organizationId``."""
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": "2026-12-20T10:00:00.0000000+00:00",
        tenant_key: sub.tenant_id,
        "clientState": client_state if client_state is not None else sub.client_state,
        "lifecycleEvent": event,
    }


def collection(*items: dict[str, Any]) -> dict[str, Any]:
    return {"value": list(items)}
