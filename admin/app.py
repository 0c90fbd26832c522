"""The admin app's factory: ``gunicorn 'admin.app:create_app()'``.

Nothing happens at import; ``create_app`` reads the configuration (or takes one, for tests),
builds the services as the CLI does, and registers the views. It does not connect to Redis or
Microsoft at start: pages that need them answer with a sentence when they are away.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from admin import (
    care_views,
    connect_views,
    i18n,
    lookup_views,
    pages,
    portal_views,
    preview_views,
    run_views,
    scope_views,
    security,
    signin_views,
)
from admin.identity import SignIn, SignInRefused
from admin.pages import refuse
from admin.state import EXTENSION, AdminState
from common.config import Config, load_config
from common.errors import QueueUnavailable, SkolsynkError, TransientError
from common.state.dispatch import Dispatcher
from common.state.progress import ProgressStore
from common.state.subscriptions import SubscriptionStore
from common.sync.services import build_services

log = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Flask:
    """Build the admin app; ``config`` defaults to the one read from the environment."""
    config = config if config is not None else load_config()
    services = build_services(config)
    app = Flask(__name__)
    csrf = security.protect(app, config)
    i18n.setup(app)
    app.extensions[EXTENSION] = AdminState(
        config=config,
        services=services,
        signin=SignIn(config, services.graph_session, services.redis),
        progress=ProgressStore(services.redis),
        dispatcher=Dispatcher(services.redis),
        subscriptions=SubscriptionStore(services.redis, config.secret_key),
    )
    app.jinja_env.globals.update(
        kind_text=pages.kind_text,
        outcome_text=pages.outcome_text,
        outcome_text_audit=pages.audit_outcome_text,
        reason_text=pages.reason_text,
        why_text=pages.why_text,
        resource_text=pages.resource_text,
    )
    app.jinja_env.filters["when"] = pages.when
    app.jinja_env.filters["seconds"] = pages.seconds
    app.jinja_env.filters["percent"] = pages.percent
    app.jinja_env.filters["moment"] = pages.moment
    for module in (
        signin_views,
        connect_views,
        portal_views,
        scope_views,
        preview_views,
        run_views,
        care_views,
        lookup_views,
    ):
        app.register_blueprint(module.blueprint)
    # Microsoft's answer to a sign-in is checked by its single-use state instead
    csrf.exempt(signin_views.callback)
    app.register_error_handler(SignInRefused, _refused)
    app.register_error_handler(QueueUnavailable, _unavailable)
    app.register_error_handler(TransientError, _unavailable)
    app.register_error_handler(SkolsynkError, _needs_attention)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _refused(exc: SignInRefused) -> tuple[str, int]:
    return refuse(exc.status, str(exc))


def _unavailable(exc: SkolsynkError) -> tuple[str, int]:
    log.warning("a service is unavailable", extra={"error": type(exc).__name__})
    return refuse(
        503, _("En tjänst Skolsynk behöver svarar inte just nu. Försök igen om en stund.")
    )


def _needs_attention(exc: SkolsynkError) -> tuple[str, int]:
    return refuse(409, str(exc))


def _http_error(exc: HTTPException) -> tuple[str, int]:
    if security.is_csrf_error(exc):
        return refuse(
            400,
            _(
                "Formuläret hade gått ut eller kom inte från den här sidan. Ladda om sidan och "
                "försök igen; inget sparades."
            ),
        )
    status = exc.code or 500
    sentences = {
        404: _("Sidan finns inte."),
        405: _("Sidan kan inte användas så."),
        413: _("Det du skickade var för stort."),
    }
    return refuse(status, sentences.get(status, _("Det gick inte att visa sidan.")))


def _unexpected(exc: Exception) -> tuple[str, int]:
    # the error's type only: its text may quote a payload
    log.error("unexpected error in a page", extra={"error": type(exc).__name__}, exc_info=False)
    return refuse(500, _("Något gick fel hos oss. Försök igen om en stund."))
