"""Swedish first, English by choice (Flask-Babel).

Messages are written in Swedish in the code and templates; ``translations/en`` holds their
English. The language is the person's choice (a cookie set by ``/lang/<code>``), else Swedish:
a Swedish school's browser may well ask for English, but the guide is written for Swedish
schools.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, redirect, request
from flask_babel import Babel
from werkzeug.wrappers import Response

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
LANGUAGE_COOKIE = "skolsynk_lang"
TRANSLATIONS = Path(__file__).parent / "translations"

blueprint = Blueprint("i18n", __name__)


def language() -> str:
    """The language of this request's pages."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def setup(app: Flask) -> None:
    Babel(
        app,
        locale_selector=language,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=str(TRANSLATIONS),
    )
    app.jinja_env.globals["current_language"] = language
    app.register_blueprint(blueprint)


@blueprint.get("/lang/<code>")
def choose(code: str) -> Response:
    """Switch the language and go back to where the person was (on this site only)."""
    back = request.args.get("next", "/")
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    response = redirect(back, code=303)
    if code in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            code,
            max_age=365 * 86400,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response
