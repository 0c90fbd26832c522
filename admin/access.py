"""Who may open which school: every page and action of a school goes through ``school_page``.

A school's pages live under ``/skola/<tenant_id>/``. The signed-in person must administer that
tenant (its Global Administrator, or an operator); anyone else gets 403 with a sentence, and a
person not signed in is sent to sign in. The check reads the session, which only a finished
sign-in writes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import redirect, session, url_for
from flask_babel import gettext as _

from admin.identity import Person
from admin.pages import refuse

F = TypeVar("F", bound=Callable[..., Any])
PERSON_KEY = "person"


def current_person() -> Person | None:
    return Person.from_session(session.get(PERSON_KEY))


def sign_in_as(person: Person) -> None:
    session.clear()
    session.permanent = True
    session[PERSON_KEY] = person.to_session()


def signed_in(view: F) -> F:
    """The view needs a signed-in person (any role); others are sent to the first page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_person() is None:
            return redirect(url_for("signin.first_page"))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def school_page(view: F) -> F:
    """The view acts on ``tenant_id``: only its administrators and operators get through."""

    @wraps(view)
    def wrapper(*args: Any, tenant_id: str, **kwargs: Any) -> Any:
        person = current_person()
        if person is None:
            return redirect(url_for("signin.first_page"))
        if not person.may_administer(tenant_id):
            return refuse(
                403,
                _(
                    "Du har inte behörighet till den här skolan. Bara en global administratör "
                    "i skolans Microsoft 365 kan öppna dess sidor."
                ),
            )
        return view(*args, tenant_id=tenant_id, person=person, **kwargs)

    return wrapper  # type: ignore[return-value]
