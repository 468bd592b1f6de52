"""Immutable raw archive: content-addressed gzip page bodies plus a JSONL fetch index per day.

On local disk under `root` (`data/raw/`), or, when $PRICEINTEL_ARCHIVE_URL names an object store
(`priceintel.storage`), under the same keys there (`objects/<sha[:2]>/<sha>.gz`, `index/<partition>.jsonl`). With a
store, a body the store does not take (after retries) waits in the local spool `<root>/../spool/<root name>/` and
an outage is recorded there and in the log; index lines are journaled in the spool and merged into their partition
in batches (S3 has no append). Reads (`get`, `iter_index`, `replay`) see the store and the spool alike.
"""

from __future__ import annotations

import atexit
import builtins
import gzip
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from priceintel import PriceIntelError, config, storage
from priceintel.scrape.limits import ARCHIVE_READ_LIMIT, BodyTooLarge, gunzip_bounded

log = logging.getLogger("priceintel.archive")

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
    """Append-only store of fetched bodies: `objects/<sha[:2]>/<sha>.gz` + `index/<partition>.jsonl`, on local
    disk under `root` or in an object store (`store`: "env" = $PRICEINTEL_ARCHIVE_URL when set, "local" = disk,
    or an `ObjectStore`), whose local spool is `spool_dir` (default `<root>/../spool/<root name>`)."""

    def __init__(
        self,
        root: os.PathLike | str | None = None,
        store: storage.ObjectStore | Literal["env", "local"] = "env",
        spool_dir: os.PathLike | str | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else config.raw_dir()
        self._lock = threading.Lock()
        chosen = storage.archive_store() if store == "env" else None if store == "local" else store
        self.store: storage.ObjectStore | None = chosen if isinstance(chosen, storage.ObjectStore) else None
        self.spool: Spooled | None = None
        if self.store is not None:
            spool = Path(spool_dir) if spool_dir is not None else self.root.parent / "spool" / self.root.name
            self.spool = Spooled(self.store, spool)
        self._known: set[str] = set()  # objects known to be in the store (no second upload in this process)

    def __repr__(self) -> str:
        if self.spool is not None:
            return f"RawArchive({self.spool.store.url!r}, spool={str(self.spool.dir)!r})"
        return f"RawArchive({str(self.root)!r})"

    @property
    def location(self) -> str:
        """Where the archive is, for messages: the folder or the store's URL."""
        return self.spool.store.url if self.spool is not None else str(self.root)

    def object_key(self, sha: str) -> str:
        """Key of the gzip object holding the body with this SHA-256 (the path under `root` on disk)."""
        if not _SHA_RE.match(sha or ""):
            raise ArchiveError(f"{sha!r} is not a sha256 hex digest (archive {self.location})")
        return f"objects/{sha[:2]}/{sha}.gz"

    def index_key(self, partition: str) -> str:
        """Key of one JSONL index partition (normally a fetch date, YYYY-MM-DD)."""
        if not _PARTITION_RE.match(partition or ""):
            raise ArchiveError(f"bad archive partition name {partition!r} (use e.g. 2026-07-01)")
        return f"index/{partition}.jsonl"

    def object_path(self, sha: str) -> Path:
        """Path of the gzip object holding the body with this SHA-256 (on local disk)."""
        return self.root / self.object_key(sha)

    def index_path(self, partition: str) -> Path:
        """Path of one JSONL index partition (on local disk)."""
        return self.root / self.index_key(partition)

    def _unavailable(self, what: str, exc: storage.StoreError) -> ArchiveError:
        return ArchiveError(f"{what}: archive {self.location} unavailable: {exc}")

    def has(self, sha: str) -> bool:
        """Whether the body with this SHA-256 is stored."""
        if self.spool is None:
            return self.object_path(sha).exists()
        try:
            return sha in self._known or self.spool.exists(self.object_key(sha))
        except storage.StoreError as exc:
            raise self._unavailable(f"looking up {sha}", exc) from None

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
        if self.spool is not None:
            self._put_stored(sha, body, part, line)
            return sha
        obj = self.object_path(sha)
        idx = self.index_path(part)
        if not obj.exists():
            self._write_object(obj, body)
        with self._lock:
            idx.parent.mkdir(parents=True, exist_ok=True)
            with open(idx, "a", encoding="utf-8") as fh:
                fh.write(line)
        return sha

    def _put_stored(self, sha: str, body: bytes, partition: str, line: str) -> None:
        """Object then index line to the store; what it does not take waits in the spool (never lost)."""
        assert self.spool is not None
        key = self.object_key(sha)
        if sha not in self._known:
            if self.spool.put(key, gzip.compress(body, compresslevel=6, mtime=0), if_absent=True):
                with self._lock:
                    if len(self._known) > 200_000:
                        self._known.clear()
                    self._known.add(sha)
        self.spool.append(self.index_key(partition), line)

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
        where = self.where(sha)
        if self.spool is None:
            path = self.object_path(sha)
            if not path.exists():
                raise ArchiveError(f"no archived object {sha} under {self.root / 'objects'}")
            data = path.read_bytes()
        else:
            try:
                data = self.spool.get(self.object_key(sha))
            except storage.StoreMissing:
                raise ArchiveError(f"no archived object {sha} in {self.location}") from None
            except storage.StoreError as exc:
                raise self._unavailable(f"reading {sha}", exc) from None
        try:
            body = gunzip_bounded(data, limit, f"archived object {where}")
        except (BodyTooLarge, ValueError) as exc:
            raise ArchiveError(f"{exc} (corrupt or not written by this archive)") from None
        if sha256_hex(body) != sha:
            raise ArchiveError(f"archived object {where} is corrupt (content hash does not match)")
        return body

    def where(self, sha: str) -> str:
        """Where the object of a SHA-256 is: its path or its store URL."""
        if self.spool is None:
            return str(self.object_path(sha))
        return f"{self.location.rstrip('/')}/{self.object_key(sha)}"

    def partitions(self) -> list[str]:
        """Names of the index partitions, sorted."""
        if self.spool is not None:
            try:
                keys = self.spool.list("index/")
            except storage.StoreError as exc:
                raise self._unavailable("listing the index", exc) from None
            return sorted(k[len("index/") : -len(".jsonl")] for k in keys if re.fullmatch(r"index/[^/]+\.jsonl", k))
        folder = self.root / "index"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.jsonl"))

    def index_lines(self, partition: str) -> list[bytes]:
        """The raw lines of one index partition (ArchiveError when it does not exist)."""
        if self.spool is None:
            path = self.index_path(partition)
            if not path.exists():
                raise ArchiveError(f"no archive index partition {partition!r} at {path}")
            return path.read_bytes().splitlines(keepends=True)
        key = self.index_key(partition)
        try:
            lines = self.spool.read_lines(key)
        except storage.StoreError as exc:
            raise self._unavailable(f"reading index partition {partition!r}", exc) from None
        if lines is None:
            raise ArchiveError(f"no archive index partition {partition!r} at {self.location.rstrip('/')}/{key}")
        return lines

    def iter_index(self, partition: str | None = None) -> Iterator[dict]:
        """Index records (one dict per archived response), of one partition or all in order."""
        parts = [partition] if partition is not None else self.partitions()
        for part in parts:
            where = self.index_path(part) if self.spool is None else f"{self.location}/{self.index_key(part)}"
            for lineno, line in enumerate(self.index_lines(part), 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ArchiveError(f"{where}:{lineno}: malformed index line ({exc.msg})") from None

    def replay(self, partition: str | None = None) -> Iterator[tuple[dict, bytes]]:
        """(index record, body) of every archived response, of one partition or all in order: what a
        re-extraction reads, from disk or the object store alike."""
        for record in self.iter_index(partition):
            yield record, self.get(record["sha256"])

    def add_index_lines(self, partition: str, lines: list[bytes]) -> int:
        """Add the index lines the partition lacks (a restore of a backup's index); returns how many."""
        have = set(self.index_lines(partition)) if partition in self.partitions() else set()
        new = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in dict.fromkeys(lines) if ln.strip()]
        new = [ln for ln in new if ln not in have]
        for ln in new:
            json.loads(ln)  # a malformed line is refused before anything is written
        if self.spool is not None:
            for ln in new:
                self.spool.append(self.index_key(partition), ln.decode("utf-8"))
        elif new:
            with self._lock:
                path = self.index_path(partition)
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as fh:
                    fh.write(b"".join(new))
        return len(new)

    def flush(self) -> dict:
        """Upload what waits in the spool (objects, then index lines); counts and what is still pending
        (`Spooled.flush`). On local disk there is nothing to do."""
        if self.spool is None:
            return {"uploaded": 0, "lines": 0, "pending_objects": 0, "pending_lines": 0, "error": None}
        return self.spool.flush()

    def with_outages(self, errors: Any, since: str) -> Any:
        """A scrape's errors frame plus one `archive_unavailable` row when the object store took no page body
        since `since` (ISO time): the bodies are in the local spool and uploaded later (nothing lost), and the
        run says so (the row lands in scrape_error)."""
        import pandas as pd

        puts = self.spooled_since(since)
        if not puts:
            return errors
        message = (
            f"object store {puts[0].get('store')} unavailable: {len(puts)} page body(ies) kept in the local spool "
            f"until it answers (first error: {puts[0].get('error')})"
        )
        row = {"url": None, "retailer": None, "kind": "archive_unavailable", "ds": None, "message": message[:2000]}
        return pd.concat([errors, pd.DataFrame([row])], ignore_index=True)

    def spooled_since(self, since: str) -> list[dict]:
        """The outages since `since` (ISO time) whose page body went to the spool (`op` put)."""
        return [o for o in self.outages() if o.get("op") == "put" and str(o.get("at", "")) >= since]

    def outages(self) -> list[dict]:
        """The outages recorded in the spool (when, what, why), oldest first."""
        if self.spool is None:
            return []
        path = self.spool.dir / "outages.jsonl"
        if not path.exists():
            return []
        return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


# --- the spool of an object-store archive -----------------------------------------------------------------------------

_LIVE: weakref.WeakSet[Spooled] = weakref.WeakSet()


class Spooled:
    """`store` with a local spool in `spool_dir`: a write the store does not take (after its retries) is kept
    in the spool (nothing lost) and recorded in `outages.jsonl` and the log; `append` journals lines for an
    object (S3 has no append) and merges them in batches (`batch` lines or `interval` seconds) with conditional
    writes; `flush` uploads what is pending (the next successful write does it too, and the scheduler after
    each run). Reads see the spool too."""

    def __init__(
        self, store: storage.ObjectStore, spool_dir: str | os.PathLike, batch: int = 500, interval: float = 30.0
    ):
        self.store = store
        self.dir = Path(spool_dir)
        self.batch, self.interval = int(batch), float(interval)
        self.stats = {"stored": 0, "spooled": 0, "uploaded": 0, "lines_merged": 0}
        self._pending = 0
        self._oldest: float | None = time.monotonic() if self._journals() else None
        self._waiting = self.pending()["pending_objects"] > 0  # spooled objects to upload on the next success
        self._warned = False  # the outage is in the log already
        self._lock = threading.Lock()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"Spooled({self.store.url!r}, spool {str(self.dir)!r})"

    # -- paths ---------------------------------------------------------------------------------------------
    def _spooled_path(self, key: str) -> Path:
        return self.dir / "put" / key

    def _journal(self, key: str) -> Path:
        return self.dir / "append" / key

    def _journals(self) -> list[Path]:
        folder = self.dir / "append"
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    def _journal_key(self, path: Path) -> str:
        rel = path.relative_to(self.dir / "append").as_posix()
        return re.sub(r"\.sending-[0-9a-f]{32}$", "", rel)

    # -- writes --------------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, if_absent: bool = False) -> bool:
        """Store `data`; when the store is unavailable (or refuses), keep it in the spool and record it.
        Returns True when it reached the store, False when it was spooled."""
        try:
            self.store.put(key, data, if_absent=if_absent)
        except storage.StoreError as exc:
            storage.atomic_write(self._spooled_path(key), data)
            self._record("put", key, exc)
            with self._lock:
                self.stats["spooled"] += 1
                self._waiting = True
            return False
        with self._lock:
            self.stats["stored"] += 1
            waiting, self._warned = self._waiting, False
        if waiting:
            self.flush()  # the store answers again: upload what waited
        return True

    def append(self, key: str, line: str) -> None:
        """Add one line (ending in a newline) to object `key`, through the local journal."""
        with self._lock, storage.file_lock(self.dir / ".append.lock"):
            path = self._journal(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line)
            self._pending += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
            due = self._pending >= self.batch or time.monotonic() - self._oldest >= self.interval
        if due:
            self.flush()

    def _record(self, op: str, key: str, exc: Exception) -> None:
        """An outage: a line in `outages.jsonl` of the spool, and a warning in the log (the first write of
        an outage; the others at debug level)."""
        entry = {"at": datetime.now(UTC).isoformat(), "op": op, "key": key, "store": self.store.url,
                 "error": config.redact(str(exc), os.environ.get("AWS_SECRET_ACCESS_KEY"))}  # fmt: skip
        with self._lock, storage.file_lock(self.dir / ".append.lock"):
            with open(self.dir / "outages.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            first, self._warned = not self._warned, True
        if first:
            log.warning(
                "object store unavailable: %s and what follows kept in the local spool %s until it answers (%s)",
                key, self.dir, entry["error"],
            )  # fmt: skip
        else:
            log.debug("object store unavailable: %s kept in the local spool %s", key, self.dir)

    # -- flush ---------------------------------------------------------------------------------------------
    def flush(self) -> dict:
        """Upload spooled objects, then merge journaled lines into their objects (so an uploaded line never
        names an object the store lacks). Returns counts: uploaded, lines, pending_objects, pending_lines,
        error (None, or why something is still pending). Never raises for an unavailable store."""
        out: dict[str, Any] = {"uploaded": 0, "lines": 0, "error": None}
        with storage.file_lock(self.dir / ".flush.lock", blocking=False) as mine:
            if mine:
                try:
                    out["uploaded"] = self._upload_spooled()
                    self._waiting = False
                    out["lines"] = self._merge_journals()
                except storage.StoreError as exc:
                    out["error"] = str(exc)
            else:
                out["error"] = "another process is flushing this spool"
        out.update(self.pending())
        return out

    def pending(self) -> dict:
        """What waits in the spool: objects and journaled lines."""
        put = self.dir / "put"
        objects = sum(1 for p in put.rglob("*") if p.is_file() and not p.name.startswith(".")) if put.is_dir() else 0
        lines = 0
        for path in self._journals():
            with open(path, "rb") as fh:
                lines += sum(1 for _ in fh)
        return {"pending_objects": objects, "pending_lines": lines}

    def _upload_spooled(self) -> int:
        put, n = self.dir / "put", 0
        for path in sorted(put.rglob("*")) if put.is_dir() else []:
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(put).as_posix()
            self.store.put(key, path.read_bytes(), if_absent=True)  # content-addressed: present is done
            path.unlink()
            n += 1
        with self._lock:
            self.stats["uploaded"] += n
        if n:
            log.info("uploaded %d spooled object(s) to %s", n, self.store.url)
        return n

    def _merge_journals(self) -> int:
        with self._lock, storage.file_lock(self.dir / ".append.lock"):  # journals become `.sending-…`: appends go anew
            for path in self._journals():
                if ".sending-" not in path.name:
                    path.rename(path.with_name(f"{path.name}.sending-{uuid.uuid4().hex}"))
            self._pending, self._oldest = 0, None
        by_key: dict[str, list[Path]] = {}
        for path in self._journals():
            if ".sending-" in path.name:
                by_key.setdefault(self._journal_key(path), []).append(path)
        n = 0
        for key, paths in sorted(by_key.items()):
            lines = [ln for p in sorted(paths, key=lambda p: p.stat().st_mtime_ns) for ln in _lines(p.read_bytes())]
            n += self._merge(key, lines)
            for p in paths:
                p.unlink()
        with self._lock:
            self.stats["lines_merged"] += n
        return n

    def _merge(self, key: str, lines: list[bytes]) -> int:
        """Append the lines the object lacks, with a conditional write (re-read and retried when another
        writer changed the object in between)."""
        for _ in range(20):
            found = self.store.get_tagged(key)
            have = found[0] if found else b""
            present = set(_lines(have))
            new = [ln for ln in dict.fromkeys(lines) if ln not in present]
            if not new:
                return 0
            body = have + (b"" if not have or have.endswith(b"\n") else b"\n") + b"".join(new)
            if self.store.put(key, body, if_absent=found is None, if_match=found[1] if found else None):
                return len(new)
        raise storage.StoreUnavailable(f"{self.store.where(key)}: kept changing while lines were added; try again")

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        """The object, from the spool when it waits there, else from the store (StoreMissing when absent)."""
        path = self._spooled_path(key)
        if path.is_file():
            return path.read_bytes()
        return self.store.get(key)

    def exists(self, key: str) -> bool:
        return self._spooled_path(key).is_file() or self.store.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        """Keys in the store, the spool and the journals starting with `prefix`."""
        keys = set(self.store.list(prefix))
        put = self.dir / "put"
        if put.is_dir():
            keys.update(p.relative_to(put).as_posix() for p in put.rglob("*") if p.is_file())
        keys.update(self._journal_key(p) for p in self._journals())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith("."))

    def read_lines(self, key: str) -> builtins.list[bytes] | None:
        """The object's lines followed by the journaled ones it lacks; None when neither exists."""
        found = self.store.get_tagged(key)
        lines = _lines(found[0]) if found else []
        journals = [p for p in self._journals() if self._journal_key(p) == key]
        if found is None and not journals:
            return None
        present = set(lines)
        for path in sorted(journals, key=lambda p: (".sending-" not in p.name, p.stat().st_mtime_ns)):
            for ln in _lines(path.read_bytes()):
                if ln not in present:
                    lines.append(ln)
                    present.add(ln)
        return lines


def _lines(data: bytes) -> list[bytes]:
    """Non-blank lines, each ending in a newline."""
    return [ln if ln.endswith(b"\n") else ln + b"\n" for ln in data.splitlines(keepends=True) if ln.strip()]


@atexit.register
def _flush_at_exit() -> None:
    """Merge what each live spool journaled (best effort: what stays is merged by the next flush)."""
    for spooled in list(_LIVE):
        try:
            spooled.flush()
        except Exception:  # noqa: BLE001 - never fail an exiting process; the spool keeps the data
            log.exception("flushing %r at exit", spooled)
