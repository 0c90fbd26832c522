"""The listener's app factory: ``gunicorn 'listener.app:create_app()'``.

Nothing happens at import; ``create_app`` reads the configuration (or takes one, for tests),
builds the Redis client with short timeouts, the dispatcher, the subscription store and the
metrics, and registers the views. It does not connect to Redis: a listener whose Redis is down
starts, answers ``/healthz``, and answers 503 where it needs Redis.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Final

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common.config import Config, load_config
from common.dispatch import Dispatcher, connect_listener_redis
from common.errors import QueueUnavailable
from common.logs import bind_job_context, clear_context
from common.subscriptions import VERIFICATION_CACHE_SECONDS, SubscriptionStore
from listener import graph_views, ops_views
from listener.metrics import ListenerMetrics, SyncStateCollector
from listener.state import EXTENSION, ListenerState, state

log = logging.getLogger(__name__)

#: Graph batches notifications, but a megabyte is far more than it sends in one POST
MAX_BODY_BYTES: Final = 1024 * 1024


def create_app(config: Config | None = None) -> Flask:
    """Build the listener app; ``config`` defaults to the one read from the environment."""
    config = config if config is not None else load_config()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    client = connect_listener_redis(config.redis_url)
    app.extensions[EXTENSION] = ListenerState(
        config=config,
        redis=client,
        dispatcher=Dispatcher(client),
        subscriptions=SubscriptionStore(
            client, config.secret_key, cache_seconds=VERIFICATION_CACHE_SECONDS
        ),
        metrics=ListenerMetrics(SyncStateCollector(client, config.secret_key)),
    )
    app.register_blueprint(graph_views.blueprint)
    app.register_blueprint(ops_views.blueprint)
    app.before_request(_start_request)
    app.after_request(_observe_request)
    app.teardown_request(_end_request)
    app.register_error_handler(QueueUnavailable, _queue_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _endpoint_label() -> str:
    return request.endpoint.rsplit(".", 1)[-1] if request.endpoint else "unknown"


def _start_request() -> None:
    g.started = time.perf_counter()
    # a request id ties the log lines of one delivery together; never the body or headers
    bind_job_context(request_id=secrets.token_hex(6), endpoint=_endpoint_label())


def _observe_request(response: Response) -> Response:
    started = g.get("started")
    metrics = state().metrics
    endpoint = _endpoint_label()
    if started is not None:
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
    metrics.requests.labels(endpoint, str(response.status_code)).inc()
    return response


def _end_request(_: BaseException | None) -> None:
    clear_context()


def _queue_unavailable(exc: QueueUnavailable) -> tuple[Response, int, dict[str, str]]:
    state().metrics.redis_errors.inc()
    log.warning(
        "Redis unavailable; answering 503 so Graph delivers again", extra={"error": str(exc)}
    )
    return jsonify(error="the queue is unavailable; deliver again later"), 503, {"Retry-After": "5"}


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return jsonify(error=exc.name), status
