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
from typing import Final, TypeVar

from flask import Blueprint, Request, Response, abort, request

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
from listener.state import ListenerState, state

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


def _is_json(req: Request) -> bool:
    """``req.is_json``, without parsing the content type's parameters: the same mimetype
    (before the first ``;``, stripped of spaces and tabs, in lower case) put to the same test.
    Werkzeug parses ``; charset=utf-8`` as well, which Graph sends on every delivery."""
    mimetype = (req.content_type or "").partition(";")[0].strip(" \t").lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _read_items(req: Request) -> list[object]:
    """The raw items of the POSTed collection (415, 413 and 400 on the way)."""
    if not _is_json(req):
        abort(415)
    body = req.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413
    try:
        document = json.loads(body)
        return load_collection(document)
    except (ValueError, RecursionError, BodyError):
        abort(400)


def _accepted() -> Response:
    return Response(status=202)


@blueprint.post("/graph/notifications")
def notifications() -> Response:
    handshake = _validation_answer(request)
    if handshake is not None:
        return handshake
    s = state()  # looked up once: each lookup goes through a proxy
    items = _read_items(request)
    with s.breaker.attempt():
        return _queue_notifications(s, items)


def _queue_notifications(s: ListenerState, items: list[object]) -> Response:
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
    return _accepted()


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
