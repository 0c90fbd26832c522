"""Reading Microsoft 365 state for the sync: a whole tenant, or one user or class.

Everything is read through ``$batch`` calls of up to 20 requests (``GraphClient.batcher``):
the listings of a full read start together, their further pages ride in later batches, and the
members and owners of the classes in scope fill the remaining places. A real-time read of one
object is a single ``$batch`` call (one more only for the name of a school that the classic SDS
attribute alone names: ``common.graph.schools``).

Over 400 lines because the whole-tenant read and the one-object reads are two ways of reading
the same things: they share the field lists, the listings and the classification calls
(``common.graph.classify``), which is what makes both paths decide alike.

Failure policy: any listing or read that fails raises (``GraphUnavailable``, ``Throttled``,
``GraphAuthError``...); a partial listing never comes back, so every ``MicrosoftState``
returned here is whole. Only a 404 of the object being read is an
answer (soft-deleted or purged), not a failure.

Long because the whole-tenant read and the one-object reads must ask Graph the same questions
(one set of fields, listings and classification calls) so that both paths plan from equal
states, and ``least_requests`` sits next to the read whose request count it bounds.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote

from common.graph import sds
from common.graph.answers import translate
from common.graph.batch import Batcher
from common.graph.classify import (
    class_in_scope,
    class_members,
    is_sds_class,
    make_class,
    make_user,
    school_decides,
    user_in_scope,
)
from common.graph.client import MAX_PAGE_SIZE, GraphClient, Params
from common.graph.schemas import (
    DIRECTORY_REFS,
    EDUCATION_CLASSES,
    EDUCATION_SCHOOLS,
    EDUCATION_USERS,
    GROUPS,
    USERS,
    EducationClass,
    EducationSchool,
    EducationUser,
    GraphGroup,
    GraphUser,
    Loader,
)
from common.graph.schools import FIELDS as SCHOOL_FIELDS
from common.graph.schools import school_names, with_classic_school
from common.model import MicrosoftState, MsClass, MsUser, Scope

T = TypeVar("T")

USER_FIELDS = (
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
    "userType",
    *sds.USER_ATTRIBUTES,
)
EDUCATION_USER_FIELDS = ("id", "primaryRole", "student")
GROUP_FIELDS = ("id", "displayName", "mailNickname", *sds.GROUP_ATTRIBUTES)
EDUCATION_CLASS_FIELDS = ("id", "displayName", "mailNickname", "externalId")
#: classic SDS classes are the groups whose object type says so (directory extensions filter)
SDS_GROUP_FILTER = f"{sds.OBJECT_TYPE} eq '{sds.OBJECT_TYPE_SECTION}'"
DELETED_USERS = "/directory/deletedItems/microsoft.graph.user"


def _listing(*fields: str) -> Params:
    return {"$select": ",".join(fields), "$top": MAX_PAGE_SIZE}


def _select(*fields: str) -> Params:
    return {"$select": ",".join(fields)}


# --- the whole tenant ---------------------------------------------------------------------------


def read_tenant(client: GraphClient, scope: Scope) -> MicrosoftState:
    """Every SDS student, teacher and class of the tenant in ``scope``, with what lies outside.

    ``out_of_scope_user_ids`` holds every other user that exists (staff, guests, other schools,
    excluded); ``soft_deleted_user_ids`` the users in the recycle bin; ``out_of_scope_class_ids``
    the SDS classes outside scope. A deleted class is simply absent: in a whole-tenant state the
    planner removes a managed group whose class is not in ``classes`` either way, so the recycle
    bin of groups is not read. Class members are the in-scope students and teachers among the
    group's members and owners.
    """
    read = _TenantRead(client, scope)
    read.start()
    read.batcher.run()
    return read.result()


@dataclass
class _TenantRead:
    client: GraphClient
    scope: Scope
    batcher: Batcher = field(init=False)
    users: list[GraphUser] = field(default_factory=list)
    education_users: dict[str, EducationUser] = field(default_factory=dict)
    groups: dict[str, GraphGroup] = field(default_factory=dict)
    education_classes: dict[str, EducationClass] = field(default_factory=dict)
    deleted_user_ids: set[str] = field(default_factory=set)
    #: user id -> SIS ids of its education schools (tuples: most users have one school)
    user_schools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    class_schools: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: SIS id -> display name of every education school (from the schools listing itself)
    school_names: dict[str, str | None] = field(default_factory=dict)
    classes: dict[str, MsClass] = field(default_factory=dict)
    out_of_scope_class_ids: set[str] = field(default_factory=set)
    members: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: listings that decide which classes exist and their schools, still under way
    pending_class_listings: int = 0

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.client)

    def start(self) -> None:
        b = self.batcher
        b.listing("/users", _ignore, params=_listing(*USER_FIELDS), on_page=self._on_users)
        b.listing(
            "/education/users",
            _ignore,
            params=_listing(*EDUCATION_USER_FIELDS),
            on_page=self._on_education_users,
        )
        b.listing(DELETED_USERS, self._on_deleted_users, params=_listing("id"))
        self._class_listing("/education/schools", self._on_schools, _listing(*SCHOOL_FIELDS))
        self._class_listing(
            "/groups", self._on_groups, {**_listing(*GROUP_FIELDS), "$filter": SDS_GROUP_FILTER}
        )
        self._class_listing(
            "/education/classes",
            self._on_education_classes,
            _listing(*EDUCATION_CLASS_FIELDS),
        )

    def _class_listing(
        self,
        url: str,
        on_items: Callable[[list[dict[str, Any]]], None],
        params: Params,
        *,
        missing_ok: bool = False,
    ) -> None:
        self.pending_class_listings += 1

        def done(items: list[dict[str, Any]] | None) -> None:
            on_items(items or [])
            self.pending_class_listings -= 1
            if self.pending_class_listings == 0:
                self._classes_known()

        self.batcher.listing(url, done, params=params, missing_ok=missing_ok)

    # --- answers --------------------------------------------------------------------------------

    def _on_users(self, page: list[dict[str, Any]]) -> None:
        self.users.extend(USERS.many(page))

    def _on_education_users(self, page: list[dict[str, Any]]) -> None:
        self.education_users.update((u.id, u) for u in EDUCATION_USERS.many(page))

    def _on_deleted_users(self, items: list[dict[str, Any]] | None) -> None:
        self.deleted_user_ids = {r.id for r in DIRECTORY_REFS.many(items or [])}

    def _on_schools(self, items: list[dict[str, Any]]) -> None:
        for school in EDUCATION_SCHOOLS.many(items):
            self._school_listings(school)

    def _school_listings(self, school: EducationSchool) -> None:
        sis_id = sys.intern(school.external_id or school.id)
        self.school_names[sis_id] = school.display_name
        base = f"/education/schools/{quote(school.id)}"

        def on_users(page: list[dict[str, Any]]) -> None:
            for ref in DIRECTORY_REFS.many(page):
                self.user_schools[ref.id] = (*self.user_schools.get(ref.id, ()), sis_id)

        def on_classes(items: list[dict[str, Any]]) -> None:
            for ref in DIRECTORY_REFS.many(items):
                self.class_schools[ref.id].add(sis_id)

        # a school deleted while we read simply has no users or classes
        self.batcher.listing(
            base + "/users", _ignore, params=_listing("id"), missing_ok=True, on_page=on_users
        )
        self._class_listing(base + "/classes", on_classes, _listing("id"), missing_ok=True)

    def _on_groups(self, items: list[dict[str, Any]]) -> None:
        self.groups = {g.id: g for g in GROUPS.many(items)}

    def _on_education_classes(self, items: list[dict[str, Any]]) -> None:
        self.education_classes = {c.id: c for c in EDUCATION_CLASSES.many(items)}

    def _classes_known(self) -> None:
        """Every class and its school is known: decide scope, then read members of those in it."""
        for class_id in sorted(self.groups.keys() | self.education_classes.keys()):
            group = self.groups.get(class_id)
            education = self.education_classes.get(class_id)
            if not is_sds_class(group, education):
                continue
            cls = make_class(
                group,
                education,
                self.class_schools.get(class_id, ()),
                school_names=self.school_names,
            )
            if cls is None:
                continue
            if class_in_scope(cls, self.scope):
                self.classes[class_id] = cls
                self._member_listings(class_id)
            else:
                self.out_of_scope_class_ids.add(class_id)

    def _member_listings(self, class_id: str) -> None:
        base = f"/groups/{quote(class_id)}"

        def on_refs(items: list[dict[str, Any]] | None) -> None:
            if items is None:  # deleted while we read: it is gone, like one deleted before
                self.classes.pop(class_id, None)
                return
            self.members[class_id].update(r.id for r in DIRECTORY_REFS.many(items) if r.is_user)

        for relation in ("members", "owners"):
            self.batcher.listing(
                f"{base}/{relation}", on_refs, params=_listing("id"), missing_ok=True
            )

    # --- the state ------------------------------------------------------------------------------

    def result(self) -> MicrosoftState:
        users: dict[str, MsUser] = {}
        outside: set[str] = set()
        for user in self.users:
            ms = make_user(
                user,
                self.education_users.get(user.id),
                self.user_schools.get(user.id, ()),
                self.school_names,
            )
            if ms is not None and user_in_scope(ms, self.scope):
                users[ms.id] = ms
            else:
                outside.add(user.id)
        classes = {
            class_id: _with_members(cls, class_members(self.members.get(class_id, ()), users))
            for class_id, cls in self.classes.items()
        }
        return MicrosoftState(
            users=users,
            classes=classes,
            out_of_scope_user_ids=frozenset(outside),
            soft_deleted_user_ids=frozenset(self.deleted_user_ids),
            out_of_scope_class_ids=frozenset(self.out_of_scope_class_ids),
        )


def _ignore(_: object) -> None:
    return None


def _with_members(cls: MsClass, member_ids: Iterable[str]) -> MsClass:
    return replace(cls, member_ids=frozenset(member_ids))


# --- one object ---------------------------------------------------------------------------------


class _Answers:
    """What one ``$batch`` of single reads and listings answered, by name."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self.batcher = Batcher(client)
        self.single: dict[str, tuple[int, Any, str]] = {}
        self.lists: dict[str, list[dict[str, Any]] | None] = {}

    def get(self, name: str, path: str, params: Params) -> None:
        url = self.client.url(path, params)

        def done(status: int, body: Any) -> None:
            self.single[name] = (status, body, url)

        self.batcher.request(url, done)

    def listing(self, name: str, path: str, params: Params) -> None:
        def done(items: list[dict[str, Any]] | None) -> None:
            self.lists[name] = items

        self.batcher.listing(path, done, params=params, missing_ok=True)

    def education(self, path: str, fields: Iterable[str]) -> None:
        """Ask for the object's education view at ``path`` and its schools (scope is by school)."""
        self.get("education", path, _select(*fields))
        self.listing("schools", f"{path}/schools", _listing(*SCHOOL_FIELDS))

    def recycle_bin(self, key: str) -> None:
        """Ask for the object in the recycle bin, which tells a soft-deleted one from a purged."""
        self.get("deleted", f"/directory/deletedItems/{key}", _select("id"))

    def run(self) -> None:
        self.batcher.run()

    def found(self, name: str) -> Mapping[str, Any] | None:
        """The object answered, ``None`` on 404; any other failure raises."""
        status, body, url = self.single[name]
        if status == 404:
            return None
        if status >= 400 or not isinstance(body, Mapping):
            raise translate(status, body, f"GET {url}", self.client.tenant_id)
        return body

    def found_as(self, name: str, loader: Loader[T]) -> T | None:
        """The object answered, read by ``loader``; ``None`` on 404."""
        raw = self.found(name)
        return loader.one(raw) if raw is not None else None

    def in_recycle_bin(self) -> bool:
        """Whether a missing object is soft-deleted (restorable) rather than purged."""
        return self.found("deleted") is not None

    def listed(self, name: str) -> list[dict[str, Any]]:
        """A listing's items; none where it was not found."""
        return self.lists.get(name) or []

    def school_ids(self) -> Iterator[str]:
        """The SIS ids of the object's education schools (the ids a scope names)."""
        return (s.external_id or s.id for s in EDUCATION_SCHOOLS.many(self.listed("schools")))

    def school_names(self) -> dict[str, str | None]:
        """SIS id -> display name of the object's education schools."""
        return school_names(EDUCATION_SCHOOLS.many(self.listed("schools")))


def read_user(client: GraphClient, scope: Scope, user_id: str) -> MicrosoftState:
    """One user as the sync sees it, in a single ``$batch`` call.

    In scope: in ``users``; existing but outside scope: ``out_of_scope_user_ids``; in the
    recycle bin: ``soft_deleted_user_ids``; gone for good: in neither (the planner deletes).
    """
    key = quote(user_id)
    answers = _Answers(client)
    answers.get("user", f"/users/{key}", _select(*USER_FIELDS))
    answers.education(f"/education/users/{key}", EDUCATION_USER_FIELDS)
    answers.recycle_bin(key)
    answers.run()
    state = _Single(users={}, scope_user_ids=frozenset({user_id}))
    user = answers.found_as("user", USERS)
    if user is None:
        if answers.in_recycle_bin():
            state.soft_deleted_user_ids.add(user_id)
        return state.freeze()
    names = with_classic_school(client, answers.school_names(), user.sds_school_id)
    education = answers.found_as("education", EDUCATION_USERS)
    ms = make_user(user, education, answers.school_ids(), names)
    if ms is not None and user_in_scope(ms, scope):
        state.users[ms.id] = ms
    else:
        state.out_of_scope_user_ids.add(user.id)
    return state.freeze()


def read_groups_of(client: GraphClient, user_id: str) -> frozenset[str]:
    """The ids of the groups a user is a direct member or owner of in Microsoft 365.

    Graph cost: one ``$batch`` call of two requests (``/users/{id}/memberOf/microsoft.graph.group``
    and ``/users/{id}/ownedObjects/microsoft.graph.group``, ``$select=id``, pages of 999); a
    further round only for a user in more than 999 groups. A user Graph does not find has no
    groups (an empty set).
    """
    key = quote(user_id)
    answers = _Answers(client)
    for relation in ("memberOf", "ownedObjects"):
        answers.listing(relation, f"/users/{key}/{relation}/microsoft.graph.group", _listing("id"))
    answers.run()
    return frozenset(
        ref.id
        for relation in ("memberOf", "ownedObjects")
        for ref in DIRECTORY_REFS.many(answers.listed(relation))
    )


def read_class(client: GraphClient, scope: Scope, group_id: str) -> MicrosoftState:
    """One class with its members, in one ``$batch`` call (two when the scope names schools
    and a member's school is only known to the education API).

    An SDS class in scope: in ``classes``; its ``member_ids`` are the students and teachers in
    scope among the group's members and owners, decided by the same classification as a full
    read (``classify.class_members``). The users themselves are not part of the state
    (``users`` stays empty; read them with ``read_user``). A group outside scope, no SDS class,
    or in the recycle bin: ``out_of_scope_class_ids``; gone for good: neither (the planner
    deletes).
    """
    key = quote(group_id)
    people = _listing(*USER_FIELDS)
    roles = _listing("id", "primaryRole")
    answers = _Answers(client)
    answers.get("group", f"/groups/{key}", _select(*GROUP_FIELDS))
    answers.education(f"/education/classes/{key}", EDUCATION_CLASS_FIELDS)
    answers.listing("members", f"/groups/{key}/members", people)
    answers.listing("owners", f"/groups/{key}/owners", people)
    answers.listing("students", f"/education/classes/{key}/members", roles)
    answers.listing("teachers", f"/education/classes/{key}/teachers", roles)
    answers.recycle_bin(key)
    answers.run()
    state = _Single(classes={}, scope_class_ids=frozenset({group_id}))
    group = answers.found_as("group", GROUPS)
    if group is None:
        if answers.in_recycle_bin():
            state.out_of_scope_class_ids.add(group_id)
        return state.freeze()
    education = answers.found_as("education", EDUCATION_CLASSES)
    names = with_classic_school(client, answers.school_names(), group.sds_school_id)
    cls = make_class(group, education, answers.school_ids(), school_names=names)
    if cls is not None and class_in_scope(cls, scope):
        members = _members_in_scope(client, scope, answers)
        state.classes[cls.id] = _with_members(cls, class_members(members, members))
    else:
        state.out_of_scope_class_ids.add(group.id)
    return state.freeze()


def _members_in_scope(client: GraphClient, scope: Scope, answers: _Answers) -> dict[str, MsUser]:
    """The students and teachers in scope among a group's members and owners, classified as a
    full read classifies them; the education schools of a member are read only when the scope
    depends on them."""
    education = {
        u.id: u
        for name in ("students", "teachers")
        for u in EDUCATION_USERS.many(answers.listed(name))
    }
    raw = [*answers.listed("members"), *answers.listed("owners")]
    people = {
        u.id: u
        for ref, item in zip(DIRECTORY_REFS.many(raw), raw, strict=True)
        if ref.is_user
        for u in USERS.many([item])
    }
    candidates = {
        uid: ms
        for uid, user in people.items()
        if (ms := make_user(user, education.get(uid))) is not None
    }
    undecided = [
        uid
        for uid, ms in candidates.items()
        if not user_in_scope(ms, scope) and school_decides(ms, scope)
    ]
    schools: dict[str, list[str]] = {}
    if undecided:
        more = _Answers(client)
        for uid in undecided:
            more.listing(uid, f"/education/users/{quote(uid)}/schools", _listing(*SCHOOL_FIELDS))
        more.run()
        schools = {
            uid: [s.external_id or s.id for s in EDUCATION_SCHOOLS.many(more.listed(uid))]
            for uid in undecided
        }
    in_scope: dict[str, MsUser] = {}
    for uid, first in candidates.items():
        ms = make_user(people[uid], education.get(uid), schools[uid]) if uid in schools else first
        if ms is not None and user_in_scope(ms, scope):
            in_scope[uid] = ms
    return in_scope


@dataclass
class _Single:
    users: dict[str, MsUser] = field(default_factory=dict)
    classes: dict[str, MsClass] = field(default_factory=dict)
    out_of_scope_user_ids: set[str] = field(default_factory=set)
    soft_deleted_user_ids: set[str] = field(default_factory=set)
    out_of_scope_class_ids: set[str] = field(default_factory=set)
    scope_user_ids: frozenset[str] = frozenset()
    scope_class_ids: frozenset[str] = frozenset()

    def freeze(self) -> MicrosoftState:
        return MicrosoftState(
            users=self.users,
            classes=self.classes,
            out_of_scope_user_ids=frozenset(self.out_of_scope_user_ids),
            soft_deleted_user_ids=frozenset(self.soft_deleted_user_ids),
            out_of_scope_class_ids=frozenset(self.out_of_scope_class_ids),
            scope_user_ids=self.scope_user_ids,
            scope_class_ids=self.scope_class_ids,
        )


# --- the bound ----------------------------------------------------------------------------------


def _pages(n: int) -> int:
    return max(1, math.ceil(n / MAX_PAGE_SIZE))


def least_requests(
    n_users: int, n_edu_users: int, n_groups: int, n_classes: int, n_schools: int
) -> int:
    """The fewest Graph requests a full read of a tenant can make (``read_tenant`` aims at it).

    Counted as Graph's throttling counts them: each request inside a ``$batch`` is one; the
    ``$batch`` envelope itself is not (it carries up to 20). ``n_users`` directory users,
    ``n_edu_users`` education users, ``n_groups`` SDS class groups, ``n_classes`` classes in
    scope, ``n_schools`` education schools.

    Every listing needs at least one page and one per 999 objects: users, education users,
    the recycle bin, schools, SDS groups and education classes. School membership (new SDS)
    needs each school's users and classes: at least two listings per school. Members and owners
    are two relationships Graph lists apart: two listings per class in scope (a class has fewer
    than 999 members and owners).
    """
    return (
        _pages(n_users)
        + _pages(n_edu_users)
        + 1  # the recycle bin of users
        + _pages(n_schools)
        + 2 * _pages(n_groups)  # SDS groups and education classes
        + 2 * n_schools
        + 2 * n_classes
    )
