"""The two endpoints Microsoft Graph calls: change notifications and lifecycle notifications.

Each verifies, enqueues and answers; nothing else (STYLE 9). Every item must name a subscription
we hold, carry its clientState (compared in constant time) and its tenant; an item that fails a
check is dropped and counted by reason, and the delivery is still answered 202 so Graph does not
retry what can never pass. The answer is 202 only once every valid item is queued; 503 when
Redis cannot be reached, so Graph delivers again.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from flask import Blueprint, Request, Response, abort, request
from werkzeug.http import HTTP_STATUS_CODES

from common.errors import QueueUnavailable
from common.state.dispatch import Change
from common.state.subscriptions import Verdict
from listener.schemas import (
    SUBSCRIPTION_RESOURCE,
    BodyError,
    ChangeNotification,
    ItemError,
    LifecycleNotification,
    load_change,
    load_collection,
    load_lifecycle,
)
from listener.state import MAX_BODY_BYTES, ListenerState, state

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_Item = TypeVar("_Item", ChangeNotification, LifecycleNotification)

log = logging.getLogger(__name__)

blueprint = Blueprint("graph", __name__)

#: Graph's validation tokens are a sentence and a request id; anything longer is not Graph's
MAX_VALIDATION_TOKEN_LENGTH: Final = 1024
REAUTHORIZATION_REQUIRED: Final = "reauthorizationRequired"
KNOWN_LIFECYCLE_EVENTS: Final = (REAUTHORIZATION_REQUIRED, "subscriptionRemoved", "missed")


def _validation_answer(req: Request) -> Response | None:
    """Graph's validation handshake: the decoded token back as text/plain, or None."""
    if not req.query_string:
        return None
    token = req.args.get("validationToken")
    if token is None:
        return None
    if len(token) > MAX_VALIDATION_TOKEN_LENGTH:
        abort(400)
    # text/plain and nosniff: the token is echoed as it came, never rendered as HTML
    response = Response(token, status=200, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _json_type(content_type: str | None) -> bool:
    """Werkzeug's ``is_json`` test of a content type: the mimetype (before the first ``;``,
    stripped of spaces and tabs, in lower case) is JSON. Werkzeug parses ``; charset=utf-8`` as
    well, which Graph sends on every delivery."""
    mimetype = (content_type or "").partition(";")[0].strip(" \t").lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _read_items(req: Request) -> list[object]:
    """The raw items of the POSTed collection (415, 413 and 400 on the way)."""
    if not _json_type(req.content_type):
        abort(415)
    body = req.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413
    try:
        document = json.loads(body)
        return load_collection(document)
    except (ValueError, RecursionError, BodyError):
        abort(400)


def _accepted() -> Response:
    return Response(status=202)


def deliver_notifications(
    s: ListenerState, environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes] | None:
    """The notification endpoint's everyday request answered without Flask: a POST with no
    query (so no validation handshake), a JSON content type and a ``Content-Length`` within
    ``MAX_BODY_BYTES``. Anything else returns ``None`` before the body is read, and the Flask view
    (``notifications``) answers it. The steps and answers are the view's: 400 for a body that
    is not a collection of items, 202 once every valid item is queued, 503 when Redis cannot
    be reached.

    Why it exists: Flask's request and app contexts, URL matching (twice) and response objects
    cost a notification about a third of the listener's CPU; this path is what lets the
    listener accept at least half as many notifications per second as a bare Flask endpoint
    that only answers 202 (``bench/listener.py``). The listener's tests reach the view through
    this path whenever they send a Content-Length; ``test_notifications`` also sends the same
    bodies without one (through the view) and checks that both paths answer alike.
    """
    if environ.get("QUERY_STRING") or not _json_type(environ.get("CONTENT_TYPE")):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 <= length <= MAX_BODY_BYTES:
        return None
    body = environ["wsgi.input"].read(length)
    try:
        items = load_collection(json.loads(body))
    except (ValueError, RecursionError, BodyError):
        return _plain_answer(start_response, 400)
    try:
        with s.breaker.attempt():
            _queue_notifications(s, items)
    except QueueUnavailable:
        s.metrics.redis_errors.inc()
        return _plain_answer(start_response, 503, QUEUE_UNAVAILABLE, [("Retry-After", "5")])
    except Exception:  # as Flask would: logged with its traceback, answered 500 in JSON
        log.exception("a notification delivery failed")
        return _plain_answer(start_response, 500)
    start_response("202 ACCEPTED", _ACCEPTED_HEADERS)
    return []


#: what Flask's ``Response(status=202)`` sends
_ACCEPTED_HEADERS: Final = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")]


#: the sentence of a 503 while Redis cannot be reached (both paths)
QUEUE_UNAVAILABLE: Final = "the queue is unavailable; deliver again later"


def _plain_answer(
    start_response: StartResponse,
    status: int,
    error: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    """An error answer as the Flask path gives it: ``{"error": ...}`` as JSON."""
    name = HTTP_STATUS_CODES[status]
    body = (json.dumps({"error": error or name}, separators=(",", ":")) + "\n").encode()
    start_response(
        f"{status} {name.upper()}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


@blueprint.post("/graph/notifications")
def notifications() -> Response:
    handshake = _validation_answer(request)
    if handshake is not None:
        return handshake
    s = state()  # looked up once: each lookup goes through a proxy
    items = _read_items(request)
    with s.breaker.attempt():
        _queue_notifications(s, items)
    return _accepted()


def _queue_notifications(s: ListenerState, items: list[object]) -> None:
    checked, rejected = _checked_items(s, items, "notifications", load_change)
    changes: list[Change] = []
    for notification, verdict in checked:
        if not verdict.ok or verdict.subscription is None:
            rejected[verdict.reason] += 1
        elif verdict.subscription.resource != SUBSCRIPTION_RESOURCE[notification.kind]:
            rejected["wrong_resource"] += 1
        else:
            # the tenant as we registered it, not as this item spelled it
            tenant = verdict.subscription.tenant_id
            changes.append(Change(tenant, notification.kind, notification.object_id))
    queued = s.dispatcher.enqueue_changes(changes) if changes else []
    for change, new_job in zip(changes, queued, strict=True):
        if new_job:
            s.metrics.child(s.metrics.enqueued, change.kind).inc()
        else:
            s.metrics.deduplicated.inc()
    s.metrics.accepted.inc(len(changes))
    _count_rejections(s, "notifications", rejected)
    if changes and log.isEnabledFor(logging.DEBUG):
        log.debug(
            "notifications queued",
            extra={"accepted": len(changes), "new_jobs": sum(queued)},
        )


@blueprint.post("/graph/lifecycle")
def lifecycle() -> Response:
    handshake = _validation_answer(request)
    if handshake is not None:
        return handshake
    s = state()
    items = _read_items(request)
    with s.breaker.attempt():
        return _act_on_lifecycle(s, items)


def _act_on_lifecycle(s: ListenerState, items: list[object]) -> Response:
    checked, rejected = _checked_items(s, items, "lifecycle", load_lifecycle)
    for notification, verdict in checked:
        if not verdict.ok or verdict.subscription is None:
            rejected[verdict.reason] += 1
            continue
        subscription = verdict.subscription
        context = {
            "tenant": subscription.tenant_id,
            "subscription": subscription.id,
            "lifecycle_event": notification.event[:64],
        }
        if notification.event == REAUTHORIZATION_REQUIRED:
            s.subscriptions.mark_reauthorization_required(subscription.id)
            if s.dispatcher.enqueue_renewal(subscription.tenant_id, why=REAUTHORIZATION_REQUIRED):
                s.metrics.enqueued.labels("renewal").inc()
            log.info("reauthorization required; renewal queued", extra=context)
        else:
            # users and groups get no missed or subscriptionRemoved events (DESIGN §4.4); if
            # one comes anyway, the hourly reconcile repairs what it stands for
            log.warning("lifecycle event not acted on", extra=context)
        label = notification.event if notification.event in KNOWN_LIFECYCLE_EVENTS else "other"
        s.metrics.lifecycle.labels(label).inc()
    _count_rejections(s, "lifecycle", rejected)
    return _accepted()


def _checked_items(
    s: ListenerState, items: list[object], endpoint: str, load: Callable[[object], _Item]
) -> tuple[list[tuple[_Item, Verdict]], Counter[str]]:
    """The body's items, each loaded and judged against its subscription; items that do not
    load are counted in the returned rejections by reason (the caller adds its own)."""
    s.metrics.child(s.metrics.received, endpoint).inc(len(items))
    rejected: Counter[str] = Counter()
    parsed: list[_Item] = []
    for item in items:
        try:
            parsed.append(load(item))
        except ItemError as exc:
            rejected[exc.reason] += 1
    verdicts = s.subscriptions.verify_many(
        [(n.subscription_id, n.client_state, n.tenant_id) for n in parsed]
    )
    return list(zip(parsed, verdicts, strict=True)), rejected


def _count_rejections(s: ListenerState, endpoint: str, rejected: Counter[str]) -> None:
    if not rejected:
        return
    metrics = s.metrics
    for reason, count in rejected.items():
        metrics.child(metrics.rejected, endpoint, reason).inc(count)
    log.info(
        "notification items dropped",
        extra={"rejected": dict(rejected)},
    )
