"""The education API (``/education/users``, ``/classes``, ``/schools``), the new SDS's view.

Every user of the tenant is an education user; those SDS did not create have ``primaryRole``
``none``. Education classes are the SDS class groups (same id); a class's ``teachers`` are the
group's owners, its ``members`` the group's members. Paging, ``$select`` and ``$filter`` work
as on the directory endpoints (nested paths like ``student/grade`` included).

Failure policy: unknown ids answer 404 ``Request_ResourceNotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sandbox.graph import odata, paging, schema
from sandbox.graph.calls import GraphCall, Reply
from sandbox.graph.errors import not_found
from sandbox.graph.store import GROUP, USER, DirObject, School

USER_ENTITY = "microsoft.graph.educationUser"
CLASS_ENTITY = "microsoft.graph.educationClass"
SCHOOL_ENTITY = "microsoft.graph.educationSchool"


@dataclass(frozen=True, slots=True)
class _View:
    """One education collection: its type, fields, URL segment and how an entry is built.

    Lists and single reads of users, classes and schools differ only in these.
    """

    entity: str
    fields: tuple[str, ...]
    segment: str
    build: Callable[[Any], dict[str, Any]]

    def listing(self, call: GraphCall) -> paging.Listing:
        build = self.build
        return paging.Listing(
            known=self.fields,
            entity=self.entity,
            context=f"{call.base_url}/$metadata#education/{self.segment}",
            render=lambda obj, select: schema.pick(build(obj), select),
            getter=lambda obj: odata.getter_for(build(obj)),
        )


USERS = _View(USER_ENTITY, schema.EDUCATION_USER_FIELDS, "users", schema.education_user)
CLASSES = _View(CLASS_ENTITY, schema.EDUCATION_CLASS_FIELDS, "classes", schema.education_class)
SCHOOLS = _View(SCHOOL_ENTITY, schema.EDUCATION_SCHOOL_FIELDS, "schools", schema.education_school)


def _classes(call: GraphCall, after: int) -> Any:
    return (g for g in call.tenant.live(GROUP, after=after) if g.edu is not None)


def _school_ids(obj: DirObject) -> Collection[str]:
    """The ids of the schools an SDS user or class belongs to (none for other objects)."""
    ids: Collection[str] = (obj.edu or {}).get("schools", ())
    return ids


def _schools_of(call: GraphCall, obj: DirObject) -> list[School]:
    return [call.tenant.schools[s] for s in _school_ids(obj) if s in call.tenant.schools]


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


def _single(call: GraphCall, view: _View, find: Callable[[GraphCall, str], Any], key: str) -> Reply:
    """One entry: found and built under the tenant's lock, so 404 comes before a bad option."""
    with call.tenant.lock:
        full = view.build(find(call, key))
    odata.check_options(call.args)
    select = odata.parse_select(call.args)
    if select:
        schema.check_select(select, view.fields, view.entity)
    context = f"{call.base_url}/$metadata#education/{view.segment}/$entity"
    return Reply(200, {"@odata.context": context, **schema.pick(full, select)})


def _page(call: GraphCall, view: _View, entries: list[Any]) -> Reply:
    return paging.by_position(call, entries, view.listing(call))


def list_users(call: GraphCall) -> Reply:
    return paging.by_ordinal(
        call, lambda after: call.tenant.live(USER, after=after), USERS.listing(call)
    )


def count_users(call: GraphCall) -> Reply:
    return paging.count(call, call.tenant.live(USER), USERS.listing(call))


def count_classes(call: GraphCall) -> Reply:
    return paging.count(call, _classes(call, 0), CLASSES.listing(call))


def count_schools(call: GraphCall) -> Reply:
    return paging.count(call, list(call.tenant.schools.values()), SCHOOLS.listing(call))


def get_user(call: GraphCall, key: str) -> Reply:
    return _single(call, USERS, _find_user, key)


def user_classes(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        user = _find_user(call, key)
        groups = [call.tenant.visible(g) for g in sorted(user.member_of | user.owner_of)]
        classes = [g for g in groups if g is not None and g.edu is not None]
    return _page(call, CLASSES, classes)


def user_schools(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        schools = _schools_of(call, _find_user(call, key))
    return _page(call, SCHOOLS, schools)


def list_classes(call: GraphCall) -> Reply:
    return paging.by_ordinal(call, lambda after: _classes(call, after), CLASSES.listing(call))


def get_class(call: GraphCall, key: str) -> Reply:
    return _single(call, CLASSES, _find_class, key)


def class_people(call: GraphCall, key: str, *, teachers: bool) -> Reply:
    with call.tenant.lock:
        group = _find_class(call, key)
        people = (
            call.tenant.visible_owners(group) if teachers else call.tenant.visible_members(group)
        )
        users = [p for p in people if p.kind == USER]
    return _page(call, USERS, users)


def class_schools(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        schools = _schools_of(call, _find_class(call, key))
    return _page(call, SCHOOLS, schools)


def list_schools(call: GraphCall) -> Reply:
    with call.tenant.lock:
        schools = list(call.tenant.schools.values())
    return _page(call, SCHOOLS, schools)


def get_school(call: GraphCall, key: str) -> Reply:
    return _single(call, SCHOOLS, _find_school, key)


def school_users(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        school = _find_school(call, key)
        users = [u for u in call.tenant.live(USER) if school.id in _school_ids(u)]
    return _page(call, USERS, users)


def school_classes(call: GraphCall, key: str) -> Reply:
    with call.tenant.lock:
        school = _find_school(call, key)
        classes = [g for g in _classes(call, 0) if school.id in _school_ids(g)]
    return _page(call, CLASSES, classes)
