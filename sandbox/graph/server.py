"""HTTPS serving: werkzeug's threaded WSGI server, with keep-alive and off-loop TLS handshakes.

werkzeug's development handler closes every connection after one answer (it cannot drain an
unread request body), so each call would pay a new TCP and TLS handshake; and it wraps the
listening socket, so every handshake would run in the one thread that accepts connections.
Here the handler bounds the request body, drains what the application left unread and keeps
the connection open, and each connection's own thread does its handshake. Connections idle
for longer than ``IDLE_TIMEOUT_SECONDS`` are closed.
"""

from __future__ import annotations

import socket
import ssl
from email.utils import formatdate
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

IDLE_TIMEOUT_SECONDS = 120.0
LISTEN_BACKLOG = 512


class QuietHandler(WSGIRequestHandler):
    """No access log: the counters under ``/_sandbox/counters`` say what was asked."""

    timeout = IDLE_TIMEOUT_SECONDS

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log_error(self, format: str, *args: Any) -> None:
        return

    def run_wsgi(self) -> None:
        """Answer one request and keep the connection for the next one when HTTP/1.1 allows."""
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        if not environ.get("wsgi.input_terminated"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = LimitedStream(self.rfile, max(length, 0))
            environ["wsgi.input_terminated"] = True
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]
            return self.wfile.write

        chunks = self.server.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        stream = environ["wsgi.input"]
        while stream.read(65536):  # drain what the application did not read
            pass
        status, headers = started
        code = int(status.split(" ", 1)[0])
        wants_close = self.headers.get("Connection", "").lower() == "close"
        self.close_connection = wants_close or self.request_version != "HTTP/1.1"
        lines = [f"HTTP/1.1 {status}", f"Date: {formatdate(usegmt=True)}"]
        lines += [
            f"{name}: {value}"
            for name, value in headers
            if name.lower() not in ("connection", "content-length", "transfer-encoding")
        ]
        if code not in (204, 304) and code >= 200:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: " + ("close" if self.close_connection else "keep-alive"))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (body if self.command != "HEAD" else b""))


class TLSServer(ThreadedWSGIServer):
    """A threaded WSGI server speaking TLS, handshaking in each connection's thread."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, host: str, port: int, app: Any, context: ssl.SSLContext) -> None:
        super().__init__(host, port, app, handler=QuietHandler)
        self.tls_context = context
        # werkzeug reads ``ssl_context`` to report the https scheme and to ignore TLS errors
        self.ssl_context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.settimeout(IDLE_TIMEOUT_SECONDS)
        # headers and body leave in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add tens of milliseconds to every answer
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.tls_context.wrap_socket(
            conn, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away mid-answer is not worth a traceback on stderr
        return


def tls_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
