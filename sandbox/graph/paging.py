"""Listing with Graph's paging: ``$top`` (1-999), ``$filter``, ``$select`` and ``@odata.nextLink``.

The next link repeats the request's own query options plus a ``$skiptoken`` that remembers
where the page ended (the creation ordinal of the last object, or a position in a list), so
objects created or deleted between pages neither repeat nor shift the rest.

Failure policy: a skiptoken not made here for this path answers 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.graph import odata, schema
from sandbox.graph.calls import GraphCall, Reply, collection
from sandbox.graph.errors import GraphError

Render = Callable[[Any, tuple[str, ...] | None], dict[str, Any]]


def _skip_position(call: GraphCall) -> int:
    token = call.args.get("$skiptoken")
    if token is None:
        return 0
    state = call.registry.read(token)
    if state is None or state.get("k") != "page" or state.get("p") != call.path:
        raise GraphError(400, "Request_BadRequest", "The $skiptoken is not valid for this request.")
    return int(state["o"])


def _eventual(call: GraphCall) -> bool:
    return call.headers.get("consistencylevel", "").lower() == "eventual"


def wants_count(call: GraphCall) -> bool:
    """Whether ``$count=true`` was asked with ``ConsistencyLevel: eventual``; without the
    header Graph answers the list without ``@odata.count`` ("Advanced query capabilities on
    Microsoft Entra ID objects": the query parameter "fails silently")."""
    raw = call.args.get("$count")
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() != "true":
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $count.")
    return _eventual(call)


def count(call: GraphCall, objects: Iterable[Any], listing: Listing) -> Reply:
    """The ``$count`` segment: the number of objects that pass ``$filter``, as text/plain.

    "Use of $count as a URL segment" needs ``ConsistencyLevel: eventual`` ("Advanced query
    capabilities on Microsoft Entra ID objects"); without it Graph answers 400
    ``Request_BadRequest`` "$count is not currently supported.".
    """
    if not _eventual(call):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    _, predicate, _ = prepare(call, listing.known, listing.entity)
    keep = _keep(predicate, listing)
    with call.tenant.lock:
        return Reply(200, str(sum(1 for obj in objects if keep(obj))))


def prepare(
    call: GraphCall, known: Iterable[str], entity: str, *, default_top: int = 100
) -> tuple[tuple[str, ...] | None, odata.Predicate | None, int]:
    """Checked ``$select``, ``$filter`` predicate and page size of a list request."""
    odata.check_options(call.args)
    known_set = set(known)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, known_set, entity)
    text = call.args.get("$filter")
    predicate = None
    if text:
        predicate = odata.parse_filter(
            text,
            lambda name: name in known_set or bool(schema.EXTENSION_NAME.match(name)),
            call.headers,
        )
    return select, predicate, odata.parse_top(call.args, default=default_top)


def _next_link(call: GraphCall, position: int) -> str:
    token = call.registry.sign({"k": "page", "p": call.path, "o": position})
    return odata.link(call.base_url, call.path, call.args, skiptoken=token)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one list endpoint pages, the same for its ordinal and its positional paging.

    ``known`` and ``entity`` check ``$select`` and ``$filter``; ``render`` shows an object,
    ``getter`` reads it for ``$filter``.
    """

    known: Iterable[str]
    entity: str
    context: str
    render: Render
    getter: Callable[[Any], odata.Getter]


def _keep(predicate: odata.Predicate | None, listing: Listing) -> Callable[[Any], bool]:
    """Whether an object passes ``$filter`` (all do without one)."""
    if predicate is None:
        return lambda _obj: True
    getter = listing.getter
    return lambda obj: predicate(getter(obj))


def _count(keep: Callable[[Any], bool], objects: Iterable[Any]) -> dict[str, Any]:
    """``@odata.count``: every object that passes the filter, not only this page's."""
    return {"@odata.count": sum(1 for obj in objects if keep(obj))}


def by_ordinal(call: GraphCall, objects: Callable[[int], Iterator[Any]], listing: Listing) -> Reply:
    """A page of objects that carry an ``ordinal`` (users, groups), in creation order."""
    select, predicate, top = prepare(call, listing.known, listing.entity)
    counting = wants_count(call)
    after = _skip_position(call)
    keep = _keep(predicate, listing)
    items: list[dict[str, Any]] = []
    last = after
    more = False
    with call.tenant.lock:
        for obj in objects(after):
            if not keep(obj):
                continue
            if len(items) == top:
                more = True
                break
            items.append(listing.render(obj, select))
            last = obj.ordinal
        extra = _count(keep, objects(0)) if counting else {}
    context = odata.context_with_select(listing.context, select)
    return collection(context, items, _next_link(call, last) if more else None, **extra)


def by_position(call: GraphCall, entries: list[Any], listing: Listing) -> Reply:
    """A page of a list computed for this request (members, schools...)."""
    select, predicate, top = prepare(call, listing.known, listing.entity)
    counting = wants_count(call)
    start = _skip_position(call)
    keep = _keep(predicate, listing)
    items: list[dict[str, Any]] = []
    more = False
    position = start
    for position in range(start, len(entries)):
        entry = entries[position]
        if not keep(entry):
            continue
        if len(items) == top:
            more = True
            break
        items.append(listing.render(entry, select))
    extra = _count(keep, entries) if counting else {}
    context = odata.context_with_select(listing.context, select)
    return collection(context, items, _next_link(call, position) if more else None, **extra)
