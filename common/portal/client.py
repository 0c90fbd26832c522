"""``ScimPortal``: one portal organisation reached over SCIM 2.0 (RFC 7644), the HTTP client.

Owns the requests: reads, paging, searches with the filter forms this server accepts, creates
that survive a lost answer, PATCH of only what changed, member changes. What to send where is
``common.portal.mapping``'s (built from ``common.portal.discovery``); the seam the sync depends
on is ``common.portal.protocol.Portal``.

Failure policy: 429, 5xx, timeouts and connection errors are retried by the ``Transport`` (the
one retry layer; a create is never sent again blindly: it is looked up first) and end as
``Throttled``/``PortalUnavailable``. A 412 on a conditional update re-reads and tries again a
few times, then raises ``ConflictError``; a 409 on a create adopts an unmanaged holder of the
userName or raises ``ConflictError`` naming the managed one; 401/403 raise ``PortalAuthError``;
404 raises ``NotFound`` except on delete; a listing the server cuts short (it ignores
``startIndex``) raises ``PortalRequestError`` naming the server's fault; a PATCH refused for one
attribute is split so the rest lands, and the attribute is not sent again by this process until
the server's capabilities change. Bodies and tokens never go into messages or logs.

Long because it is the whole of the ``Portal`` seam for SCIM: each method is short, and the
pieces that stand alone are already elsewhere (``wire``, ``filters``, ``codec``, ``learning``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from common.config import Secret
from common.errors import ConflictError, PortalRequestError
from common.http import Transport
from common.model import PortalGroup, PortalUser, oldest_first
from common.portal.codec import (
    group_resource,
    parse_group,
    parse_user,
    patch_operations,
    user_resource,
)
from common.portal.filters import (
    FilterForms,
    chunks,
    degraded,
    email_terms,
    external_id_term,
    filter_value,
    queries,
    remove_member,
)
from common.portal.learning import LearningWire, Memory
from common.portal.mapping import REQUIRED

#: members added or removed per PATCH request
MEMBERS_PER_PATCH = 100
#: SCIM error types that name one attribute of a PATCH (RFC 7644 §3.12)
ATTRIBUTE_REFUSALS = frozenset({"invalidPath", "invalidValue", "mutability", "noTarget"})


def _same_address(user: PortalUser, addresses: set[str]) -> bool:
    return bool({(user.email or "").lower(), user.user_name.lower()} & addresses)


class ScimPortal(LearningWire):
    """A portal organisation at ``base_url`` (its SCIM root), reached through ``transport``.

    ``overrides`` is the per-portal mapping (``mapping.parse_overrides``); ``memory`` keeps what
    was learnt from the server's refusals for later processes. One instance may be used from
    several threads. See the module docstring for the failure policy.
    """

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        token: Secret | str,
        *,
        overrides: Mapping[str, str] | None = None,
        memory: Memory | None = None,
    ) -> None:
        super().__init__(transport, base_url, token, overrides=overrides, memory=memory)
        #: sentences on attributes refused during this instance's life (one per attribute)
        self.refusals: list[str] = []

    def __repr__(self) -> str:
        return f"ScimPortal({self.base_url!r})"

    # --- reads ------------------------------------------------------------------------------

    def list_users(self) -> Iterator[PortalUser]:
        """Every user of the organisation, page by page."""
        mapping = self.mapping()
        for resource in self._list("Users"):
            yield parse_user(resource, mapping)

    def list_groups(self) -> Iterator[PortalGroup]:
        """Every group of the organisation (managed and manual), page by page."""
        mapping = self.mapping()
        for resource in self._list("Groups"):
            yield parse_group(resource, mapping)

    def find_users(
        self, *, external_ids: Iterable[str] = (), emails: Iterable[str] = ()
    ) -> list[PortalUser]:
        """Users whose ``externalId`` is one of ``external_ids`` or whose e-mail or userName is
        one of ``emails``, in any letter case (RFC 7643 §4.1), also on a server whose ``eq``
        compares case-sensitively (it is then read whole and compared here)."""
        mapping = self.mapping()
        found: dict[str, PortalUser] = {}
        ids = list(external_ids)
        if ids:
            for resource in self._search("Users", ids, external_id_term):
                user = parse_user(resource, mapping)
                if user.external_id in ids:
                    found.setdefault(user.id, user)
        addresses = [e for e in emails if e]
        if addresses:
            wanted = {a.lower() for a in addresses}
            users: Iterable[PortalUser]
            if self._filters_ignore_case():
                users = (parse_user(r, mapping) for r in self._search("Users", addresses, None))
            else:
                users = self.list_users()
            for user in users:
                if _same_address(user, wanted):
                    found.setdefault(user.id, user)
        return list(found.values())

    def find_group(self, external_id: str) -> PortalGroup | None:
        """The group whose ``externalId`` is ``external_id``, if there is one (the copy the
        sync keeps, ``oldest_first``, where the portal holds duplicates)."""
        groups = self.find_groups(external_id)
        return groups[0] if groups else None

    def find_groups(self, external_id: str) -> list[PortalGroup]:
        """Every group whose ``externalId`` is ``external_id``, oldest first (duplicates too)."""
        mapping = self.mapping()
        groups = [
            g
            for g in (
                parse_group(r, mapping)
                for r in self._search("Groups", [external_id], external_id_term)
            )
            if g.external_id == external_id
        ]
        return sorted(groups, key=oldest_first)

    def get_user(self, portal_id: str) -> PortalUser:
        """The user with this portal id; ``NotFound`` if there is none."""
        return parse_user(self._get("Users", portal_id), self.mapping())

    def get_group(self, portal_id: str) -> PortalGroup:
        """The group with this portal id; ``NotFound`` if there is none."""
        return parse_group(self._get("Groups", portal_id), self.mapping())

    def _search(
        self, endpoint: str, values: Sequence[str], term: Callable[[str], list[str]] | None
    ) -> list[dict[str, Any]]:
        """What the filters for ``values`` find (``term`` ``None``: e-mail terms), falling back to
        simpler filter forms when the server refuses one (remembered for this server)."""
        while True:
            forms = self.filter_forms()

            def make(value: str, forms: FilterForms = forms) -> list[str]:
                return term(value) if term is not None else email_terms(value, forms)

            try:
                return [r for q in queries(values, make, forms) for r in self._list(endpoint, q)]
            except PortalRequestError as exc:
                simpler = degraded(forms, emails=term is None) if exc.status == 400 else None
                if simpler is None:
                    raise
                self._update_learnt(forms=simpler)

    def _filters_ignore_case(self) -> bool:
        """Whether ``userName eq`` ignores letter case here, as RFC 7643 §4.1 says it should.

        Asked once per server with a userName that exists, written in another case; a server
        with no user whose name has letters is taken at its word for now (asked again later).
        """
        forms = self.filter_forms()
        if forms.ignores_case is not None:
            return forms.ignores_case
        response = self._send(
            "GET",
            self._url("Users"),
            params={"startIndex": 1, "count": 1},
            what="reading a user to learn how the portal compares names",
        )
        first = (self._json(response, "listing users").get("Resources") or [None])[0]
        name = str(first.get("userName") or "") if isinstance(first, dict) else ""
        if name.swapcase() == name:
            return True
        query = f"userName eq {filter_value(name.swapcase())}"
        try:
            ignores = any(True for _ in self._list("Users", query))
        except PortalRequestError:
            ignores = False
        self._update_learnt(forms=replace(self.filter_forms(), ignores_case=ignores))
        return ignores

    # --- writes -----------------------------------------------------------------------------

    def create_user(self, attrs: Mapping[str, Any]) -> PortalUser:
        """Create a user from model attributes (only those this portal holds are sent).

        A create whose answer was lost is never sent again blindly: the user is looked up by
        ``externalId`` and userName first. A 409 (the userName is taken) adopts the holder when
        it is unmanaged, and raises ``ConflictError`` naming it when another object manages it.
        """
        mapping = self.mapping()
        external_id, user_name = attrs.get("externalId"), str(attrs.get("userName") or "")

        def made() -> PortalUser | None:
            found = self.find_users(external_ids=[external_id] if external_id else [])
            if not found and user_name:
                found = [
                    u
                    for u in self.find_users(emails=[user_name])
                    if u.user_name.lower() == user_name.lower()
                    and u.external_id in (None, external_id)
                ]
            return found[0] if found else None

        for attempt in (1, 2):
            try:
                body = self._create(
                    "Users",
                    user_resource(attrs, mapping),
                    made,
                    conflict=f"the portal already has a user named {user_name}",
                    lookup=bool(external_id or user_name),
                )
            except ConflictError:
                return self._adopt_holder(attrs, user_name, external_id)
            except PortalRequestError as exc:
                # the server may have changed what it declares: learn it again, once; or it
                # refused one secondary attribute: create without it
                if attempt == 2:
                    raise
                if not self._schema_changed(exc):
                    targets = [(n, t) for n, t in mapping.users.items() if t and n in attrs]
                    refused = self._refused_attribute(
                        exc, [(n, {"path": t.path}) for n, t in targets]
                    )
                    if refused is None or len(targets) < 2:
                        raise
                    self._refuse("Users", refused, exc)
                mapping = self.mapping()
                continue
            return body if isinstance(body, PortalUser) else parse_user(body, mapping)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _adopt_holder(
        self, attrs: Mapping[str, Any], user_name: str, external_id: str | None
    ) -> PortalUser:
        """After a 409 on create: adopt the unmanaged account holding the userName or e-mail."""
        holders = [
            u
            for u in self.find_users(
                external_ids=[external_id] if external_id else [],
                emails=[user_name, str(attrs.get("email") or "")],
            )
        ]
        mine = [u for u in holders if external_id and u.external_id == external_id]
        if mine:
            return mine[0]
        free = sorted((u for u in holders if not u.managed), key=lambda u: u.id)
        if not free:
            taken = ", ".join(sorted(u.user_name for u in holders)) or user_name
            raise ConflictError(
                f"collision: {user_name} is taken in the portal by account {taken}, which is "
                f"managed for another Microsoft 365 object",
                status=409,
                code="uniqueness",
            )
        holder = free[0]
        changes = {k: v for k, v in attrs.items() if k != "userName" or v != holder.user_name}
        return self.update_user(holder.id, changes)

    def update_user(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalUser:
        """PATCH only ``changes``; conditional on ``version`` (meta.version) when given."""
        conflict = (
            f"the portal already has a user named {changes['userName']}"
            if "userName" in changes
            else None
        )
        body = self._update("Users", portal_id, changes, version=version, conflict=conflict)
        return parse_user(body, self.mapping())

    def delete_user(self, portal_id: str) -> None:
        """Delete the user; one that is already gone counts as deleted."""
        self._delete("Users", portal_id)

    def create_group(self, attrs: Mapping[str, Any]) -> PortalGroup:
        """Create a group from model attributes and ``members`` (portal user ids).

        A create whose answer was lost is looked up by ``externalId`` before it is sent again.
        """
        mapping = self.mapping()
        external_id = attrs.get("externalId")
        body = self._create(
            "Groups",
            group_resource(attrs, mapping),
            lambda: self.find_group(str(external_id)) if external_id else None,
            conflict=f"the portal refused a second group {attrs.get('displayName')}",
            lookup=bool(external_id),
        )
        return body if isinstance(body, PortalGroup) else parse_group(body, mapping)

    def update_group(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalGroup:
        """PATCH only ``changes`` (display name, school, externalId); never the members."""
        return parse_group(
            self._update("Groups", portal_id, changes, version=version), self.mapping()
        )

    def _update(
        self,
        endpoint: str,
        portal_id: str,
        changes: Mapping[str, Any],
        *,
        version: str | None,
        conflict: str | None = None,
    ) -> dict[str, Any]:
        """PATCH what has a home here; an attribute the server refuses is split off (once), so
        that the others still land, and it is not sent again (``refusals`` says which)."""
        learnt = self._learnt()
        targets = learnt.mapping.users if endpoint == "Users" else learnt.mapping.groups
        skip = {name for kind, name in learnt.refused if kind == endpoint}
        operations = patch_operations(changes, targets, skip=skip)
        if not operations:
            return self._get(endpoint, portal_id)
        try:
            return self._patch(
                endpoint,
                portal_id,
                [op for _, op in operations],
                version=version,
                conflict=conflict,
            )
        except PortalRequestError as exc:
            if self._schema_changed(exc):
                # the server declares something else now: send the changes it can hold
                return self._update(
                    endpoint, portal_id, changes, version=version, conflict=conflict
                )
            refused = self._refused_attribute(exc, operations)
            if refused is None:
                raise
            self._refuse(endpoint, refused, exc)
        rest = [op for name, op in operations if name != refused]
        if not rest:
            return self._get(endpoint, portal_id)
        return self._patch(endpoint, portal_id, rest, version=None, conflict=conflict)

    @staticmethod
    def _refused_attribute(
        exc: PortalRequestError, operations: list[tuple[str, dict[str, Any]]]
    ) -> str | None:
        """The one secondary attribute a 400 refused, when the answer lets us tell which."""
        if exc.status != 400 or (exc.code and exc.code not in ATTRIBUTE_REFUSALS):
            return None
        message = str(exc).lower()
        named = [
            name
            for name, op in operations
            if name not in REQUIRED and str(op["path"]).lower().rsplit(":", 1)[-1] in message
        ]
        if len(named) == 1:
            return named[0]
        secondary = [name for name, _ in operations if name not in REQUIRED]
        if len(operations) == 1 and secondary:
            return secondary[0]
        return None

    def _refuse(self, endpoint: str, name: str, exc: PortalRequestError) -> None:
        learnt = self._learnt()
        if (endpoint, name) in learnt.refused:
            return
        self._update_learnt(refused=learnt.refused | {(endpoint, name)})
        kind = "users'" if endpoint == "Users" else "classes'"
        self.refusals.append(
            f"the portal refused the {kind} {name} ({exc.code or exc.status}); "
            f"it is not sent again until the portal or its mapping changes"
        )

    def add_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None:
        """Add these users to the group (one ``add`` per request, members in chunks)."""
        for chunk in chunks(list(dict.fromkeys(portal_user_ids)), MEMBERS_PER_PATCH):
            operation = {"op": "add", "path": "members", "value": [{"value": v} for v in chunk]}
            self._patch_members(group_id, [operation])

    def remove_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None:
        """Remove these users from the group, each by a ``members[value eq "id"]`` path.

        One who is no longer a member counts as removed, also on a server that refuses the
        request with ``noTarget`` (RFC 7644 §3.5.2.2): the others are then removed one by one.
        """
        for chunk in chunks(list(dict.fromkeys(portal_user_ids)), MEMBERS_PER_PATCH):
            if not self._remove_members_at_once(group_id, chunk) and len(chunk) > 1:
                for member in chunk:
                    self._remove_members_at_once(group_id, [member])

    def _remove_members_at_once(self, group_id: str, portal_user_ids: Sequence[str]) -> bool:
        """One request removing these members; ``False`` when the server answered ``noTarget``
        (one of them is no longer a member, and the server then removes none)."""
        try:
            self._patch_members(group_id, [remove_member(v) for v in portal_user_ids])
        except PortalRequestError as exc:
            if exc.code != "noTarget":
                raise
            return False
        return True

    def delete_group(self, group_id: str) -> None:
        """Delete the group (its members stay); one that is already gone counts as deleted."""
        self._delete("Groups", group_id)
