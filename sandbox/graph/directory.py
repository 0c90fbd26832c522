"""Users, groups, their members and owners, and the recycle bin (``/directory/deletedItems``).

Reads and writes follow Graph v1.0: POST answers 201 with the object, PATCH and DELETE 204;
deleting a user or a Microsoft 365 group moves it to the recycle bin (restorable), deleting a
security group removes it for good, as Entra does. Members and owners are added with
``POST .../members/$ref`` (``{"@odata.id": ".../directoryObjects/{id}"}``) and removed with
``DELETE .../members/{id}/$ref``.

Failure policy: unknown ids answer 404 ``Request_ResourceNotFound``; bad bodies 400 with Graph's
wording (see ``schema``); nothing is changed by a refused request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sandbox.graph import odata, paging, schema
from sandbox.graph.calls import GraphCall, Reply
from sandbox.graph.errors import GraphError, bad_request, not_found
from sandbox.graph.store import GROUP, USER, DirObject, graph_now

MAX_BINDS_PER_REQUEST = 20
COLLECTION = {USER: "users", GROUP: "groups"}


def getter(obj: DirObject) -> odata.Getter:
    props = obj.props

    def get(name: str) -> Any:
        if name == "id":
            return obj.id
        if name == "deletedDateTime":
            return obj.deleted
        return props.get(name, [] if name in schema.LIST_DEFAULTS else None)

    return get


def _known(kind: str) -> list[str]:
    return list(schema.properties_of(kind))


def _with_type(obj: DirObject, select: tuple[str, ...] | None) -> dict[str, Any]:
    return {"@odata.type": f"#{schema.type_name(obj.kind)}", **schema.project(obj, select)}


def _deleted_view(obj: DirObject, select: tuple[str, ...] | None) -> dict[str, Any]:
    out = schema.project(obj, select)
    if not select:
        out["deletedDateTime"] = obj.deleted
    return out


def _find(call: GraphCall, kind: str, key: str) -> DirObject:
    obj = call.tenant.find(kind, key)
    if obj is None:
        raise not_found(key)
    return obj


# --- reading -------------------------------------------------------------------------------------


def _object_listing(call: GraphCall, kind: str) -> paging.Listing:
    return paging.Listing(
        known=_known(kind),
        entity=schema.type_name(kind),
        context=f"{call.base_url}/$metadata#{COLLECTION[kind]}",
        render=schema.project,
        getter=getter,
    )


def list_objects(call: GraphCall, kind: str) -> Reply:
    return paging.by_ordinal(
        call, lambda after: call.tenant.live(kind, after=after), _object_listing(call, kind)
    )


def count_objects(call: GraphCall, kind: str) -> Reply:
    """``GET /users/$count``, ``GET /groups/$count`` ("List users": "Get only a count")."""
    return paging.count(call, call.tenant.live(kind), _object_listing(call, kind))


def get_object(call: GraphCall, kind: str, key: str) -> Reply:
    odata.check_options(call.args)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, _known(kind), schema.type_name(kind))
    with call.tenant.lock:
        obj = _find(call, kind, key)
        context = f"{call.base_url}/$metadata#{COLLECTION[kind]}/$entity"
        body = {"@odata.context": odata.context_with_select(context, select)}
        body.update(schema.project(obj, select))
    return Reply(200, body)


def _linked(call: GraphCall, group_id: str, owners: bool, cast: str | None) -> list[DirObject]:
    with call.tenant.lock:
        group = _find(call, GROUP, group_id)
        linked = call.tenant.visible_owners(group) if owners else call.tenant.visible_members(group)
    return [o for o in linked if cast is None or o.kind == cast]


def _link_listing(call: GraphCall, cast: str | None) -> paging.Listing:
    """Members as directory objects, or (an OData cast, ``/members/microsoft.graph.user``) as
    users or groups only, with that type's properties and context."""
    if cast is None:
        known: list[str] = [*schema.USER_PROPERTIES, *schema.GROUP_PROPERTIES]
        entity, context = "microsoft.graph.directoryObject", "directoryObjects"
    else:
        known, entity, context = _known(cast), schema.type_name(cast), COLLECTION[cast]
    return paging.Listing(
        known=known,
        entity=entity,
        context=f"{call.base_url}/$metadata#{context}",
        render=_with_type,
        getter=getter,
    )


def list_links(call: GraphCall, group_id: str, *, owners: bool, cast: str | None = None) -> Reply:
    linked = _linked(call, group_id, owners, cast)
    return paging.by_position(call, linked, _link_listing(call, cast))


def count_links(
    call: GraphCall, key: str, *, owners: bool = False, cast: str | None = None
) -> Reply:
    """``GET /groups/{id}/members/$count`` (and owners, and after a cast), as "Use query
    parameters" lists."""
    linked = _linked(call, key, owners, cast)
    return paging.count(call, linked, _link_listing(call, cast))


# --- writing -------------------------------------------------------------------------------------


def _domain_of(upn: str) -> str:
    local, at, domain = upn.rpartition("@")
    if not at or not local or not domain:
        raise bad_request(
            "Invalid value specified for property 'userPrincipalName' of resource 'User'."
        )
    return domain


def create_user(call: GraphCall) -> Reply:
    body = call.json()
    changes = schema.validate_write(USER, body, creating=True)
    if not isinstance(changes.pop("passwordProfile", None), dict):
        raise bad_request(
            "Invalid value specified for property 'passwordProfile' of resource 'User'."
        )
    upn = str(changes["userPrincipalName"])
    if not call.tenant.verified_domain(_domain_of(upn)):
        raise bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one "
            "of the verified domain names in your organization."
        )
    changes.setdefault("userType", "Member")
    props = {k: v for k, v in changes.items() if v is not None}
    obj = call.tenant.add_user(props)
    body = {"@odata.context": f"{call.base_url}/$metadata#users/$entity"}
    body.update(schema.project(obj, None))
    return Reply(201, body, {"Location": _location(call, obj)})


def _location(call: GraphCall, obj: DirObject) -> str:
    """The ``Location`` of a created user or group, as Graph sends it (a directory URL:
    ``https://graph.microsoft.com/v2/{tenant}/directoryObjects/{id}/Microsoft.DirectoryServices.User``,
    Microsoft's answer on microsoft-graph-docs issue 7589, "no Location header in response")."""
    root = call.base_url.rsplit("/", 1)[0]
    kind = "User" if obj.kind == USER else "Group"
    return (
        f"{root}/v2/{call.tenant.id}/directoryObjects/{obj.id}/Microsoft.DirectoryServices.{kind}"
    )


def _bind_ids(value: Any, prop: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"Invalid value specified for property '{prop}'.")
    if len(value) > MAX_BINDS_PER_REQUEST:
        raise bad_request(
            f"The request contains more than {MAX_BINDS_PER_REQUEST} references in '{prop}'."
        )
    return [ref.rstrip("/").rsplit("/", 1)[-1] for ref in value]


def _resolve_binds(
    call: GraphCall, body: dict[str, Any]
) -> tuple[list[DirObject], list[DirObject]]:
    members: list[DirObject] = []
    owners: list[DirObject] = []
    for prop, target in (("members@odata.bind", members), ("owners@odata.bind", owners)):
        if prop in body:
            for obj_id in _bind_ids(body[prop], prop):
                obj = call.tenant.visible(obj_id)
                if obj is None or (target is owners and obj.kind != USER):
                    raise not_found(obj_id)
                target.append(obj)
    return members, owners


def create_group(call: GraphCall) -> Reply:
    body = call.json()
    changes = schema.validate_write(GROUP, body, creating=True)
    members, owners = _resolve_binds(call, body)
    props = {k: v for k, v in changes.items() if v is not None}
    props.setdefault("groupTypes", [])
    if "Unified" in props["groupTypes"]:
        address = f"{props['mailNickname']}@{call.tenant.domain}"
        props.setdefault("visibility", "Public")
        props.update(mail=address, proxyAddresses=[f"SMTP:{address}"], renewedDateTime=graph_now())
    obj = call.tenant.add_group(props)
    for owner in owners:
        call.tenant.add_owner(obj, owner)
    for member in members:
        call.tenant.add_member(obj, member)
    body_out = {"@odata.context": f"{call.base_url}/$metadata#groups/$entity"}
    body_out.update(schema.project(obj, None))
    return Reply(201, body_out, {"Location": _location(call, obj)})


def update_object(call: GraphCall, kind: str, key: str) -> Reply:
    body = call.json()
    changes = schema.validate_write(kind, body, creating=False)
    obj = _find(call, kind, key)
    if kind == USER:
        changes.pop("passwordProfile", None)
        upn = changes.get("userPrincipalName")
        if upn and not call.tenant.verified_domain(_domain_of(str(upn))):
            raise bad_request(
                "The domain portion of the userPrincipalName property is invalid. You must use "
                "one of the verified domain names in your organization."
            )
    members, owners = _resolve_binds(call, body) if kind == GROUP else ([], [])
    if changes:
        call.tenant.update(obj, changes)
    for owner in owners:
        call.tenant.add_owner(obj, owner)
    for member in members:
        call.tenant.add_member(obj, member)
    return Reply(204)


def delete_object(call: GraphCall, kind: str, key: str) -> Reply:
    with call.tenant.lock:
        obj = _find(call, kind, key)
        call.tenant.soft_delete(obj)
    return Reply(204)


def add_link(call: GraphCall, group_id: str, *, owners: bool) -> Reply:
    body = call.json()
    ref = body.get("@odata.id")
    if not isinstance(ref, str) or "/" not in ref:
        raise GraphError(
            400, "BadRequest", "Invalid URL format specified in @odata.id in the request body."
        )
    target_id = ref.rstrip("/").rsplit("/", 1)[-1]
    with call.tenant.lock:
        group = _find(call, GROUP, group_id)
        target = call.tenant.visible(target_id)
        if target is None or (owners and target.kind != USER):
            raise not_found(target_id)
        if owners:
            call.tenant.add_owner(group, target)
        else:
            call.tenant.add_member(group, target)
    return Reply(204)


def remove_link(call: GraphCall, group_id: str, target_id: str, *, owners: bool) -> Reply:
    with call.tenant.lock:
        group = _find(call, GROUP, group_id)
        if owners:
            call.tenant.remove_owner(group, target_id)
        else:
            call.tenant.remove_member(group, target_id)
    return Reply(204)


# --- recycle bin ---------------------------------------------------------------------------------


def _deleted(call: GraphCall, kind: str, after: int = 0) -> Iterator[DirObject]:
    return (o for o in call.tenant.all_of(kind, after=after) if o.deleted is not None)


def _deleted_listing(call: GraphCall, kind: str) -> paging.Listing:
    return paging.Listing(
        known=_known(kind),
        entity=schema.type_name(kind),
        # "List deletedItems": "@odata.context": "...$metadata#groups" for deleted groups
        context=f"{call.base_url}/$metadata#{COLLECTION[kind]}",
        render=_deleted_view,
        getter=getter,
    )


def list_deleted(call: GraphCall, kind: str) -> Reply:
    return paging.by_ordinal(
        call, lambda after: _deleted(call, kind, after), _deleted_listing(call, kind)
    )


def count_deleted(call: GraphCall, kind: str) -> Reply:
    """``GET /directory/deletedItems/microsoft.graph.user/$count`` (the SDK's ``count``)."""
    return paging.count(call, _deleted(call, kind), _deleted_listing(call, kind))


def _find_deleted(call: GraphCall, obj_id: str) -> DirObject:
    obj = call.tenant.objects.get(obj_id)
    if obj is None or obj.deleted is None:
        raise not_found(obj_id)
    return obj


def get_deleted(call: GraphCall, key: str) -> Reply:
    odata.check_options(call.args)
    select = odata.parse_select(call.args)
    with call.tenant.lock:
        obj = _find_deleted(call, key)
        if select:
            schema.check_select(select, _known(obj.kind), schema.type_name(obj.kind))
        body = {
            "@odata.context": f"{call.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": f"#{schema.type_name(obj.kind)}",
        }
        body.update(_deleted_view(obj, select))
    return Reply(200, body)


def restore_deleted(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        obj = _find_deleted(call, key)
        call.tenant.restore(obj)
        body = {
            "@odata.context": f"{call.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": f"#{schema.type_name(obj.kind)}",
        }
        body.update(schema.project(obj, None))
    return Reply(200, body)


def purge_deleted(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        call.tenant.purge(_find_deleted(call, key))
    return Reply(204)
