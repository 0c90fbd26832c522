"""A user's groups: ``/users/{id}/memberOf`` and ``/users/{id}/ownedObjects``, as Graph v1.0
answers them.

Written from "List a user's direct memberships" (learn.microsoft.com/graph/api/
user-list-memberof) and "List ownedObjects" (.../user-list-ownedobjects): direct memberships
only (not transitive); directory objects with their ``@odata.type``; the OData cast
``/microsoft.graph.group`` narrows to groups (with the group's properties and the
``#groups`` context); ``$select``, ``$filter``, ``$top`` with ``@odata.nextLink`` paging, and the
``$count`` segment and ``$count=true`` with ``ConsistencyLevel: eventual``, as the other
relationship listings (``paging``). The sandbox's directory holds groups only as what a user
joins or owns, so these are the groups; directory roles have their own cast
(``delegated``). A user in the recycle bin is not found, as on Graph; a group in the recycle
bin is not listed.

Failure policy: an unknown user answers 404 ``Request_ResourceNotFound``; bad query options 400
as in every listing.
"""

from __future__ import annotations

from typing import Any

from sandbox.graph import paging
from sandbox.graph.calls import GraphCall, Reply

# the same listing as a group's members and owners: directory objects, or one type after a cast
from sandbox.graph.directory import _link_listing
from sandbox.graph.errors import not_found
from sandbox.graph.store import GROUP, USER, DirObject


def _groups_of(call: GraphCall, user_id: str, *, owned: bool) -> list[DirObject]:
    """The live groups the user is a direct member (or owner) of, in creation order."""
    tenant = call.tenant
    with tenant.lock:
        user = tenant.find(USER, user_id)
        if user is None:
            raise not_found(user_id)
        ids = user.owner_of if owned else user.member_of
        groups = [g for g in map(tenant.visible, ids) if g is not None and g.kind == GROUP]
        table = "owners" if owned else "members"
        # the store keeps both sides; only links the group itself still holds count
        groups = [g for g in groups if user.id in (getattr(g, table) or {})]
    return sorted(groups, key=lambda g: g.ordinal)


def list_groups(call: GraphCall, key: str, *, owned: bool, cast: str | None = None) -> Reply:
    return paging.by_position(call, _groups_of(call, key, owned=owned), _link_listing(call, cast))


def count_groups(call: GraphCall, key: str, *, owned: bool, cast: str | None = None) -> Reply:
    return paging.count(call, _groups_of(call, key, owned=owned), _link_listing(call, cast))


def _rules() -> list[tuple[str, str, Any]]:
    rules: list[tuple[str, str, Any]] = []
    for link, owned in (("memberOf", False), ("ownedObjects", True)):
        base = f"/users/<key>/{link}"
        for suffix, cast in (("", None), ("/microsoft.graph.group", GROUP)):
            rules += [
                (
                    base + suffix,
                    "GET",
                    lambda c, key, o=owned, t=cast: list_groups(c, key, owned=o, cast=t),
                ),
                (
                    base + suffix + "/$count",
                    "GET",
                    lambda c, key, o=owned, t=cast: count_groups(c, key, owned=o, cast=t),
                ),
            ]
    return rules


#: (rule, method, handler) for ``sandbox.graph.app``
RULES = _rules()
