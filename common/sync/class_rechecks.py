"""What a user's real-time job queues for her classes, so that class membership follows the
rule of a full read (DESIGN §3: a class's members are its members and owners in scope) when
Microsoft 365 tells only the user: she left scope (her classes still list her) or came back
(nothing tells her classes). The class jobs then apply the one membership rule, each under its
own lease; nothing here writes to the portal.

Failure policy: Graph and portal failures raise as the clients raise them (the job is retried);
a group deleted meanwhile is skipped.
"""

from __future__ import annotations

from common.errors import NotFound
from common.graph import source
from common.graph.client import GraphClient
from common.model import PortalUser
from common.portal.protocol import Portal
from common.state.dispatch import Change, Dispatcher
from common.sync.services import Services


def classes_left(
    services: Services, tenant_id: str, portal: Portal, users: list[PortalUser], user_id: str
) -> None:
    """A user who is no student or teacher in scope belongs in no class; Microsoft 365 may
    still list her in them (she left the school, lost her role) without telling the classes.
    Queue a job for each synced class whose portal group still holds her account (where the
    portal says which, SCIM ``groups``)."""
    group_ids = {g for u in users if u.external_id == user_id for g in u.group_ids}
    dispatcher = Dispatcher(services.redis)
    for group_id in sorted(group_ids):
        try:
            group = portal.get_group(group_id)
        except NotFound:
            continue
        if group.external_id:
            dispatcher.enqueue_change(tenant_id, "group", group.external_id)


def classes_joined(
    services: Services, tenant_id: str, graph: GraphClient, portal: Portal, user_id: str
) -> None:
    """The mirror of ``classes_left``: a user (back) in scope belongs in every class she is a
    member or owner of in Microsoft 365, and Microsoft 365 does not tell those classes when she
    comes back (a role or school given back). Queue a job for each synced class (one with a
    portal group) whose portal group lacks her account.

    Graph cost: one ``$batch`` call of two requests (``source.read_groups_of``); the engine
    calls this only when she had no active account before the job. Portal cost: one lookup of
    her account and one of each of her groups."""
    class_ids = source.read_groups_of(graph, user_id)
    if not class_ids:
        return
    accounts = {u.id for u in portal.find_users(external_ids=[user_id])}
    lacking = [
        Change(tenant_id, "group", class_id)
        for class_id in sorted(class_ids)
        if (groups := portal.find_groups(class_id))
        and any(not accounts & g.member_ids for g in groups)
    ]
    Dispatcher(services.redis).enqueue_changes(lacking)
