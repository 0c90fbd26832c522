"""What Graph POSTs to the listener, checked into typed objects.

A body is a collection, ``{"value": [item, ...]}``; each item is checked on its own, so one bad
item is dropped and counted while the others go through. Fields we do not read are ignored:
Graph adds fields (``@odata.type``, ``encryptedContent``, ``resourceData`` details) freely.

The checks are written out here rather than as marshmallow schemas (STYLE 8), because they sit
on the listener's hot path and are few: a string of bounded length per field, one of three
change types, a resource that names a user or a group. The schemas they replace cost about
35 us of a notification's CPU (a tenth of what the listener's app spends on it); these cost
about 6 us. ``tests/listener/test_fuzz.py`` holds them to these rules with generated items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from common.state.dispatch import ObjectKind

#: Graph caps clientState at 255 characters; longer cannot be ours
MAX_CLIENT_STATE_LENGTH: Final = 255
MAX_ID_LENGTH: Final = 128
MAX_RESOURCE_LENGTH: Final = 512
MAX_EVENT_LENGTH: Final = 64
CHANGE_TYPES: Final = frozenset(("created", "updated", "deleted"))

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


def _text(item: dict[str, Any], key: str, longest: int, *, shortest: int = 1) -> str:
    """``item[key]``, a string of ``shortest`` to ``longest`` characters; else malformed."""
    value = item.get(key)
    if not isinstance(value, str) or not shortest <= len(value) <= longest:
        raise ItemError("malformed")
    return value


def _optional_text(
    item: dict[str, Any], key: str, longest: int, *, shortest: int = 1
) -> str | None:
    """``_text``, where a missing key and ``null`` both stand for no value."""
    if item.get(key) is None:
        return None
    return _text(item, key, longest, shortest=shortest)


def _common(item: dict[str, Any]) -> tuple[str, str | None, str]:
    """What every item carries: its subscription id, clientState and tenant (``tenantId``, or
    ``organizationId``, which real lifecycle payloads may carry instead, DESIGN §4.4)."""
    subscription_id = _text(item, "subscriptionId", MAX_ID_LENGTH)
    client_state = _optional_text(item, "clientState", MAX_CLIENT_STATE_LENGTH, shortest=0)
    tenant_id = _optional_text(item, "tenantId", MAX_ID_LENGTH)
    organization_id = _optional_text(item, "organizationId", MAX_ID_LENGTH)
    tenant = tenant_id or organization_id
    if tenant is None:
        raise ItemError("malformed")
    return subscription_id, client_state, tenant


def load_collection(body: object) -> list[Any]:
    """The raw items of a notification collection; ``BodyError`` when it is not one."""
    # ``value`` is there and is a list; whatever else the object holds is not ours to judge
    if not isinstance(body, dict):
        raise BodyError("the body is not a JSON object")
    items = body.get("value")
    if not isinstance(items, list):
        raise BodyError("the body has no list named value")
    return list(items)


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
    subscription_id, client_state, tenant = _common(item)
    change_type = item.get("changeType")
    if not isinstance(change_type, str) or change_type not in CHANGE_TYPES:
        raise ItemError("malformed")
    kind, object_id = parse_resource(_text(item, "resource", MAX_RESOURCE_LENGTH))
    return ChangeNotification(
        subscription_id=subscription_id,
        client_state=client_state,
        tenant_id=tenant,
        kind=kind,
        object_id=object_id,
        change_type=change_type,
    )


def load_lifecycle(item: object) -> LifecycleNotification:
    """One lifecycle notification, or ``ItemError`` naming why it cannot be used."""
    if not isinstance(item, dict):
        raise ItemError("malformed")
    subscription_id, client_state, tenant = _common(item)
    return LifecycleNotification(
        subscription_id=subscription_id,
        client_state=client_state,
        tenant_id=tenant,
        event=_text(item, "lifecycleEvent", MAX_EVENT_LENGTH),
    )
