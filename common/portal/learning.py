"""What this process learnt of each SCIM server: its capabilities, the mapping used there, the
filter forms it takes and the attributes it refused, shared by every client of that server.

Owns ``LearningWire`` (``ScimWire`` plus discovery, cached for ``CAPABILITIES_TTL_SECONDS`` and
read again when a write is refused for a schema reason) and ``forget_servers``.

Failure policy: a discovery endpoint that is missing or not JSON counts as absent (see
``common.portal.discovery``); 401/403 raise ``PortalAuthError``; an override that does not fit
the server raises ``NeedsAttention`` with a sentence.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.config import Secret
from common.errors import NeedsAttention, PortalRequestError
from common.http import Transport
from common.portal.discovery import Capabilities, discover
from common.portal.filters import FilterForms
from common.portal.mapping import AttributeMapping, build_mapping
from common.portal.wire import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ScimWire

#: how long this process trusts what it learnt of a server (capabilities, filter forms)
CAPABILITIES_TTL_SECONDS = 600.0
#: SCIM error types a server answers when a request uses what it does not declare
SCHEMA_REFUSALS = frozenset({"invalidSyntax", "invalidPath", "invalidValue"})


@dataclass
class _Learnt:
    """What this process learnt of one server, shared by every ``ScimPortal`` of it."""

    capabilities: Capabilities
    mapping: AttributeMapping
    at: float
    forms: FilterForms = field(default_factory=FilterForms)
    #: (endpoint, model attribute) the server refused, not sent again
    refused: frozenset[tuple[str, str]] = frozenset()


_LEARNT: dict[tuple[str, str], _Learnt] = {}
_LEARNT_LOCK = threading.Lock()


def forget_servers() -> None:
    """Forget what this process learnt of every server (tests, and a changed mapping)."""
    with _LEARNT_LOCK:
        _LEARNT.clear()


class LearningWire(ScimWire):
    """``ScimWire`` that knows what its server supports (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        token: Secret | str,
        *,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(transport, base_url, token)
        self.overrides = dict(overrides or {})
        self._key = (self.base_url, json.dumps(self.overrides, sort_keys=True))

    def _learnt(self, *, refresh: bool = False) -> _Learnt:
        with _LEARNT_LOCK:
            learnt = _LEARNT.get(self._key)
        if (
            learnt is not None
            and not refresh
            and time.monotonic() - learnt.at < CAPABILITIES_TTL_SECONDS
        ):
            return learnt
        capabilities = discover(self._discovery_read)
        try:
            mapping = build_mapping(capabilities, self.overrides)
        except ValueError as exc:
            raise NeedsAttention(f"The attribute mapping of {self.base_url}: {exc}.") from exc
        fresh = _Learnt(capabilities, mapping, time.monotonic())
        if learnt is not None and learnt.capabilities == capabilities:
            # the same server: what was learnt from its refusals still holds
            fresh.forms, fresh.refused = learnt.forms, learnt.refused
        with _LEARNT_LOCK:
            _LEARNT[self._key] = fresh
        return fresh

    def _update_learnt(self, **changes: Any) -> None:
        learnt = self._learnt()
        with _LEARNT_LOCK:
            current = _LEARNT.get(self._key, learnt)
            for name, value in changes.items():
                setattr(current, name, value)

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """What the server declares (read once, cached for ``CAPABILITIES_TTL_SECONDS``)."""
        return self._learnt(refresh=refresh).capabilities

    def mapping(self) -> AttributeMapping:
        """Where each attribute goes on this server."""
        return self._learnt().mapping

    def filter_forms(self) -> FilterForms:
        return self._learnt().forms

    def page_size(self) -> int:
        """How many resources to ask for per page: the server's maximum, if it says one."""
        limit = self.capabilities().max_results
        return min(limit, MAX_PAGE_SIZE) if limit else DEFAULT_PAGE_SIZE

    def _schema_changed(self, exc: PortalRequestError) -> bool:
        """After a refusal for a schema reason: whether discovery now says something else."""
        if exc.status != 400 or exc.code not in SCHEMA_REFUSALS:
            return False
        before = self._learnt().capabilities
        return self._learnt(refresh=True).capabilities != before
