"""What this process learnt of each SCIM server: its capabilities, the mapping used there, the
filter forms it takes and the attributes it refused, shared by every client of that server.

Owns ``LearningWire`` (``ScimWire`` plus discovery, cached for ``CAPABILITIES_TTL_SECONDS`` and
read again when a write is refused for a schema reason), ``forget_servers``, and the ``Memory``
seam through which what was learnt from refusals outlives the process (the services hand in one
kept in Redis), valid while the server declares the same and the mapping is the same.

Failure policy: a discovery endpoint that is missing or not JSON counts as absent (see
``common.portal.discovery``); 401/403 raise ``PortalAuthError``; an override that does not fit
the server raises ``NeedsAttention`` with a sentence.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

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


class Memory(Protocol):
    """Where what was learnt of a server is kept between processes (JSON-ready data)."""

    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, data: dict[str, Any]) -> None: ...


def _fingerprint(capabilities: Capabilities, overrides: str) -> str:
    return hashlib.sha256(f"{capabilities!r}|{overrides}".encode()).hexdigest()


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
        memory: Memory | None = None,
    ) -> None:
        super().__init__(transport, base_url, token)
        self.overrides = dict(overrides or {})
        self._key = (self.base_url, json.dumps(self.overrides, sort_keys=True))
        self._memory = memory

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
        else:
            self._recall(fresh)
        with _LEARNT_LOCK:
            _LEARNT[self._key] = fresh
        return fresh

    def _update_learnt(self, **changes: Any) -> None:
        learnt = self._learnt()
        with _LEARNT_LOCK:
            current = _LEARNT.get(self._key, learnt)
            for name, value in changes.items():
                setattr(current, name, value)
        if self._memory is not None:
            self._memory.save(
                self.base_url,
                {
                    "fingerprint": _fingerprint(current.capabilities, self._key[1]),
                    "forms": asdict(current.forms),
                    "refused": sorted(list(pair) for pair in current.refused),
                },
            )

    def _recall(self, fresh: _Learnt) -> None:
        """What an earlier process learnt of this server, if it still declares the same."""
        kept = self._memory.load(self.base_url) if self._memory is not None else None
        if not kept or kept.get("fingerprint") != _fingerprint(fresh.capabilities, self._key[1]):
            return
        try:
            fresh.forms = FilterForms(**kept.get("forms", {}))
            fresh.refused = frozenset((str(e), str(n)) for e, n in kept.get("refused", ()))
        except (TypeError, ValueError):
            return  # written by another version: learn again

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """What the server declares (read once, cached for ``CAPABILITIES_TTL_SECONDS``)."""
        return self._learnt(refresh=refresh).capabilities

    def mapping(self) -> AttributeMapping:
        """Where each attribute goes on this server; one it refused has no home any more (so the
        planner does not plan it again either)."""
        learnt = self._learnt()
        if not learnt.refused:
            return learnt.mapping
        mapping = learnt.mapping
        users = {k: None if ("Users", k) in learnt.refused else t for k, t in mapping.users.items()}
        groups = {
            k: None if ("Groups", k) in learnt.refused else t for k, t in mapping.groups.items()
        }
        return replace(mapping, users=users, groups=groups)

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
