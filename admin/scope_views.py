"""Scope: which SDS schools (chosen by tick box, with their counts), a class-name pattern, and
include and exclude lists with a class search. Every change shows its effect (how many
students, teachers and classes would be in scope, and which classes come or go) before it is
saved.

What is in scope is decided by ``common.graph.classify`` (``user_in_scope``,
``class_in_scope``), the same rules the sync applies; this module only counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from admin import preview_views
from admin.access import school_page
from admin.forms import FormProblems, class_pattern, name_list, search_text
from admin.identity import Person
from admin.pages import find_school, page
from admin.state import state
from common.graph import source
from common.graph.classify import class_in_scope, user_in_scope
from common.model import MicrosoftState, Role, Scope
from common.state.registry import Tenant

blueprint = Blueprint("scope", __name__)

MAX_CLASS_HITS = 50
MAX_CHANGED_SHOWN = 30


@dataclass(frozen=True)
class School:
    id: str
    name: str
    number: str
    students: int
    teachers: int
    classes: int


@dataclass(frozen=True)
class Effect:
    students: int
    teachers: int
    classes: int
    coming: tuple[str, ...]
    going: tuple[str, ...]


def _schools(everything: MicrosoftState, listed: list[dict[str, Any]]) -> list[School]:
    students: Counter[str] = Counter()
    teachers: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    for user in everything.users.values():
        for school_id in user.school_ids:
            (students if user.role is Role.STUDENT else teachers)[school_id] += 1
    for cls in everything.classes.values():
        if cls.school_id:
            classes[cls.school_id] += 1
    named: dict[str, dict[str, Any]] = {}
    for item in listed:
        for key in (item.get("externalId"), item.get("id")):
            if key:
                named.setdefault(str(key), item)
    # schools SDS lists without anyone in them yet are shown too
    listed_ids = {str(item.get("externalId") or item.get("id")) for item in listed}
    ids = sorted(set(students) | set(teachers) | set(classes) | listed_ids)
    schools = [
        School(
            id=school_id,
            name=str(named.get(school_id, {}).get("displayName") or school_id),
            number=str(named.get(school_id, {}).get("schoolNumber") or ""),
            students=students[school_id],
            teachers=teachers[school_id],
            classes=classes[school_id],
        )
        for school_id in ids
    ]
    return sorted(schools, key=lambda s: s.name.casefold())


def _effect(everything: MicrosoftState, scope: Scope, before: Scope) -> Effect:
    users = [u for u in everything.users.values() if user_in_scope(u, scope)]
    now = {c.id: c.display_name for c in everything.classes.values() if class_in_scope(c, scope)}
    was = {c.id: c.display_name for c in everything.classes.values() if class_in_scope(c, before)}
    return Effect(
        students=sum(1 for u in users if u.role is Role.STUDENT),
        teachers=sum(1 for u in users if u.role is Role.TEACHER),
        classes=len(now),
        coming=tuple(sorted(now[c] for c in now.keys() - was.keys())),
        going=tuple(sorted(was[c] for c in was.keys() - now.keys())),
    )


def _read(tenant: Tenant) -> tuple[MicrosoftState, list[dict[str, Any]]]:
    graph = state().services.graph(tenant.id)
    return source.read_tenant(graph, Scope()), graph.list_all("/education/schools")


def _form_scope(form: Any, problems: FormProblems, schools: list[School]) -> Scope:
    known = {s.id for s in schools}
    chosen = frozenset(s for s in form.getlist("school") if s in known)
    if form.getlist("school") and not chosen:
        problems.add("school", _("Välj bland skolorna i listan."))
    # every school ticked is the same as no school named: the scope then follows new schools
    if chosen == known:
        chosen = frozenset()
    pattern = class_pattern(form.get("class_pattern", ""), problems)
    include = name_list(form.get("include", ""), problems, "include")
    exclude = name_list(form.get("exclude", ""), problems, "exclude")
    if add := form.get("add_include", "").strip():
        include |= {add}
    if add := form.get("add_exclude", "").strip():
        exclude |= {add}
    return Scope(school_ids=chosen, class_pattern=pattern, include=include, exclude=exclude)


def _render(
    tenant: Tenant,
    person: Person,
    everything: MicrosoftState,
    schools: list[School],
    scope: Scope,
    *,
    status: int = 200,
    problems: FormProblems | None = None,
    effect: Effect | None = None,
    saved: bool = False,
) -> tuple[str, int]:
    query = search_text(request.values.get("klass"))
    hits = []
    if query:
        hits = sorted(
            (
                c
                for c in everything.classes.values()
                if query.casefold() in c.display_name.casefold()
            ),
            key=lambda c: c.display_name.casefold(),
        )[:MAX_CLASS_HITS]
    return page(
        "scope.html",
        status,
        tenant=tenant,
        person=person,
        schools=schools,
        scope=scope,
        problems=problems or FormProblems(),
        effect=effect,
        current=_effect(everything, tenant.scope, tenant.scope),
        query=query,
        hits=hits,
        in_scope={c.id for c in hits if class_in_scope(c, scope)},
        saved=saved,
        max_changed=MAX_CHANGED_SHOWN,
    )


@blueprint.get("/skola/<tenant_id>/omfattning")
@school_page
def scope_page(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    everything, listed = _read(tenant)
    schools = _schools(everything, listed)
    return _render(
        tenant, person, everything, schools, tenant.scope, saved=request.args.get("saved") == "1"
    )


@blueprint.post("/skola/<tenant_id>/omfattning")
@school_page
def change(tenant_id: str, person: Person) -> BaseResponse | tuple[str, int]:
    tenant = find_school(state().services, tenant_id)
    if tenant is None:
        return redirect(url_for("care.school", tenant_id=tenant_id))
    everything, listed = _read(tenant)
    schools = _schools(everything, listed)
    problems = FormProblems()
    scope = _form_scope(request.form, problems, schools)
    if problems:
        return _render(tenant, person, everything, schools, scope, status=400, problems=problems)
    effect = _effect(everything, scope, tenant.scope)
    if request.form.get("action") != "save":
        return _render(tenant, person, everything, schools, scope, effect=effect)
    state().services.registry.save(replace(tenant, scope=scope))
    preview_views.forget(state().services.redis, tenant.id)
    return redirect(url_for("scope.scope_page", tenant_id=tenant.id, saved=1), code=303)
