"""HTTPS serving: werkzeug's threaded WSGI server with the TLS handshake moved off the accept loop.

werkzeug wraps the listening socket, so every handshake would run in the one thread that
accepts connections and a single slow client would stall everyone. Here the accepted socket is
wrapped without handshaking and each connection's own thread does the handshake. Connections
idle for longer than ``IDLE_TIMEOUT_SECONDS`` are closed (keep-alive stays cheap).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

IDLE_TIMEOUT_SECONDS = 120.0
LISTEN_BACKLOG = 512


class QuietHandler(WSGIRequestHandler):
    """No access log: the counters under ``/_sandbox/counters`` say what was asked."""

    timeout = IDLE_TIMEOUT_SECONDS

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log_error(self, format: str, *args: Any) -> None:
        return


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
