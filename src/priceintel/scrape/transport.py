"""The wire under the Fetcher: a total deadline per response, the peer address checked on connect, bounded bodies.

* `GuardedAdapter` (a requests `HTTPAdapter`) makes connections that, while an `exchange` is open on the thread,
  register their socket with the process-wide `Watchdog` when the request is sent: at the exchange's deadline the
  watchdog shuts the socket down, so a server trickling its headers or body ends there (`Exchange.expired`);
  a connection that should reach a public address checks the address it actually reached (a name that resolved
  to a public address for the policy check and to an internal one for the connection is refused).
* `read_body` reads a streamed response and decodes gzip / deflate itself with `zlib` bounded by `max_length`, so
  neither the wire bytes nor what they decompress to can exceed the cap (`BodyTooLarge`); other encodings are
  left to urllib3 (>= 2, bounded too). Only `gzip, deflate` are offered (`ACCEPT_ENCODING`).
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from priceintel.scrape.limits import BodyTooLarge, human_bytes
from priceintel.scrape.outbound import address_problem

__all__ = ["ACCEPT_ENCODING", "CHUNK", "Exchange", "GuardedAdapter", "Watchdog", "exchange", "read_body"]

#: content codings offered: the ones decoded here with a bound
ACCEPT_ENCODING = "gzip, deflate"
#: wire bytes read at a time
CHUNK = 64 * 1024


class Watchdog:
    """Shuts down sockets that outlive their deadline (one daemon thread for the whole process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, socket.socket]] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")  #: when the watchdog thread wakes next (inf: idle)

    def arm(self, sock: socket.socket, deadline: float) -> int:
        """Watch `sock` until `deadline` (time.monotonic()); a token for `disarm`."""
        with self._cond:
            token = next(self._ids)
            self._armed[token] = (deadline, sock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="priceintel-deadlines", daemon=True)
                self._thread.start()
            if deadline < self._wake_at:  # only an earlier deadline needs the sleeper woken
                self._cond.notify()
        return token

    def disarm(self, tokens: list[int]) -> bool:
        """Stop watching; True when any of the tokens' deadlines had passed (its socket was shut down)."""
        fired = False
        with self._cond:
            for token in tokens:
                self._armed.pop(token, None)
                if token in self._fired:
                    self._fired.discard(token)
                    fired = True
        return fired

    def _run(self) -> None:
        """Sleep until the earliest deadline; shut down every socket past its own."""
        with self._cond:
            while True:
                if not self._armed:
                    self._wake_at = float("inf")
                    self._cond.wait()
                    continue
                now = time.monotonic()
                due = min(d for d, _ in self._armed.values())
                if due > now:
                    self._wake_at = due
                    self._cond.wait(due - now)
                    continue
                for token, (deadline, sock) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        try:  # the plain socket's shutdown (an SSLSocket's own would drop its TLS state)
                            socket.socket.shutdown(sock, socket.SHUT_RDWR)
                        except OSError:
                            pass


WATCHDOG = Watchdog()


@dataclass
class Exchange:
    """One request/response on this thread: its deadline, the sockets armed for it, what went wrong."""

    deadline: float
    require_public_peer: bool = False  #: set per hop: the connection must reach a public address
    tokens: list[int] = field(default_factory=list)
    blocked: str | None = None  #: why the connected peer was refused
    expired: bool = False  #: the deadline passed (known once the exchange is closed, or via `check_expired`)

    def check_expired(self) -> bool:
        """Disarm the sockets armed so far; True when the deadline passed for any of them."""
        tokens, self.tokens = self.tokens, []
        self.expired = WATCHDOG.disarm(tokens) or self.expired
        return self.expired


_local = threading.local()


@contextmanager
def exchange(deadline: float) -> Iterator[Exchange]:
    """Open an Exchange on this thread: connections made or used inside it are held to its deadline."""
    ex = Exchange(deadline)
    _local.exchange = ex
    try:
        yield ex
    finally:
        _local.exchange = None
        ex.check_expired()


def _current() -> Exchange | None:
    return getattr(_local, "exchange", None)


class _GuardMixin:
    """Peer check on connect and deadline arming on send, for an urllib3 connection."""

    host: str
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        ex = _current()
        if ex is not None and ex.require_public_peer:
            try:
                peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
            except (OSError, ValueError):
                peer = None
            problem = address_problem(peer) if peer is not None else "an unknown address"
            if problem is not None:
                sock.close()
                ex.blocked = f"{self.host} connected to {peer}, {problem}"
                raise OSError(f"refused: {ex.blocked}")
        return sock

    def getresponse(self) -> Any:
        ex = _current()
        if ex is not None and self.sock is not None:
            ex.tokens.append(WATCHDOG.arm(self.sock, ex.deadline))
        return super().getresponse()  # type: ignore[misc]


class GuardedHTTPConnection(_GuardMixin, HTTPConnection):
    """HTTP connection with the peer check and the deadline."""


class GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
    """HTTPS connection with the peer check and the deadline."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """requests adapter whose connections (direct or through a proxy) are guarded."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


class _Overflow(Exception):
    """The decoded body passed the limit (`args[0]`: decoded bytes so far)."""


class _Decoder:
    """Bounded gzip / deflate decoding of a body fed in wire chunks."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.total = 0
        self._gzip = coding in ("gzip", "x-gzip")
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        self._first = True

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes of the next wire chunk (_Overflow past the limit)."""
        out: list[bytes] = []
        while data:
            if self._dec.eof:  # a next gzip member; anything else after the end is ignored (as gzip(1) does)
                if not (self._gzip and data[:2] == b"\x1f\x8b"):
                    break
                self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                piece = self._dec.decompress(data, self.limit - self.total + 1)
            except zlib.error:
                if not (self._first and not self._gzip):
                    raise
                self._dec = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent as a raw deflate stream
                piece = self._dec.decompress(data, self.limit - self.total + 1)
            self._first = False
            self.total += len(piece)
            if self.total > self.limit:
                raise _Overflow(self.total)
            out.append(piece)
            data = self._dec.unused_data if self._dec.eof else self._dec.unconsumed_tail
        return b"".join(out)


def _too_large(url: str, limit: int, received: int, declared: int | None = None) -> BodyTooLarge:
    """BodyTooLarge naming the URL, the cap and how much was read (or declared)."""
    what = (
        f"declares {human_bytes(declared)} (Content-Length)"
        if declared is not None
        else f"exceeded it after {received}"
    )
    return BodyTooLarge(
        f"response from {url} is larger than the {human_bytes(limit)} limit (PRICEINTEL_MAX_PAGE_BYTES): {what}"
        + ("" if declared is not None else " decoded bytes; not kept"),
        limit,
        received,
        declared,
    )


def read_body(resp: requests.Response, limit: int, progress: list[int] | None = None) -> bytes:
    """The decoded body of a streamed response, at most `limit` bytes (BodyTooLarge past it, naming resp.url).

    `progress` (a one-item list) receives the decoded byte count as reading goes, for messages about a body cut
    short. Errors of the connection surface as requests.ConnectionError / requests.Timeout.
    """
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

    coding = (resp.headers.get("Content-Encoding") or "").strip().lower()
    length = (resp.headers.get("Content-Length") or "").strip()
    if coding in ("", "identity") and length.isdigit() and int(length) > limit:
        raise _too_large(resp.url, limit, 0, int(length))
    decoder = _Decoder(coding, limit) if coding in ("gzip", "x-gzip", "deflate") else None
    urllib3_decodes = decoder is None and coding not in ("", "identity")
    chunks: list[bytes] = []
    total = 0
    try:
        for piece in resp.raw.stream(CHUNK, decode_content=urllib3_decodes):
            out = decoder.feed(piece) if decoder is not None else piece
            total += len(out)
            if progress is not None:
                progress[0] = total
            if total > limit:
                raise _Overflow(total)
            chunks.append(out)
    except _Overflow as exc:
        raise _too_large(resp.url, limit, int(exc.args[0])) from None
    except ReadTimeoutError as exc:
        raise requests.Timeout(f"read timed out: {exc}") from None
    except (ProtocolError, OSError) as exc:
        raise requests.ConnectionError(exc) from None
    except (DecodeError, zlib.error) as exc:
        raise requests.exceptions.ContentDecodingError(
            f"cannot decode the {coding} body of {resp.url}: {exc}"
        ) from None
    return b"".join(chunks)
