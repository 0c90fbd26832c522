"""The HTML side of sign-in: pages shaped like Microsoft's, and answers sent back to an app.

Pages come from ``templates/`` (autoescaped). An answer to an app goes to its redirect URI the
way ``response_mode`` asks: ``query`` (302 with a query), ``fragment`` (302 with ``#...``) or
``form_post`` (a page that posts the fields there at once).

Failure policy: none; every function returns a ``Response``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Response

TEMPLATES = Path(__file__).parent / "templates"
HTML_TYPE = "text/html; charset=utf-8"
SECURITY_HEADERS = {
    "Cache-Control": "no-store, no-cache",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), cache_size=50
    )


def page(template: str, status: int = 200, **context: Any) -> Response:
    html = _environment().get_template(template).render(**context)
    response = Response(html, status=status, content_type=HTML_TYPE)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(aadsts: int, message: str, *, status: int = 400) -> Response:
    """Entra's "Sorry, but we're having trouble signing you in" page with an AADSTS message."""
    return page(
        "error.html",
        status,
        title="Sign in to your account",
        message=f"AADSTS{aadsts}: {message}",
        request_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def error_fields(error: str, aadsts: int, description: str) -> dict[str, str]:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": (
            f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        ),
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }


def deliver(redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
    """Send ``fields`` back to the app at ``redirect_uri`` as ``response_mode`` says."""
    if mode == "form_post":
        return page("form_post.html", action=redirect_uri, fields=list(fields.items()))
    parts = urlsplit(redirect_uri)
    encoded = urlencode(fields)
    if mode == "fragment":
        target = urlunsplit((*parts[:4], encoded))
    else:
        query = f"{parts.query}&{encoded}" if parts.query else encoded
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    response = Response(b"", status=302)
    response.headers["Location"] = target
    response.headers.update(SECURITY_HEADERS)
    return response
