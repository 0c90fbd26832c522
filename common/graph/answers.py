"""What Microsoft Graph's answers mean: an error answer translated once into ``common.errors``,
a page's objects, a request named for messages.

Failure policy: ``translate`` returns (never raises) the error for the caller to raise: 401 and
403 ``GraphAuthError`` (403 with Graph's reason, which may name the permission), 404
``NotFound``, 400 ``syncStateNotFound``/``resyncRequired`` on a delta link or 410
``DeltaExpired``, 429 ``Throttled``, 5xx ``GraphUnavailable``, any other 4xx
``GraphRequestError``; messages carry Graph's code and message, never the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from common.errors import (
    DeltaExpired,
    GraphAuthError,
    GraphRequestError,
    GraphUnavailable,
    NotFound,
    Throttled,
)
from common.graph.schemas import GraphDataError, load_error

MAX_ERROR_MESSAGE_CHARS = 300
_DELTA_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired"})


def describe(method: str, url: str) -> str:
    """``GET /users``: what a request was, for messages (no host, no query)."""
    path = urlsplit(url).path
    version_root = path.split("/", 2)
    if len(version_root) == 3 and version_root[1] in ("v1.0", "beta"):
        path = "/" + version_root[2]
    return f"{method} {path}"


def translate(
    status: int, body: Any, what: str, tenant_id: str, *, delta: bool = False
) -> Exception:
    """The error for a Graph error answer (see the module docstring)."""
    info = load_error(body)
    code = info.code or ""
    message = " ".join((info.message or "").split())[:MAX_ERROR_MESSAGE_CHARS].rstrip(".")
    said = f" ({status}{' ' + code if code else ''}){': ' + message if message else ''}"
    if status == 401:
        return GraphAuthError(
            f"Microsoft Graph did not accept the application's token for tenant {tenant_id} "
            f"on {what}{said}."
        )
    if status == 403:
        return GraphAuthError(
            f"Microsoft Graph denied {what} in tenant {tenant_id}{said}. The application lacks "
            "a permission or the administrator's consent to it (it needs User.Read.All, "
            "Group.Read.All and EduRoster.Read.All)."
        )
    if status == 404:
        return NotFound(f"Microsoft Graph has no {what}{said}.", status=status, code=code or None)
    if status == 410 or (delta and status == 400 and code.lower() in _DELTA_EXPIRED_CODES):
        return DeltaExpired(
            f"Microsoft Graph no longer accepts the delta link of {what}{said}; start a full "
            "round.",
            status=status,
            code=code or None,
        )
    if status == 429:
        return Throttled(f"Microsoft Graph kept throttling {what}{said}.")
    if status >= 500:
        return GraphUnavailable(f"Microsoft Graph failed {what}{said}.")
    return GraphRequestError(
        f"Microsoft Graph refused {what}{said}.", status=status, code=code or None
    )


def json_body(response: requests.Response) -> Any:
    """The answer's JSON, ``None`` when it has no body or the body is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def page_items(page: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """The objects of one page of a listing; ``GraphDataError`` when it holds no list of them."""
    value = page.get("value")
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise GraphDataError(f"Microsoft Graph answered {what} without a list of objects.")
    return value
