"""Endpoints for operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from common.errors import QueueUnavailable
from common.state.store import redis_errors
from listener.state import state

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (nothing else is checked)."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers, since every notification needs it; 503 otherwise."""
    try:
        with redis_errors():
            state().redis.ping()
    except QueueUnavailable:
        return jsonify(status="unavailable", redis="unreachable"), 503
    return jsonify(status="ok", redis="ok"), 200


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = state().metrics.exposition()
    return Response(body, mimetype=None, content_type=content_type)
