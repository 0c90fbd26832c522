"""The portal's Flask app factory."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response as WerkzeugResponse

from sandbox.portal.context import Portal
from sandbox.portal.db import Database
from sandbox.portal.errors import ApiError, ScimError
from sandbox.portal.knobs import Counters, Knobs
from sandbox.portal.microsoft import MicrosoftSettings
from sandbox.portal.portal_store import PortalStore
from sandbox.portal.scim_store import ScimStore


class _SessionCookies(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` exactly when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def create_app(
    db_path: Path | str, *, seed: int | None = None, microsoft: MicrosoftSettings | None = None
) -> Flask:
    """The portal over the SQLite database at ``db_path`` (created when missing).

    ``seed`` makes the fault knobs' random draws reproducible; ``microsoft`` switches on
    sign-in with Microsoft (``signin_views``). Call ``close_app`` when done.
    """
    from flask_wtf.csrf import CSRFProtect

    from sandbox.portal import api_views, html_views, linking, scim_views, signin_views
    from sandbox.portal.microsoft import MicrosoftSignIn

    db = Database(Path(db_path))
    scim = ScimStore(db)
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["portal"] = Portal(
        db=db,
        scim=scim,
        store=PortalStore(db, scim),
        knobs=Knobs(seed=seed),
        counters=Counters(),
        admin_token=db.admin_token(),
    )
    linking.ensure_schema(db)
    secret = db.setting("session_secret")
    if secret is None:  # made once and kept, so sessions survive a restart
        secret = secrets.token_urlsafe(48)
        db.set_setting("session_secret", secret)
    app.secret_key = secret
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.session_interface = _SessionCookies()
    if microsoft is not None:
        app.extensions["microsoft"] = MicrosoftSignIn(microsoft)
    csrf = CSRFProtect(app)
    for bearer_only in (scim_views.bp, api_views.bp):
        csrf.exempt(bearer_only)
    csrf.exempt(signin_views.set_tenant)
    app.register_blueprint(scim_views.bp)
    app.register_blueprint(api_views.bp)
    app.register_blueprint(signin_views.bp)
    app.register_blueprint(html_views.bp)

    @app.errorhandler(ScimError)
    def scim_error(error: ScimError) -> Response:
        return scim_views.error_response(error)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json_response({"error": error.message}, error.status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | WerkzeugResponse:
        status = error.code or 500
        if request.path.startswith("/scim/"):
            detail = error.description or error.name
            if status == 404:
                detail = "no such SCIM endpoint (see ResourceTypes)"
            response = scim_views.error_response(ScimError(status, detail))
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response
        if request.path.startswith(("/api/", "/_sandbox/")):
            return _json_response({"error": error.description or error.name}, status)
        return error.get_response()

    return app


def close_app(app: Flask) -> None:
    """Close the database connections of an app made by ``create_app``."""
    portal: Portal = app.extensions["portal"]
    portal.db.close()


def _json_response(payload: object, status: int) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status, mimetype="application/json")
