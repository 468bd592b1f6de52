"""Immutable raw archive: content-addressed gzip page bodies plus a JSONL fetch index per day."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError, config
from priceintel.scrape.limits import ARCHIVE_READ_LIMIT, BodyTooLarge, gunzip_bounded

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_PARTITION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ArchiveError(PriceIntelError):
    """An archive object or partition is missing or malformed."""


def sha256_hex(body: bytes) -> str:
    """Hex SHA-256 of a page body (the archive address)."""
    return hashlib.sha256(body).hexdigest()


def _utc(ts: datetime | None) -> datetime:
    """A tz-aware UTC datetime (naive values are taken as UTC; None = now)."""
    if ts is None:
        return datetime.now(UTC)
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


class RawArchive:
    """Append-only store of fetched bodies: `objects/<sha[:2]>/<sha>.gz` + `index/<partition>.jsonl`."""

    def __init__(self, root: os.PathLike | str | None = None) -> None:
        self.root = Path(root) if root is not None else config.raw_dir()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RawArchive({str(self.root)!r})"

    def object_path(self, sha: str) -> Path:
        """Path of the gzip object holding the body with this SHA-256."""
        if not _SHA_RE.match(sha or ""):
            raise ArchiveError(f"{sha!r} is not a sha256 hex digest (archive {self.root})")
        return self.root / "objects" / sha[:2] / f"{sha}.gz"

    def index_path(self, partition: str) -> Path:
        """Path of one JSONL index partition (normally a fetch date, YYYY-MM-DD)."""
        if not _PARTITION_RE.match(partition or ""):
            raise ArchiveError(f"bad archive partition name {partition!r} (use e.g. 2026-07-01)")
        return self.root / "index" / f"{partition}.jsonl"

    def has(self, sha: str) -> bool:
        """Whether the body with this SHA-256 is stored."""
        return self.object_path(sha).exists()

    def put(
        self,
        url: str,
        status: int | None,
        headers: Mapping[str, str] | None,
        body: bytes,
        fetched_at: datetime | None = None,
        partition: str | None = None,
        **meta: Any,
    ) -> str:
        """Store a body once (gzip, content-addressed), append an index line; return its SHA-256."""
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ArchiveError(f"archive body for {url} must be bytes, got {type(body).__name__}")
        body = bytes(body)
        sha = sha256_hex(body)
        ts = _utc(fetched_at)
        part = partition or ts.date().isoformat()
        record = {
            "url": url,
            "status": status,
            "headers": {str(k): str(v) for k, v in (headers or {}).items()},
            "fetched_at": ts.isoformat(),
            "sha256": sha,
            "size": len(body),
            "meta": meta,
        }
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        obj = self.object_path(sha)
        idx = self.index_path(part)
        if not obj.exists():
            self._write_object(obj, body)
        with self._lock:
            idx.parent.mkdir(parents=True, exist_ok=True)
            with open(idx, "a", encoding="utf-8") as fh:
                fh.write(line)
        return sha

    def _write_object(self, path: Path, body: bytes) -> None:
        """Write a gzip object atomically (temp file + rename); an existing object is never touched."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = gzip.compress(body, compresslevel=6, mtime=0)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".gz")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            if path.exists():  # another thread won the race: same content, keep the first
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
                os.chmod(path, 0o444)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def get(self, sha: str, limit: int = ARCHIVE_READ_LIMIT) -> bytes:
        """The stored body for a SHA-256 (verified against its address), never unpacking more than `limit` bytes."""
        path = self.object_path(sha)
        if not path.exists():
            raise ArchiveError(f"no archived object {sha} under {self.root / 'objects'}")
        try:
            body = gunzip_bounded(path.read_bytes(), limit, f"archived object {path}")
        except (BodyTooLarge, ValueError) as exc:
            raise ArchiveError(f"{exc} (corrupt or not written by this archive)") from None
        if sha256_hex(body) != sha:
            raise ArchiveError(f"archived object {path} is corrupt (content hash does not match)")
        return body

    def partitions(self) -> list[str]:
        """Names of the index partitions, sorted."""
        folder = self.root / "index"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.jsonl"))

    def iter_index(self, partition: str | None = None) -> Iterator[dict]:
        """Index records (one dict per archived response), of one partition or all in order."""
        parts = [partition] if partition is not None else self.partitions()
        for part in parts:
            path = self.index_path(part)
            if not path.exists():
                raise ArchiveError(f"no archive index partition {part!r} at {path}")
            with open(path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ArchiveError(f"{path}:{lineno}: malformed index line ({exc.msg})") from None
