"""What Graph POSTs to the listener, validated with marshmallow into typed objects.

A body is a collection, ``{"value": [item, ...]}``; each item is checked on its own, so one bad
item is dropped and counted while the others go through. ``unknown`` is ``EXCLUDE`` everywhere:
Graph adds fields (``@odata.type``, ``encryptedContent``, ``resourceData`` details) freely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from common.state.dispatch import ObjectKind

#: Graph caps clientState at 255 characters; longer cannot be ours
MAX_CLIENT_STATE_LENGTH: Final = 255
MAX_ID_LENGTH: Final = 128
MAX_RESOURCE_LENGTH: Final = 512
MAX_EVENT_LENGTH: Final = 64

#: ``Users/{id}`` or ``Groups/{id}`` (Graph capitalises; other casings and a leading slash are
#: tolerated); directory object ids are GUIDs
_RESOURCE = re.compile(
    r"/?(?P<collection>users|groups)/(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12})",
    re.IGNORECASE,
)
_KINDS: Final[dict[str, ObjectKind]] = {"users": "user", "groups": "group"}
#: the subscription resource each kind of notification must come from
SUBSCRIPTION_RESOURCE: Final[dict[ObjectKind, str]] = {"user": "/users", "group": "/groups"}


class BodyError(Exception):
    """The body is not a notification collection (the listener answers 400)."""


class ItemError(Exception):
    """One item cannot be used; ``reason`` names why (a metrics label)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChangeNotification:
    """One checked change notification: which object of which tenant changed."""

    subscription_id: str
    client_state: str | None
    tenant_id: str
    kind: ObjectKind
    object_id: str
    change_type: str


@dataclass(frozen=True)
class LifecycleNotification:
    """One lifecycle event for a subscription."""

    subscription_id: str
    client_state: str | None
    tenant_id: str
    event: str


class _CollectionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    value = fields.List(fields.Raw(), required=True)


class _ItemSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    subscription_id = fields.Str(
        required=True, data_key="subscriptionId", validate=validate.Length(1, MAX_ID_LENGTH)
    )
    client_state = fields.Str(
        load_default=None,
        allow_none=True,
        data_key="clientState",
        validate=validate.Length(max=MAX_CLIENT_STATE_LENGTH),
    )
    tenant_id = fields.Str(
        load_default=None,
        allow_none=True,
        data_key="tenantId",
        validate=validate.Length(1, MAX_ID_LENGTH),
    )
    # real lifecycle payloads may carry organizationId instead of tenantId (DESIGN §4.4)
    organization_id = fields.Str(
        load_default=None,
        allow_none=True,
        data_key="organizationId",
        validate=validate.Length(1, MAX_ID_LENGTH),
    )

    @staticmethod
    def tenant_of(data: dict[str, Any]) -> str:
        tenant = data.get("tenant_id") or data.get("organization_id")
        if not tenant:
            raise ValidationError("tenantId or organizationId is required")
        return str(tenant)


class _ChangeSchema(_ItemSchema):
    change_type = fields.Str(
        required=True,
        data_key="changeType",
        validate=validate.OneOf(("created", "updated", "deleted")),
    )
    resource = fields.Str(required=True, validate=validate.Length(1, MAX_RESOURCE_LENGTH))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["tenant"] = self.tenant_of(data)
        return data


class _LifecycleSchema(_ItemSchema):
    lifecycle_event = fields.Str(
        required=True, data_key="lifecycleEvent", validate=validate.Length(1, MAX_EVENT_LENGTH)
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["tenant"] = self.tenant_of(data)
        return data


_COLLECTION = _CollectionSchema()
_CHANGE = _ChangeSchema()
_LIFECYCLE = _LifecycleSchema()


def load_collection(body: object) -> list[Any]:
    """The raw items of a notification collection; ``BodyError`` when it is not one."""
    if not isinstance(body, dict):
        raise BodyError("the body is not a JSON object")
    try:
        loaded = _COLLECTION.load(body)
    except ValidationError as exc:
        raise BodyError("the body has no list named value") from exc
    return list(loaded["value"])


def parse_resource(resource: str) -> tuple[ObjectKind, str]:
    """``Users/{id}`` -> ("user", id); ``ItemError("unsupported_resource")`` otherwise."""
    match = _RESOURCE.fullmatch(resource)
    if match is None:
        raise ItemError("unsupported_resource")
    return _KINDS[match["collection"].lower()], match["id"]


def load_change(item: object) -> ChangeNotification:
    """One change notification, or ``ItemError`` naming why it cannot be used."""
    if not isinstance(item, dict):
        raise ItemError("malformed")
    try:
        data = _CHANGE.load(item)
    except ValidationError:
        raise ItemError("malformed") from None
    kind, object_id = parse_resource(data["resource"])
    return ChangeNotification(
        subscription_id=data["subscription_id"],
        client_state=data["client_state"],
        tenant_id=data["tenant"],
        kind=kind,
        object_id=object_id,
        change_type=data["change_type"],
    )


def load_lifecycle(item: object) -> LifecycleNotification:
    """One lifecycle notification, or ``ItemError`` naming why it cannot be used."""
    if not isinstance(item, dict):
        raise ItemError("malformed")
    try:
        data = _LIFECYCLE.load(item)
    except ValidationError:
        raise ItemError("malformed") from None
    return LifecycleNotification(
        subscription_id=data["subscription_id"],
        client_state=data["client_state"],
        tenant_id=data["tenant"],
        event=data["lifecycle_event"],
    )
