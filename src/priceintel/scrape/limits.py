"""Limits of the fetcher: how large a decoded page may be, how long one response may take, how many redirects.

=============================  ============  ==========================================================
environment variable           default       meaning
=============================  ============  ==========================================================
PRICEINTEL_MAX_PAGE_BYTES      8 MB          largest *decoded* body kept (a page, robots.txt, a sitemap,
                                             a gzipped sitemap once unpacked): more is error `too_large`
PRICEINTEL_FETCH_DEADLINE      30 (seconds)  total time for one response, first byte sent to last byte
                                             read, redirects included: longer is error `too_slow`
=============================  ============  ==========================================================

`Fetcher(max_page_bytes=..., deadline=...)` overrides both; None reads the variables. Sizes may carry a unit
(`8MB`, `512KiB`, `2_000_000`). Decompression is always bounded: `gunzip_bounded` never unpacks more than its
limit (plus one byte to tell "exactly the limit" from "more"), whatever the compressed size.
"""

from __future__ import annotations

import os
import re
import zlib

from priceintel import PriceIntelError

__all__ = [
    "ARCHIVE_READ_LIMIT",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_PAGE_BYTES",
    "MAX_REDIRECTS",
    "BodyTooLarge",
    "LimitError",
    "gunzip_bounded",
    "human_bytes",
    "max_page_bytes",
    "parse_size",
    "response_deadline",
]

#: largest decoded body kept, unless PRICEINTEL_MAX_PAGE_BYTES says otherwise
DEFAULT_MAX_PAGE_BYTES = 8 * 1000 * 1000
#: seconds for one whole response (all redirect hops), unless PRICEINTEL_FETCH_DEADLINE says otherwise
DEFAULT_DEADLINE = 30.0
#: redirects followed (each hop checked against the outbound policy) before giving up
MAX_REDIRECTS = 10
#: largest object the raw archive unpacks (its objects are pages the fetcher kept, so far smaller)
ARCHIVE_READ_LIMIT = 64 * 1024 * 1024

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d[\d_]*(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


class LimitError(PriceIntelError):
    """A limit setting is malformed (names the variable or argument and the value)."""


class BodyTooLarge(PriceIntelError):
    """A body (or what it decompresses to) is larger than the limit; `received` bytes were decoded before stopping."""

    def __init__(self, message: str, limit: int, received: int = 0, declared: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.received = received
        self.declared = declared


def parse_size(value: str | int | float, name: str = "size") -> int:
    """Bytes from `8000000`, `8_000_000`, `8MB`, `512KiB` (units b, kb, mb, gb, kib, mib, gib); LimitError if bad."""
    if isinstance(value, bool):
        raise LimitError(f"{name}={value!r} is not a size in bytes (e.g. 8000000 or 8MB)")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _SIZE_RE.match(str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise LimitError(f"{name}={value!r} is not a size in bytes (e.g. 8000000 or 8MB)")
        number, unit = float(match.group(1).replace("_", "")), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size < 1:
        raise LimitError(f"{name}={value!r} must be at least 1 byte")
    return size


def max_page_bytes(value: str | int | float | None = None) -> int:
    """The decoded-body cap: `value` when given, else $PRICEINTEL_MAX_PAGE_BYTES, else DEFAULT_MAX_PAGE_BYTES."""
    if value is not None:
        return parse_size(value, "max_page_bytes")
    raw = (os.environ.get("PRICEINTEL_MAX_PAGE_BYTES") or "").strip()
    return parse_size(raw, "environment variable PRICEINTEL_MAX_PAGE_BYTES") if raw else DEFAULT_MAX_PAGE_BYTES


def response_deadline(value: float | str | None = None) -> float:
    """Seconds per response: `value` when given, else $PRICEINTEL_FETCH_DEADLINE, else DEFAULT_DEADLINE."""
    name = "deadline"
    if value is None:
        raw = (os.environ.get("PRICEINTEL_FETCH_DEADLINE") or "").strip()
        if not raw:
            return DEFAULT_DEADLINE
        name, value = "environment variable PRICEINTEL_FETCH_DEADLINE", raw
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise LimitError(f"{name}={value!r} is not a number of seconds") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise LimitError(f"{name}={value!r} must be a positive number of seconds")
    return seconds


def human_bytes(n: int) -> str:
    """`8 MB`, `512 KB`, `123 bytes` (decimal units, for messages)."""
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def gunzip_bounded(data: bytes, limit: int, what: str) -> bytes:
    """The gzip `data` unpacked (concatenated members too), never more than `limit` bytes: BodyTooLarge naming
    `what` when it would be larger, ValueError when it is not gzip."""
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        buf = rest
        try:
            while buf and not dec.eof:
                piece = dec.decompress(buf, limit - total + 1)
                total += len(piece)
                if total > limit:
                    raise BodyTooLarge(
                        f"{what} unpacks to more than {human_bytes(limit)} (PRICEINTEL_MAX_PAGE_BYTES): not read",
                        limit,
                        total,
                    )
                out.append(piece)
                buf = dec.unconsumed_tail
        except zlib.error as exc:
            raise ValueError(f"{what} is not valid gzip: {exc}") from None
        if not dec.eof:
            raise ValueError(f"{what} is not valid gzip: truncated")
        rest = dec.unused_data
        if rest[:2] != b"\x1f\x8b":  # trailing garbage after the last member is ignored, as gzip(1) does
            break
    return b"".join(out)
