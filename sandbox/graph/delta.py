"""``/users/delta``, ``/groups/delta`` and the education ones: change tracking with state tokens.

A round without a token returns every live object over several pages (``@odata.nextLink`` with
a ``$skiptoken``) and ends with an ``@odata.deltaLink``. A round from a ``$deltatoken`` returns
what changed since: objects in full (selected properties), ``@removed`` ``changed`` for the
recycle bin and ``deleted`` for purges; groups carry ``members@delta`` when ``members`` is
selected, the changed members only, a large group's members spread over several pages (the
group appears again, merge by id). ``$top`` is ignored; ``$filter`` takes only ``id`` as on
Graph. ``$deltatoken=latest`` gives a deltaLink without the objects. ``/education/users/delta``
and ``/education/classes/delta`` track the same objects in the education view and, as their
pages say, report created and updated ones only; ``/education/schools/delta`` lists the schools
once (they never change after a load).

Failure policy: a token older than the sandbox's maximum age (default 7 days), expired by the
admin API or not made here answers 400 ``syncStateNotFound``; after the admin ``delta-gone``
knob the next call with a token answers 410 ``resyncRequired``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.graph import odata, schema
from sandbox.graph.calls import GraphCall, Reply, collection
from sandbox.graph.errors import GraphError
from sandbox.graph.store import GROUP, USER, DirObject, Tenant

OBJECTS_PER_PAGE = {USER: 200, GROUP: 100}
MEMBERS_PER_PAGE = 400
#: ``$deltatoken=latest`` asks for a deltaLink from now on, without the objects
LATEST = "latest"


def _sync_state_not_found() -> GraphError:
    return GraphError(
        400,
        "syncStateNotFound",
        "The sync state is not found or has expired; start again with a delta call without a "
        "token.",
    )


def _member_ref(tenant: Tenant, member_id: str, *, present: bool) -> dict[str, Any]:
    obj = tenant.objects.get(member_id)
    stone = tenant.tombstones.get(member_id)
    kind = obj.kind if obj is not None else stone.kind if stone is not None else USER
    ref: dict[str, Any] = {"@odata.type": f"#{schema.type_name(kind)}", "id": member_id}
    if not present:
        ref["@removed"] = {"reason": "deleted"}
    return ref


def _member_changes(tenant: Tenant, group: DirObject, since: int | None) -> list[tuple[str, bool]]:
    """(member id, is a member now) for the members to report in this round."""
    assert group.members is not None and group.removed_members is not None
    if since is None:
        return [(m, True) for m in group.members if tenant.visible(m) is not None]
    changes = [
        (m, tenant.visible(m) is not None) for m, seq in group.members.items() if seq > since
    ]
    changes += [(m, False) for m, seq in group.removed_members.items() if seq > since]
    return changes


def _candidates(
    tenant: Tenant, kind: str, since: int | None, after: int
) -> Iterator[tuple[int, str, DirObject | None]]:
    """(ordinal, id, object or None when purged) to report, in ordinal order."""
    if since is None:
        for obj in tenant.live(kind, after=after):
            yield obj.ordinal, obj.id, obj
        return
    changed = (
        (obj.ordinal, obj.id, obj)
        for obj in tenant.all_of(kind, after=after)
        if obj.seq > since or (kind == GROUP and obj.member_seq > since)
    )
    purged = sorted(
        (stone.ordinal, obj_id, None)
        for obj_id, stone in tenant.tombstones.items()
        if stone.kind == kind and stone.seq > since and stone.ordinal > after
    )
    yield from heapq.merge(changed, purged, key=lambda entry: entry[0])


def _entry(obj_id: str, obj: DirObject | None, select: tuple[str, ...] | None) -> dict[str, Any]:
    if obj is None:
        return {"id": obj_id, "@removed": {"reason": "deleted"}}
    if obj.deleted is not None:
        return {"id": obj_id, "@removed": {"reason": "changed"}}
    return schema.project(obj, select)


Entry = Callable[[str, DirObject | None, tuple[str, ...] | None], dict[str, Any] | None]


@dataclass(frozen=True)
class Feed:
    """One delta function: the objects it tracks and how it reports one (``None``: not at all).

    ``name`` is its collection below the version (``users``, ``education/classes``) and the
    kind its state tokens carry; ``context`` what follows ``$metadata#``.
    """

    name: str
    kind: str
    context: str
    known: tuple[str, ...]
    entity: str
    entry: Entry
    members: bool = False


def _education(build: Callable[[DirObject], dict[str, Any]]) -> Entry:
    """Education deltas report created and updated objects only ("educationUser: delta": "newly
    created or updated"; "educationClass: delta": "deltas do not include deleted classes")."""

    def entry(
        obj_id: str, obj: DirObject | None, select: tuple[str, ...] | None
    ) -> dict[str, Any] | None:
        if obj is None or obj.deleted is not None or (obj.kind == GROUP and obj.edu is None):
            return None
        return schema.pick(build(obj), select)

    return entry


FEEDS = {
    USER: Feed(
        "users", USER, "users", tuple(schema.USER_PROPERTIES), "microsoft.graph.user", _entry
    ),
    GROUP: Feed(
        "groups",
        GROUP,
        "groups",
        (*schema.GROUP_PROPERTIES, "members"),
        "microsoft.graph.group",
        _entry,
        members=True,
    ),
}
EDUCATION_USERS = Feed(
    "education/users",
    USER,
    "Collection(educationUser)",
    schema.EDUCATION_USER_FIELDS,
    "microsoft.graph.educationUser",
    _education(schema.education_user),
)
EDUCATION_SCHOOLS = Feed(
    "education/schools",
    "school",
    "Collection(educationSchool)",
    schema.EDUCATION_SCHOOL_FIELDS,
    "microsoft.graph.educationSchool",
    lambda obj_id, obj, select: None,
)
EDUCATION_CLASSES = Feed(
    "education/classes",
    GROUP,
    "Collection(educationClass)",
    schema.EDUCATION_CLASS_FIELDS,
    "microsoft.graph.educationClass",
    _education(schema.education_class),
)


def _page(call: GraphCall, feed: Feed, state: dict[str, Any]) -> Reply:
    tenant = call.tenant
    kind = feed.kind
    select = tuple(state["sel"].split(",")) if state.get("sel") else None
    with_members = feed.members and select is not None and "members" in select
    predicate = (
        odata.parse_filter(state["f"], lambda name: name == "id", advanced=True)
        if state.get("f")
        else None
    )
    since: int | None = state.get("s")
    after: int = state.get("o", 0)
    member_offset: int = state.get("mo", 0)
    items: list[dict[str, Any]] = []
    refs_left = MEMBERS_PER_PAGE
    more = False
    with tenant.lock:
        for ordinal, obj_id, obj in _candidates(tenant, kind, since, after):
            if predicate is not None and not predicate(odata.getter_for({"id": obj_id})):
                continue
            if len(items) >= OBJECTS_PER_PAGE[kind] or (with_members and refs_left <= 0):
                more = True
                break
            entry = feed.entry(obj_id, obj, select)
            if entry is None:
                after, member_offset = ordinal, 0
                continue
            if with_members and obj is not None and obj.deleted is None:
                changes = _member_changes(tenant, obj, since)[member_offset:]
                chunk, rest = changes[:refs_left], changes[refs_left:]
                entry["members@delta"] = [
                    _member_ref(tenant, m, present=present) for m, present in chunk
                ]
                refs_left -= len(chunk)
                if rest:
                    items.append(entry)
                    member_offset += len(chunk)
                    more = True
                    break
            items.append(entry)
            after, member_offset = ordinal, 0
    context = f"{call.base_url}/$metadata#{feed.context}"
    path = f"/{feed.name}/delta"
    if more:
        token = call.registry.sign({**state, "o": after, "mo": member_offset})
        return collection(context, items, f"{call.base_url}{path}?$skiptoken={token}")
    delta = call.registry.sign(
        {
            "k": feed.name,
            "t": tenant.id,
            "s": state["u"],
            "sel": state.get("sel"),
            "f": state.get("f"),
            "iat": time.time(),
        }
    )
    return collection(
        context, items, None, **{"@odata.deltaLink": f"{call.base_url}{path}?$deltatoken={delta}"}
    )


def _read_token(call: GraphCall, feed: Feed, token: str) -> dict[str, Any]:
    tenant = call.tenant
    if tenant.delta_gone:
        tenant.delta_gone = False
        raise GraphError(
            410,
            "resyncRequired",
            "The delta state is gone; replace the local copy by starting a new delta round "
            "without a token.",
        )
    state = call.registry.read(token)
    if state is None or state.get("k") != feed.name or state.get("t") != tenant.id:
        raise _sync_state_not_found()
    issued = float(state.get("iat", 0))
    max_age = call.registry.settings.delta_token_max_age_seconds
    if time.time() - issued > max_age or issued < tenant.tokens_valid_after:
        raise _sync_state_not_found()
    return state


def delta(call: GraphCall, kind: str) -> Reply:
    """Answer one delta request for ``kind`` (users or groups)."""
    return delta_of(call, FEEDS[kind])


def delta_of(call: GraphCall, feed: Feed) -> Reply:
    """Answer one request of a delta function."""
    odata.check_options(call.args)
    tenant = call.tenant
    if "$skiptoken" in call.args:
        return _page(call, feed, _read_token(call, feed, call.args["$skiptoken"]))
    token = call.args.get("$deltatoken")
    latest = token == LATEST
    if token is not None and not latest:
        previous = _read_token(call, feed, token)
        state = {**previous, "u": tenant.seq, "o": 0, "mo": 0, "iat": time.time()}
        return _page(call, feed, state)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, feed.known, feed.entity)
    text = call.args.get("$filter")
    if text:
        odata.parse_filter(text, lambda name: name == "id", advanced=True)
    state = {
        "k": feed.name,
        "t": tenant.id,
        "s": None,
        "u": tenant.seq,
        "o": 0,
        "mo": 0,
        "sel": ",".join(select) if select else None,
        "f": text,
        "iat": time.time(),
    }
    if latest:
        keep = {key: state[key] for key in ("k", "t", "sel", "f", "iat")}
        link = f"{call.base_url}/{feed.name}/delta?$deltatoken="
        link += call.registry.sign({**keep, "s": tenant.seq})
        context = f"{call.base_url}/$metadata#{feed.context}"
        return collection(context, [], None, **{"@odata.deltaLink": link})
    return _page(call, feed, state)


def school_delta(call: GraphCall) -> Reply:
    """``/education/schools/delta``: schools are made by SDS loads before a tenant serves and
    never change after, so a round without a token lists them all and later rounds are empty."""
    odata.check_options(call.args)
    feed = EDUCATION_SCHOOLS
    token = call.args.get("$deltatoken") or call.args.get("$skiptoken")
    if token is not None and token != LATEST:
        state = _read_token(call, feed, token)
        select = tuple(state["sel"].split(",")) if state.get("sel") else None
        items: list[dict[str, Any]] = []
    else:
        select = odata.parse_select(call.args)
        if select:
            schema.check_select(select, feed.known, feed.entity)
        with call.tenant.lock:
            schools = list(call.tenant.schools.values())
        items = (
            []
            if token == LATEST
            else [schema.pick(schema.education_school(s), select) for s in schools]
        )
    link = f"{call.base_url}/{feed.name}/delta?$deltatoken="
    link += call.registry.sign(
        {
            "k": feed.name,
            "t": call.tenant.id,
            "sel": ",".join(select) if select else None,
            "iat": time.time(),
        }
    )
    context = f"{call.base_url}/$metadata#{feed.context}"
    return collection(context, items, None, **{"@odata.deltaLink": link})
