"""What a Graph handler receives and returns, so ``$batch`` can call handlers like HTTP does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.graph.errors import GraphError

if TYPE_CHECKING:
    from sandbox.graph.registry import Registry
    from sandbox.graph.store import Tenant

#: the OData protocol version Graph answers with (``OData-Version`` header)
ODATA_VERSION = "4.0"
JSON_UNREADABLE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
    "is of valid JSON format."
)


@dataclass
class GraphCall:
    """One Graph request, already authenticated to a tenant."""

    registry: Registry
    tenant: Tenant
    method: str
    path: str  # below the version, e.g. ``/users/{id}``
    args: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # e.g. ``https://127.0.0.1:PORT/v1.0``
    #: the signed-in person of a delegated token and its scopes (``None`` for app tokens)
    user_id: str | None = None
    scopes: frozenset[str] = frozenset()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; 400 as Graph answers it when it is not one."""
        try:
            value = json.loads(self.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphError(400, "BadRequest", JSON_UNREADABLE) from exc
        if not isinstance(value, dict):
            raise GraphError(400, "BadRequest", JSON_UNREADABLE)
        return value


@dataclass
class Reply:
    """A handler's answer: a JSON body (dict), no body (``None``) or text."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def collection(
    context: str, items: list[dict[str, Any]], next_link: str | None = None, **extra: Any
) -> Reply:
    body: dict[str, Any] = {"@odata.context": context}
    body.update(extra)
    if next_link:
        body["@odata.nextLink"] = next_link
    body["value"] = items
    return Reply(200, body)
