"""Loopback HTTP servers shared by the demo storefronts and the replay web: a threading server that tracks
its open keep-alive connections so `close()` releases the port at once, and a quiet request handler."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks open connections for a clean stop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(addr, handler)
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()

    def close(self) -> None:
        """Stop serving, close open keep-alive connections and release the port."""
        self.shutdown()
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler that registers its connection with a LoopbackServer and logs nothing."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server: LoopbackServer

    def setup(self) -> None:
        """Register the connection so `LoopbackServer.close` can close it."""
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no per-request logging."""
