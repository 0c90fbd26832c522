"""Rendering helpers shared by the views: a page, a refusal, what the school looks like now."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import gettext as _

from common.errors import SkolsynkError, UnknownTenant
from common.state.registry import Tenant


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def refuse(status: int, sentence: str, *, title: str | None = None) -> tuple[str, int]:
    """A page that says, in one sentence, why this cannot be done."""
    return page("refused.html", status, title=title or _("Det gick inte"), sentence=sentence)


def find_school(services: Any, tenant_id: str) -> Tenant | None:
    """The registered tenant, or ``None`` when the school is not connected."""
    try:
        tenant: Tenant = services.registry.get(tenant_id)
    except UnknownTenant:
        return None
    # the registry also finds by name; a school's pages are by id only
    return tenant if tenant.id == tenant_id else None


def sentence_of(exc: SkolsynkError) -> str:
    """An error as people read it: its sentence and, when it has one, what to do."""
    return f"{exc} {exc.hint}".strip() if exc.hint else str(exc)


def kind_text(kind: str) -> str:
    """A plan or audit action's kind, as people read it."""
    texts = {
        "create_user": _("skapa konto"),
        "adopt_user": _("ta över befintligt konto"),
        "update_user": _("uppdatera konto"),
        "reactivate_user": _("återaktivera konto"),
        "deactivate_user": _("avaktivera konto"),
        "delete_user": _("radera konto"),
        "create_group": _("skapa klass"),
        "update_group": _("uppdatera klass"),
        "delete_group": _("radera klass"),
        "add_members": _("lägg till medlemmar"),
        "remove_members": _("ta bort medlemmar"),
    }
    return str(texts.get(kind, kind))


def outcome_text(outcome: str) -> str:
    """How a run ended, as people read it."""
    texts = {
        "ok": _("klart"),
        "held": _("klart, men borttagningar väntar på beslut"),
        "gated": _("klart, men borttagningar hoppades över (Microsoft 365 svarade ofullständigt)"),
        "partial": _("delvis: några ändringar gick inte att skriva"),
        "failed": _("misslyckades"),
        "preview": _("bara förhandsgranskning"),
    }
    return str(texts.get(outcome, outcome))


def audit_outcome_text(outcome: str) -> str:
    """How one audited change ended, as people read it."""
    texts = {
        "applied": _("skrivet"),
        "held": _("hållet för beslut"),
        "approved": _("godkänt och skrivet"),
        "rejected": _("avvisat"),
        "failed": _("misslyckades"),
        "skipped": _("överhoppat"),
    }
    return str(texts.get(outcome, outcome))
