"""Real local receivers for notification tests: an aiosmtpd SMTP server and an http.server webhook sink."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing, with `reply` for a whole answer."""

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None, headers: dict | None = None):
        """Answer `status` with `body` (Content-Length set, so a keep-alive client reads it whole), its
        Content-Type and any other `headers`."""
        self.send_response(status)
        for name, value in {"Content-Type": content_type, **(headers or {})}.items():
            if value is not None:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A ThreadingHTTPServer with `handler` on a free 127.0.0.1 port; yields its base URL, shut down after."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class SMTPSink:
    """aiosmtpd on 127.0.0.1 collecting every message (optionally requiring LOGIN/PLAIN auth)."""

    def __init__(self, user: str | None = None, password: str | None = None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list = []
        self.logins: list[str] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            ok = data.login.decode() == user and data.password.decode() == password
            if ok:
                sink.logins.append(data.login.decode())
            return AuthResult(success=ok)

        self.port = free_port()
        kwargs = {"authenticator": auth, "auth_require_tls": False} if user else {}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SMTPSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def alert_keys(self) -> list[str]:
        """Dedup keys carried by the received alert emails (header X-PriceIntel-Alerts)."""
        keys = []
        for m in self.messages:
            keys += (m.get("X-PriceIntel-Alerts") or "").split()
        return keys


class HTTPSink:
    """ThreadingHTTPServer on 127.0.0.1 storing JSON POST bodies; `fail_first` answers 500 that many times."""

    def __init__(self, fail_first: int = 0):
        self.bodies: list[dict] = []
        self.hits = 0
        self.fail_first = fail_first
        sink = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.hits += 1
                if sink.hits <= sink.fail_first:
                    self.reply(500)
                    return
                sink.bodies.append(json.loads(body))
                self.reply(200, b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HTTPSink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alert_keys(self) -> list[str]:
        """Dedup keys of every alert received."""
        return [a["dedup_key"] for b in self.bodies for a in b.get("alerts", [])]
