"""The app's protections that are not about who may see what: cookies, headers, CSRF errors.

Session cookies are ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the app is served over
HTTPS (``SKOLSYNK_ADMIN_URL`` starts with https), and live at most ``SESSION_LIFETIME``. Every
answer carries a Content-Security-Policy without inline scripts or styles, frame denial and no
referrer beyond the origin. Every POST carries a CSRF token (Flask-WTF); a missing or forged one
gets a page with a sentence, never a stack trace.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask, Response
from flask_wtf.csrf import CSRFError, CSRFProtect

from common.config import Config

SESSION_LIFETIME = timedelta(hours=8)
#: a form's CSRF token is good for this long (a person may read a preview for a while)
CSRF_TIME_LIMIT_SECONDS = 4 * 3600
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self' https:; frame-ancestors 'none'"
)
#: forms are small; a megabyte is far more than any of them sends
MAX_BODY_BYTES = 1024 * 1024


def session_key(config: Config) -> bytes:
    """The key that signs session cookies, derived from ``SKOLSYNK_SECRET_KEY``."""
    return hmac.new(
        config.secret_key.reveal().encode(), b"skolsynk admin sessions", hashlib.sha256
    ).digest()


def protect(app: Flask, config: Config) -> CSRFProtect:
    """Set cookie, CSRF and header protections on ``app``."""
    https = (config.admin_url or "").startswith("https://")
    app.config.update(
        SECRET_KEY=session_key(config),
        SESSION_COOKIE_NAME="skolsynk_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_TIME_LIMIT=CSRF_TIME_LIMIT_SECONDS,
        WTF_CSRF_SSL_STRICT=https,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    csrf = CSRFProtect(app)
    app.after_request(_headers)
    return csrf


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def is_csrf_error(exc: Exception) -> bool:
    return isinstance(exc, CSRFError)
