"""A webhook receiver for notification tests: answers Graph's validation handshake, records
every delivery, and can be told to fail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def items(self, path: str = "/notify") -> list[dict[str, Any]]:
        with self.lock:
            return [item for d in self.deliveries if d.path == path for item in d.body["value"]]

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"the webhook did not receive what was expected: {self.deliveries}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            token = parse_qs(parts.query).get("validationToken")
            if token is not None:
                with receiver.lock:
                    receiver.validations.append((parts.path, token[0]))
                if not receiver.answer_validation:
                    self._answer(500, b"")
                    return
                self._answer(200, token[0].encode(), "text/plain")
                return
            with receiver.lock:
                if receiver.failures_before_success > 0:
                    receiver.failures_before_success -= 1
                    failing = True
                else:
                    failing = False
                    receiver.deliveries.append(
                        Delivery(parts.path, json.loads(raw), self.headers.get("Content-Type", ""))
                    )
            self._answer(503 if failing else 202, b"")

        def _answer(self, status: int, body: bytes, content_type: str = "") -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port for the duration of the block."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
