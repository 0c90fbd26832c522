"""The objects a real-time run or an approval has in hand: their portal accounts (linked, or
holding their e-mail), and the Microsoft state of every other object such an account is linked
to, so that the planner sees what a full read would show it about them; for an approval, both
sides of the objects its held actions name (``held``).

Failure policy: Graph and portal errors propagate (``common.errors``); nothing is caught here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from common.graph import source
from common.graph.client import GraphClient
from common.model import (
    Action,
    ActionKind,
    MicrosoftState,
    PortalGroup,
    PortalState,
    PortalUser,
    Scope,
    link_key,
)
from common.portal.protocol import Portal
from common.state.registry import Tenant
from common.sync.services import Services

_GROUP_REMOVALS = (ActionKind.DELETE_GROUP, ActionKind.DELETE_DUPLICATE_GROUP)


def accounts(
    graph: GraphClient,
    scope: Scope,
    portal: Portal,
    microsoft: MicrosoftState,
    entra_ids: Iterable[str],
) -> tuple[MicrosoftState, list[PortalUser]]:
    """The portal accounts of these Microsoft users (linked, or holding their e-mail), with the
    Microsoft state of every other object such an account is linked to, so that the planner
    can tell whether that object is gone (then the account is taken over, as in a full run)."""
    ids = set(entra_ids)
    users = lookup_users(portal, microsoft, ids)
    for holder in users:
        other = holder.external_id
        if other and other not in ids and not known(microsoft, other):
            microsoft = merge(microsoft, source.read_user(graph, scope, other))
    return microsoft, users


_Object = TypeVar("_Object", PortalUser, PortalGroup)


def unique(objects: Iterable[_Object]) -> list[_Object]:
    """Each portal object once (by portal id), in the order first met."""
    return list({o.id: o for o in objects}.values())


def lookup_users(
    portal: Portal, microsoft: MicrosoftState, entra_ids: Iterable[str]
) -> list[PortalUser]:
    """Portal users linked to these Microsoft users, or holding their e-mail addresses."""
    ids = list(dict.fromkeys(entra_ids))
    found = portal.find_users(external_ids=ids) if ids else []
    linked = {u.external_id for u in found}
    emails: list[str] = []
    for entra_id in ids:
        user = microsoft.users.get(entra_id)
        if user is not None and entra_id not in linked:
            emails.extend(e for e in (user.mail, user.user_principal_name) if e)
    if emails:
        seen = {u.id for u in found}
        found += [
            u for u in portal.find_users(emails=list(dict.fromkeys(emails))) if u.id not in seen
        ]
    return found


def known(state: MicrosoftState, object_id: str) -> bool:
    return (
        object_id in state.users
        or object_id in state.classes
        or object_id
        in (
            state.out_of_scope_user_ids | state.soft_deleted_user_ids | state.out_of_scope_class_ids
        )
    )


def merge(a: MicrosoftState, b: MicrosoftState) -> MicrosoftState:
    def union(x: frozenset[str] | None, y: frozenset[str] | None) -> frozenset[str] | None:
        if x is None or y is None:
            return None
        return x | y

    return MicrosoftState(
        users={**a.users, **b.users},
        classes={**a.classes, **b.classes},
        out_of_scope_user_ids=a.out_of_scope_user_ids | b.out_of_scope_user_ids,
        soft_deleted_user_ids=a.soft_deleted_user_ids | b.soft_deleted_user_ids,
        out_of_scope_class_ids=a.out_of_scope_class_ids | b.out_of_scope_class_ids,
        scope_user_ids=union(a.scope_user_ids, b.scope_user_ids),
        scope_class_ids=union(a.scope_class_ids, b.scope_class_ids),
    )


def with_links(
    services: Services, tenant_id: str, state: PortalState, *, everything: bool = False
) -> PortalState:
    """The portal state with the links the sync made before (which copy of a duplicate it
    keeps): every link of the tenant for a whole read, else those of the objects at hand."""
    if everything:
        links = services.links.all(tenant_id)
    else:
        keys = [link_key("user", u.external_id) for u in state.users if u.external_id]
        keys += [link_key("group", g.external_id) for g in state.groups if g.external_id]
        links = services.links.some(tenant_id, keys) if keys else {}
    return replace(state, links=links)


def held(
    services: Services, tenant: Tenant, actions: Iterable[Action]
) -> tuple[MicrosoftState, PortalState]:
    """Both sides of the objects held actions name, read again (an approval checks that each is
    still gone before it removes it)."""
    graph = services.graph(tenant.id)
    portal = services.portal(tenant)
    actions = list(actions)
    user_ids = [a.object_id for a in actions if a.kind not in _GROUP_REMOVALS]
    class_ids = [a.object_id for a in actions if a.kind in _GROUP_REMOVALS]
    microsoft = MicrosoftState(
        users={}, classes={}, scope_user_ids=frozenset(), scope_class_ids=frozenset()
    )
    for uid in user_ids:
        microsoft = merge(microsoft, source.read_user(graph, tenant.scope, uid))
    for cid in class_ids:
        microsoft = merge(microsoft, source.read_class(graph, tenant.scope, cid))
    users = portal.find_users(external_ids=user_ids) if user_ids else []
    groups = unique(g for cid in dict.fromkeys(class_ids) for g in portal.find_groups(cid))
    state = with_links(services, tenant.id, PortalState(users=tuple(users), groups=tuple(groups)))
    return microsoft, state
