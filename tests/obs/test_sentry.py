"""Sentry: a real SDK in a child process sends its envelope to a Sentry stand-in on loopback, secrets redacted;
without SENTRY_DSN or without the SDK, nothing happens."""

import gzip
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import zlib

import pytest

from _receivers import QuietHandler
from priceintel.obs import errors

SECRET = "hunter2-very-secret"
CHILD = textwrap.dedent(
    f"""
    import logging, sentry_sdk
    from priceintel import obs
    from priceintel.obs import logs
    assert obs.start("scheduler")
    with logs.context(run_id="schedule-7", task="load"):
        try:
            raise RuntimeError("cannot load into postgresql://bob:{SECRET}@db.example/x")
        except RuntimeError:
            logging.getLogger("priceintel.test").exception("load failed, password={SECRET}")
    sentry_sdk.flush(10)
    """
)


class _Ingest(QuietHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        coding = (self.headers.get("Content-Encoding") or "").lower()
        if coding == "gzip":
            body = gzip.decompress(body)
        elif coding == "deflate":
            body = zlib.decompress(body)
        elif coding == "br":
            import brotli

            body = brotli.decompress(body)
        self.received.append((self.path, body))
        self.reply(200, b"{}")


def test_an_error_reaches_sentry_redacted(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        SENTRY_DSN=f"http://public@127.0.0.1:{server.server_address[1]}/1",
        SENTRY_ENVIRONMENT="test",
        PRICEINTEL_DATA_DIR=str(tmp_path),
        PRICEINTEL_LOG_FORMAT="json",
    )
    try:
        done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    envelopes = [body for path, body in _Ingest.received if path == "/api/1/envelope/"]
    assert envelopes, _Ingest.received
    raw = b"\n".join(envelopes).decode()
    assert SECRET not in raw and "bob:***@db.example" in raw
    lines = [line for body in envelopes for line in body.decode().splitlines()[1:]]
    events = [json.loads(line) for line in lines if '"exception"' in line]
    event = events[0]
    assert event["environment"] == "test" and event["release"]
    assert event["tags"]["run_id"] == "schedule-7" and event["tags"]["task"] == "load"
    assert event["tags"]["service"] == "scheduler"
    values = event["exception"]["values"]
    assert values[-1]["type"] == "RuntimeError" and "***" in values[-1]["value"]
    assert "load failed, password=***" in json.dumps(event)


def test_without_a_dsn_or_the_sdk_nothing_happens(monkeypatch):
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert not errors.init_sentry("api")
    monkeypatch.setenv("SENTRY_DSN", "http://public@127.0.0.1:9/1")
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # import fails as when the extra is not installed
    assert not errors.init_sentry("api")


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({"password": "x1", "user": "bob"}, {"password": "***", "user": "bob"}),
        (["see https://u:pw12345@h.example/a"], ["see https://u:***@h.example/a"]),
        ({"vars": {"Authorization": "Bearer abcdefghijk", "n": 3}}, {"vars": {"Authorization": "***", "n": 3}}),
    ],
)
def test_scrub(given, shown):
    assert errors.scrub(given) == shown
