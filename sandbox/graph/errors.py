"""Graph's error answers: one exception carries status, code and message to the HTTP edge.

Every handler raises ``GraphError`` for a request Graph would refuse; the application turns it
into Graph's body ``{"error": {"code", "message", "innerError": {...}}}``. Anything else that
escapes a handler is a bug in the sandbox and answers 500 ``generalException`` (logged, never
crashing the server).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

NOT_FOUND_MESSAGE = (
    "Resource '{id}' does not exist or one of its queried reference-property objects are not "
    "present."
)


class GraphError(Exception):
    """A request Graph answers with an error status and body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(object_id: str) -> GraphError:
    """404 as the directory answers it for an unknown object id."""
    return GraphError(404, "Request_ResourceNotFound", NOT_FOUND_MESSAGE.format(id=object_id))


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_body(code: str, message: str, request_id: str, client_request_id: str) -> dict[str, Any]:
    """Graph's error body, with the ``innerError`` block Graph adds."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
