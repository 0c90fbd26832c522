"""``/subscriptions`` with Graph's rules, and the change notifications they produce.

Users and groups accept only ``changeType`` ``updated``, ``deleted`` or both; the expiry may be
at most 41,760 minutes ahead; notification and lifecycle URLs must be ``https`` (``http`` only
on a loopback address, so that local runs work) and pass the ``validationToken`` handshake
within 10 s at creation. Expired subscriptions disappear. Every change to a user or group
(membership included: it notifies the group) becomes one item per matching subscription:
creation and soft deletion arrive as ``updated``, a purge as ``deleted``.

Failure policy: a refused subscription answers 400 (``InvalidRequest`` or, for a failed
handshake, ``ValidationError``); an unknown id 404 ``ResourceNotFound``. Notification delivery
never raises into the change that caused it.
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sandbox.graph.calls import GraphCall, Reply, collection
from sandbox.graph.errors import GraphError
from sandbox.graph.store import GROUP, USER, Tenant

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry

MAX_EXPIRY_MINUTES = 41_760
MAX_EXPIRY = timedelta(minutes=MAX_EXPIRY_MINUTES)
MAX_CLIENT_STATE_LENGTH = 255
ALLOWED_CHANGE_TYPES = frozenset({"updated", "deleted"})
KNOWN_CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
RESOURCE = re.compile(r"^/?(users|groups)(?:/([^/?]+))?$", re.IGNORECASE)
NOTIFICATION_RESOURCE = {USER: "Users", GROUP: "Groups"}
NOTIFICATION_TYPE = {USER: "#Microsoft.Graph.User", GROUP: "#Microsoft.Graph.Group"}
UPDATABLE = frozenset({"expirationDateTime", "notificationUrl", "lifecycleNotificationUrl"})


@dataclass(slots=True)
class Subscription:
    id: str
    resource: str
    kind: str
    object_id: str | None
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    expires: datetime
    client_state: str | None
    application_id: str
    creator_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expires),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def graph_time(moment: datetime) -> str:
    """A timestamp as subscriptions carry it: seven fraction digits and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _invalid(message: str) -> GraphError:
    return GraphError(400, "InvalidRequest", message)


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _invalid("expirationDateTime is a required property for subscription creation.")
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _invalid(f"The value '{value}' is not a valid expirationDateTime.") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _check_expiry(moment: datetime) -> None:
    now = datetime.now(UTC)
    if moment <= now or moment - now > MAX_EXPIRY:
        raise _invalid(
            f"Subscription expiration can only be {MAX_EXPIRY_MINUTES} minutes in the future."
        )


def _check_url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{name} is a required property for subscription creation.")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if ipaddress.ip_address(host).is_loopback:
                return value
        except ValueError:
            if host == "localhost":
                return value
    raise _invalid(f"Invalid {name} '{value}': the URL must use https.")


def _live(tenant: Tenant) -> dict[str, Subscription]:
    """The tenant's subscriptions, after removing the expired ones."""
    now = datetime.now(UTC)
    with tenant.lock:
        for sub_id in [s.id for s in tenant.subscriptions.values() if s.expires <= now]:
            del tenant.subscriptions[sub_id]
        return dict(tenant.subscriptions)


def _find(call: GraphCall, sub_id: str) -> Subscription:
    sub = _live(call.tenant).get(sub_id)
    if sub is None:
        raise GraphError(404, "ResourceNotFound", "The object was not found.")
    return sub


def create(call: GraphCall) -> Reply:
    body = call.json()
    for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
        if body.get(name) in (None, ""):
            raise _invalid(f"{name} is a required property for subscription creation.")
    resource = str(body["resource"])
    match = RESOURCE.match(resource)
    if match is None:
        raise _invalid(f"Resource '{resource}' is not supported for subscriptions.")
    kind = USER if match.group(1).lower() == "users" else GROUP
    object_id = match.group(2)
    if object_id is not None and call.tenant.find(kind, object_id) is None:
        raise GraphError(404, "ResourceNotFound", f"Resource '{object_id}' was not found.")
    change_types = tuple(part.strip() for part in str(body["changeType"]).split(","))
    for change in change_types:
        if change not in ALLOWED_CHANGE_TYPES:
            raise _invalid(f"Invalid 'changeType' attribute: '{change}'.")
    expires = _parse_time(body["expirationDateTime"])
    _check_expiry(expires)
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE_LENGTH
    ):
        raise _invalid(
            f"clientState must be a string of at most {MAX_CLIENT_STATE_LENGTH} characters."
        )
    url = _check_url(body["notificationUrl"], "notificationUrl")
    lifecycle = body.get("lifecycleNotificationUrl")
    if lifecycle is not None:
        lifecycle = _check_url(lifecycle, "lifecycleNotificationUrl")
    for target in (url, lifecycle):
        if target is not None and (problem := call.registry.notifier.validate(target)):
            raise GraphError(400, "ValidationError", problem)
    app_id = call.registry.trust.app.client_id
    sub = Subscription(
        id=str(uuid.uuid4()),
        resource=resource,
        kind=kind,
        object_id=object_id,
        change_types=tuple(dict.fromkeys(change_types)),
        notification_url=url,
        lifecycle_url=lifecycle,
        expires=expires,
        client_state=client_state,
        application_id=app_id,
        creator_id=str(uuid.uuid5(uuid.UUID(call.tenant.id), app_id)),
    )
    with call.tenant.lock:
        call.tenant.subscriptions[sub.id] = sub
    body_out = {"@odata.context": f"{call.base_url}/$metadata#subscriptions/$entity"}
    body_out.update(sub.as_json())
    # OData 4.01 (Protocol, 11.4.2 Create an Entity): the Location of the created entity
    return Reply(201, body_out, {"Location": f"{call.base_url}/subscriptions/{sub.id}"})


def list_all(call: GraphCall) -> Reply:
    subs = sorted(_live(call.tenant).values(), key=lambda s: s.id)
    return collection(f"{call.base_url}/$metadata#subscriptions", [s.as_json() for s in subs])


def get(call: GraphCall, key: str) -> Reply:
    body = {"@odata.context": f"{call.base_url}/$metadata#subscriptions/$entity"}
    body.update(_find(call, key).as_json())
    return Reply(200, body)


def update(call: GraphCall, key: str) -> Reply:
    body = call.json()
    sub = _find(call, key)
    unknown = set(body) - UPDATABLE
    if unknown:
        raise _invalid(f"Property '{sorted(unknown)[0]}' of a subscription cannot be updated.")
    expires = sub.expires
    if "expirationDateTime" in body:
        expires = _parse_time(body["expirationDateTime"])
        _check_expiry(expires)
    urls = {}
    for name in ("notificationUrl", "lifecycleNotificationUrl"):
        if body.get(name) is not None:
            urls[name] = _check_url(body[name], name)
            if problem := call.registry.notifier.validate(urls[name]):
                raise GraphError(400, "ValidationError", problem)
    with call.tenant.lock:
        sub.expires = expires
        sub.notification_url = urls.get("notificationUrl", sub.notification_url)
        sub.lifecycle_url = urls.get("lifecycleNotificationUrl", sub.lifecycle_url)
    out = {"@odata.context": f"{call.base_url}/$metadata#subscriptions/$entity"}
    out.update(sub.as_json())
    return Reply(200, out)


def delete(call: GraphCall, key: str) -> Reply:
    _find(call, key)
    with call.tenant.lock:
        call.tenant.subscriptions.pop(key, None)
    return Reply(204)


def reauthorize(call: GraphCall, key: str) -> Reply:
    _find(call, key)
    return Reply(204)


# --- producing notifications ---------------------------------------------------------------------


def on_change(registry: Registry, tenant: Tenant, kind: str, obj_id: str, change: str) -> None:
    """Queue a notification for every subscription that watches this change."""
    subs = _live(tenant)
    if not subs:
        return
    drop_share = registry.knobs.effective(tenant.knobs)["drop_notification_share"]
    resource = f"{NOTIFICATION_RESOURCE[kind]}/{obj_id}"
    for sub in subs.values():
        if sub.kind != kind or change not in sub.change_types:
            continue
        if sub.object_id is not None and sub.object_id != obj_id:
            continue
        if drop_share and random.random() < drop_share:
            registry.counters.notification(tenant.id, "dropped")
            continue
        item: dict[str, Any] = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_time(sub.expires),
            "changeType": change,
            "resource": resource,
            "resourceData": {
                "@odata.type": NOTIFICATION_TYPE[kind],
                "@odata.id": resource,
                "id": obj_id,
                "organizationId": tenant.id,
            },
            "clientState": sub.client_state,
            "tenantId": tenant.id,
        }
        if sub.client_state is None:
            del item["clientState"]
        registry.notifier.enqueue(sub.notification_url, item, tenant_id=tenant.id, kind="change")


def send_lifecycle(registry: Registry, tenant: Tenant, event: str) -> int:
    """Send ``event`` to the lifecycle URL of every subscription that has one; how many."""
    sent = 0
    for sub in _live(tenant).values():
        if sub.lifecycle_url is None:
            continue
        item: dict[str, Any] = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_time(sub.expires),
            "tenantId": tenant.id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        registry.notifier.enqueue(sub.lifecycle_url, item, tenant_id=tenant.id, kind="lifecycle")
        sent += 1
    return sent
