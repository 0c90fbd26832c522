"""Rendering helpers shared by the views: a page, a refusal, what the school looks like now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import render_template
from flask_babel import format_decimal
from flask_babel import gettext as _
from markupsafe import Markup, escape

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


def reason_text(reason: str) -> str:
    """The planner's reason for a removal or a new object, in the page's language."""
    from common.sync import attributes as planner

    texts = {
        planner.REASON_DISABLED: _("inaktiverad i Microsoft 365 (inloggning spärrad)"),
        planner.REASON_SOFT_DELETED: _("raderad i Microsoft 365 (i papperskorgen)"),
        planner.REASON_OUT_OF_SCOPE: _(
            "utanför omfattningen: inte längre elev eller lärare på de valda skolorna och klasserna"
        ),
        planner.REASON_PURGED: _("raderad för gott i Microsoft 365"),
        planner.REASON_REACTIVATED: _(
            "aktiv igen i Microsoft 365: samma konto i portalen återaktiveras"
        ),
        planner.REASON_NEW_CLASS: _("ny klass från SDS"),
        planner.REASON_CLASS_OUT_OF_SCOPE: _(
            "klassen är utanför omfattningen eller i papperskorgen (medlemmarna finns kvar)"
        ),
        planner.REASON_CLASS_PURGED: _(
            "klassen är raderad för gott i Microsoft 365 (medlemmarna finns kvar)"
        ),
    }
    return str(texts.get(reason, reason))


def why_text(why: str) -> str:
    """What started a run or a change (the audit log's and held actions' ``why``)."""
    texts = {
        "notification": _("ändring i Microsoft 365"),
        "reconcile": _("fullständig synkning"),
        "schedule": _("schemalagd synkning"),
        "admin": _("startad här"),
        "approval": _("beslut om väntande borttagning"),
        "on demand": _("Synka nu"),
    }
    return str(texts.get(why, why))


def when(value: str | None) -> str:
    """An ISO time as people read it: ``2026-12-01 14:05`` (UTC)."""
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")


def moment(value: str | None) -> Markup:
    """``when`` in a ``<time>`` element, which the stylesheet keeps on one line (a date broken
    at its hyphens on a phone reads as two numbers)."""
    return Markup('<time datetime="{}">{}</time>').format(escape(value or ""), when(value))


def seconds(value: float) -> str:
    """A duration in seconds with one decimal, as the page's language writes it (``1,5``)."""
    return str(format_decimal(round(value, 1), format="#,##0.0"))


def percent(share: float) -> str:
    """A share (``0.05``) as a percentage the page's language writes (``5``, ``2,5``)."""
    return str(format_decimal(share * 100, format="#,##0.#"))


def resource_text(resource: str) -> str:
    return str({"/users": _("personer"), "/groups": _("klasser")}.get(resource, resource))
