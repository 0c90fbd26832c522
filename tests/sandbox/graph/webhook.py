"""A webhook receiver for notification tests: answers Graph's validation handshake, records
every delivery, and can be told to fail."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass
class Delivery:
    path: str
    body: dict[str, Any]
    content_type: str


@dataclass
class Receiver:
    """What the receiver saw and how it answers."""

    url: str = ""
    validations: list[tuple[str, str]] = field(default_factory=list)  # (path, token)
    deliveries: list[Delivery] = field(default_factory=list)
    answer_validation: bool = True
    failures_before_success: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def items(self, path: str = "/notify") -> list[dict[str, Any]]:
        with self.lock:
            return [item for d in self.deliveries if d.path == path for item in d.body["value"]]

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wake at each request answered until ``check`` holds; fail after ``timeout`` seconds."""
        with self.lock:
            if not self.lock.wait_for(check, timeout):
                raise AssertionError(
                    f"the webhook did not receive what was expected: {self.deliveries}"
                )

    def answer(self, request: Request) -> Response:
        token = request.args.get("validationToken")
        with self.lock:
            try:
                if token is not None:
                    self.validations.append((request.path, token))
                    if not self.answer_validation:
                        return Response(b"", status=500)
                    return Response(token, status=200, content_type="text/plain")
                if self.failures_before_success > 0:
                    self.failures_before_success -= 1
                    return Response(b"", status=503)
                self.deliveries.append(
                    Delivery(
                        request.path, json.loads(request.get_data()), request.content_type or ""
                    )
                )
                return Response(b"", status=202)
            finally:
                self.lock.notify_all()


def webhook_receiver(server: HTTPServer) -> Receiver:
    """A receiver answering every POST to ``server`` (pytest-httpserver's, cleared per test)."""
    receiver = Receiver(url=server.url_for("").rstrip("/"))
    server.expect_request(re.compile(".*"), method="POST").respond_with_handler(receiver.answer)
    return receiver
