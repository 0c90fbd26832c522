"""Endpoints for operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from common.errors import QueueUnavailable
from listener.state import state

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (nothing else is checked)."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when this process can enqueue: the breaker lets it ask Redis, its connection pool
    gives a connection, and Redis answers and accepts a write (a full Redis does not); 503
    otherwise, so a load balancer sends notifications to a process that can queue them."""
    s = state()
    try:
        with s.breaker.attempt():
            s.dispatcher.probe()
    except QueueUnavailable:
        return jsonify(status="unavailable", redis="cannot enqueue"), 503
    return jsonify(status="ok", redis="ok"), 200


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = state().metrics.exposition()
    return Response(body, mimetype=None, content_type=content_type)
