"""The listener's app factory: ``gunicorn 'listener.app:create_app()'``.

Nothing happens at import; ``create_app`` reads the configuration (or takes one, for tests),
builds the Redis client with short timeouts, the dispatcher, the subscription store and the
metrics, and registers the views. It does not connect to Redis: a listener whose Redis is down
starts, answers ``/healthz``, and answers 503 where it needs Redis.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from common.config import Config, load_config
from common.errors import QueueUnavailable
from common.logs import bind_job_context, clear_context
from common.state.connections import connect_listener_redis
from common.state.dispatch import Dispatcher
from common.state.subscriptions import VERIFICATION_CACHE_SECONDS, SubscriptionStore
from listener import graph_views, ops_views
from listener.availability import RedisBreaker
from listener.metrics import ListenerMetrics
from listener.state import EXTENSION, MAX_BODY_BYTES, ListenerState, state
from listener.sync_metrics import SyncStateCollector

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


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
        breaker=RedisBreaker(),
    )
    app.register_blueprint(graph_views.blueprint)
    app.register_blueprint(ops_views.blueprint)
    app.register_error_handler(QueueUnavailable, _queue_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.wsgi_app = _Observed(app)  # type: ignore[method-assign]
    return app


class _Observed:
    """Wraps the app (WSGI middleware): every request gets a log context with its own id and
    its endpoint, and is counted with its status and time in ``/metrics``.

    A middleware rather than Flask's request hooks: it is called once per request where the
    hooks cost several lookups each, and the notification endpoint is the listener's hot path.
    """

    def __init__(self, app: Flask) -> None:
        self._wsgi_app = app.wsgi_app
        self._state: ListenerState = app.extensions[EXTENSION]
        self._metrics = self._state.metrics
        # endpoint labels by path (the listener's routes have no variables)
        self._endpoints = {
            rule.rule: rule.endpoint.rsplit(".", 1)[-1]
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        endpoint = self._endpoints.get(environ.get("PATH_INFO", ""), "unknown")
        status = 500

        def observed_start_response(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            nonlocal status
            status = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        # a request id ties the log lines of one delivery together; never the body or headers.
        # Unique enough, and no system call: ``random`` is seeded again in every forked worker
        bind_job_context(request_id=f"{random.getrandbits(48):012x}", endpoint=endpoint)
        try:
            if endpoint == "notifications" and environ.get("REQUEST_METHOD") == "POST":
                answered = graph_views.deliver_notifications(
                    self._state, environ, observed_start_response
                )
                if answered is not None:
                    return answered
            return self._wsgi_app(environ, observed_start_response)
        finally:
            clear_context()
            self._metrics.observe_request(endpoint, status, time.perf_counter() - started)


def _queue_unavailable(exc: QueueUnavailable) -> tuple[Response, int, dict[str, str]]:
    # logged by the breaker when Redis goes away and when it is back, not once per request
    state().metrics.redis_errors.inc()
    return jsonify(error=graph_views.QUEUE_UNAVAILABLE), 503, {"Retry-After": "5"}


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return jsonify(error=exc.name), status
