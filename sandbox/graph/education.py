"""The education API (``/education/users``, ``/classes``, ``/schools``), the new SDS's view.

Every user of the tenant is an education user; those SDS did not create have ``primaryRole``
``none``. Education classes are the SDS class groups (same id); a class's ``teachers`` are the
group's owners, its ``members`` the group's members. Paging, ``$select`` and ``$filter`` work
as on the directory endpoints (nested paths like ``student/grade`` included).

Failure policy: unknown ids answer 404 ``Request_ResourceNotFound``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.graph import odata, paging, schema
from sandbox.graph.calls import GraphCall, Reply
from sandbox.graph.errors import not_found
from sandbox.graph.store import GROUP, USER, DirObject, School

USER_ENTITY = "microsoft.graph.educationUser"
CLASS_ENTITY = "microsoft.graph.educationClass"
SCHOOL_ENTITY = "microsoft.graph.educationSchool"


def _render(build: Callable[[Any], dict[str, Any]]) -> paging.Render:
    return lambda obj, select: schema.pick(build(obj), select)


def _get(build: Callable[[Any], dict[str, Any]]) -> Callable[[Any], odata.Getter]:
    return lambda obj: odata.getter_for(build(obj))


def _classes(call: GraphCall, after: int) -> Any:
    return (g for g in call.tenant.live(GROUP, after=after) if g.edu is not None)


def _find_user(call: GraphCall, key: str) -> DirObject:
    obj = call.tenant.find(USER, key)
    if obj is None:
        raise not_found(key)
    return obj


def _find_class(call: GraphCall, key: str) -> DirObject:
    obj = call.tenant.find(GROUP, key)
    if obj is None or obj.edu is None:
        raise not_found(key)
    return obj


def _find_school(call: GraphCall, key: str) -> School:
    school = call.tenant.schools.get(key)
    if school is None:
        raise not_found(key)
    return school


def _single(
    call: GraphCall, entity: str, fields: tuple[str, ...], full: dict[str, Any], context: str
) -> Reply:
    odata.check_options(call.args)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, fields, entity)
    return Reply(200, {"@odata.context": context, **schema.pick(full, select)})


def _users_page(call: GraphCall, users: list[DirObject]) -> Reply:
    return paging.by_position(
        call,
        users,
        known=schema.EDUCATION_USER_FIELDS,
        entity=USER_ENTITY,
        context=f"{call.base_url}/$metadata#education/users",
        render=_render(schema.education_user),
        getter=_get(schema.education_user),
    )


def _classes_page(call: GraphCall, classes: list[DirObject]) -> Reply:
    return paging.by_position(
        call,
        classes,
        known=schema.EDUCATION_CLASS_FIELDS,
        entity=CLASS_ENTITY,
        context=f"{call.base_url}/$metadata#education/classes",
        render=_render(schema.education_class),
        getter=_get(schema.education_class),
    )


def _schools_page(call: GraphCall, schools: list[School]) -> Reply:
    return paging.by_position(
        call,
        schools,
        known=schema.EDUCATION_SCHOOL_FIELDS,
        entity=SCHOOL_ENTITY,
        context=f"{call.base_url}/$metadata#education/schools",
        render=_render(schema.education_school),
        getter=_get(schema.education_school),
    )


def list_users(call: GraphCall) -> Reply:
    return paging.by_ordinal(
        call,
        lambda after: call.tenant.live(USER, after=after),
        known=schema.EDUCATION_USER_FIELDS,
        entity=USER_ENTITY,
        context=f"{call.base_url}/$metadata#education/users",
        render=_render(schema.education_user),
        getter=_get(schema.education_user),
    )


def get_user(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        full = schema.education_user(_find_user(call, key))
    context = f"{call.base_url}/$metadata#education/users/$entity"
    return _single(call, USER_ENTITY, schema.EDUCATION_USER_FIELDS, full, context)


def user_classes(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        user = _find_user(call, key)
        groups = [call.tenant.visible(g) for g in sorted(user.member_of | user.owner_of)]
        classes = [g for g in groups if g is not None and g.edu is not None]
    return _classes_page(call, classes)


def user_schools(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        user = _find_user(call, key)
        ids = (user.edu or {}).get("schools", [])
        schools = [call.tenant.schools[s] for s in ids if s in call.tenant.schools]
    return _schools_page(call, schools)


def list_classes(call: GraphCall) -> Reply:
    return paging.by_ordinal(
        call,
        lambda after: _classes(call, after),
        known=schema.EDUCATION_CLASS_FIELDS,
        entity=CLASS_ENTITY,
        context=f"{call.base_url}/$metadata#education/classes",
        render=_render(schema.education_class),
        getter=_get(schema.education_class),
    )


def get_class(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        full = schema.education_class(_find_class(call, key))
    context = f"{call.base_url}/$metadata#education/classes/$entity"
    return _single(call, CLASS_ENTITY, schema.EDUCATION_CLASS_FIELDS, full, context)


def class_people(call: GraphCall, key: str, *, teachers: bool) -> Reply:
    with call.tenant.lock:
        group = _find_class(call, key)
        people = (
            call.tenant.visible_owners(group) if teachers else call.tenant.visible_members(group)
        )
        users = [p for p in people if p.kind == USER]
    return _users_page(call, users)


def class_schools(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        group = _find_class(call, key)
        ids = (group.edu or {}).get("schools", [])
        schools = [call.tenant.schools[s] for s in ids if s in call.tenant.schools]
    return _schools_page(call, schools)


def list_schools(call: GraphCall) -> Reply:
    with call.tenant.lock:
        schools = list(call.tenant.schools.values())
    return _schools_page(call, schools)


def get_school(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        full = schema.education_school(_find_school(call, key))
    context = f"{call.base_url}/$metadata#education/schools/$entity"
    return _single(call, SCHOOL_ENTITY, schema.EDUCATION_SCHOOL_FIELDS, full, context)


def school_users(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        school = _find_school(call, key)
        users = [
            u
            for u in call.tenant.live(USER)
            if u.edu is not None and school.id in u.edu.get("schools", ())
        ]
    return _users_page(call, users)


def school_classes(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        school = _find_school(call, key)
        classes = [g for g in _classes(call, 0) if school.id in (g.edu or {}).get("schools", ())]
    return _classes_page(call, classes)
