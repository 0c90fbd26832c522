"""The ``Portal`` seam: the few methods the engine and the applier need from a portal.

Attribute names in ``changes`` and ``attrs`` are those of ``common.model.Action``; how they look
on the wire is the implementation's business (``common.portal.client.ScimPortal``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from common.model import PortalGroup, PortalUser


class Portal(Protocol):
    """What the sync needs from a portal (the seam the engine and the applier depend on)."""

    #: (endpoint ``Users``/``Groups``, externalId) of creates whose answer was lost
    uncertain_creates: list[tuple[str, str]]

    def list_users(self) -> Iterator[PortalUser]: ...

    def list_groups(self) -> Iterator[PortalGroup]: ...

    def find_users(
        self, *, external_ids: Iterable[str] = (), emails: Iterable[str] = ()
    ) -> list[PortalUser]: ...

    def find_group(self, external_id: str) -> PortalGroup | None: ...

    def find_groups(self, external_id: str) -> list[PortalGroup]: ...

    def get_user(self, portal_id: str) -> PortalUser: ...

    def get_group(self, portal_id: str) -> PortalGroup: ...

    def create_user(self, attrs: Mapping[str, Any]) -> PortalUser: ...

    def update_user(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalUser: ...

    def delete_user(self, portal_id: str) -> None: ...

    def create_group(self, attrs: Mapping[str, Any]) -> PortalGroup: ...

    def update_group(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalGroup: ...

    def add_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None: ...

    def remove_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None: ...

    def delete_group(self, group_id: str) -> None: ...
