"""Object storage for the raw archive and the logs: an S3-compatible bucket or a local folder, with retries.

`PRICEINTEL_ARCHIVE_URL=s3://bucket/prefix` sends the page archive (and shipped logs, `<prefix>/logs/`) to an
S3-compatible store; the endpoint comes from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` and the
credentials from the standard AWS variables (or any source boto3 reads). `file:///path` names a local folder
with the same semantics; unset, the archive stays on local disk (`scrape.archive.RawArchive`).

- `ObjectStore`: put (optionally only if absent, or only if unchanged since read), get, exists, list by prefix;
  `LocalStore` and `S3Store`. Every call is retried on connection errors, 5xx and throttling with exponential
  backoff and full jitter (`RetryPolicy`: $PRICEINTEL_STORE_RETRIES, $PRICEINTEL_STORE_BACKOFF, …); after a
  call failed every attempt the store is held unavailable for a cool-down, so a run does not wait on a dead
  store page after page (`StoreUnavailable` at once until then).
- What a store does not take waits in a local spool (`scrape.archive.Spooled`, the archive's).
- `ship_logs()`: finished JSON log files of `<data_dir>/logs/` to `<prefix>/logs/<host>/`, marked shipped.
"""

from __future__ import annotations

import builtins
import fcntl
import gzip
import hashlib
import json
import logging
import os
import random
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from priceintel import PriceIntelError, config

__all__ = [
    "ARCHIVE_URL_ENV",
    "LocalStore",
    "ObjectStore",
    "RetryPolicy",
    "S3Store",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "archive_store",
    "atomic_write",
    "file_lock",
    "open_store",
    "ship_logs",
]

log = logging.getLogger("priceintel.storage")
T = TypeVar("T")

#: where the archive (and the shipped logs) go: s3://bucket/prefix or file:///path; unset: local disk
ARCHIVE_URL_ENV = "PRICEINTEL_ARCHIVE_URL"
#: S3 error codes that mean "slow down / try again"
_THROTTLING = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
     "RequestThrottled", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)  # fmt: skip
#: errno values of a local (network-mounted) folder that may pass
_TRANSIENT_ERRNO = frozenset({5, 110, 116, 107, 112, 113})  # EIO ETIMEDOUT ESTALE ENOTCONN EHOSTDOWN EHOSTUNREACH


class StoreError(PriceIntelError):
    """An object-store call failed for a reason retrying does not fix (credentials, bucket, a bad URL)."""


class StoreUnavailable(StoreError):
    """The store did not answer (connection refused, 5xx, throttling) after every retry, or is cooling down."""


class StoreMissing(StoreError):
    """No object under that key."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise config.ConfigError(f"environment variable {name}={raw!r} is not a number") from None
    if value < 0:
        raise config.ConfigError(f"environment variable {name}={raw!r} must not be negative")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one store call: `retries` more attempts after the first, waiting a random time in
    [0, min(max_backoff, backoff * 2**n)] before the n-th (full jitter); `cooldown` seconds the store is then
    held unavailable; `timeout` seconds to connect and to wait for a response."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    cooldown: float = 30.0
    timeout: float = 10.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """$PRICEINTEL_STORE_RETRIES, _BACKOFF, _MAX_BACKOFF, _COOLDOWN, _TIMEOUT (defaults: the class's)."""
        return cls(
            retries=int(_env_number("PRICEINTEL_STORE_RETRIES", cls.retries)),
            backoff=_env_number("PRICEINTEL_STORE_BACKOFF", cls.backoff),
            max_backoff=_env_number("PRICEINTEL_STORE_MAX_BACKOFF", cls.max_backoff),
            cooldown=_env_number("PRICEINTEL_STORE_COOLDOWN", cls.cooldown),
            timeout=_env_number("PRICEINTEL_STORE_TIMEOUT", cls.timeout) or cls.timeout,
        )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        return rng.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))


class ObjectStore:
    """Keys ("objects/ab/<sha>.gz") under one root; every call retried per `policy` (see the module doc)."""

    url: str = ""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy.from_env()
        self.stats = {"calls": 0, "retries": 0, "failures": 0}
        self._down_until = 0.0
        self._last_error = ""
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._sleep: Callable[[float], None] = time.sleep

    def where(self, key: str = "") -> str:
        """The URL of a key, for messages."""
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    # -- the interface ------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> bool:
        """Store `data` under `key`; False (nothing written) when `if_absent` and the key exists, or when
        `if_match` is not the key's current tag (someone wrote it since it was read)."""
        return self._call("put", key, lambda: self._put(key, data, if_absent, if_match))

    def get(self, key: str) -> bytes:
        """The object's bytes (StoreMissing when there is none)."""
        found = self.get_tagged(key)
        if found is None:
            raise StoreMissing(f"no object {self.where(key)}")
        return found[0]

    def get_tagged(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, tag) of the object (the tag for `put(if_match=…)`), None when there is none."""
        return self._call("get", key, lambda: self._get(key))

    def exists(self, key: str) -> bool:
        return self._call("exists", key, lambda: self._exists(key))

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with `prefix`, sorted."""
        return sorted(self._call("list", prefix, lambda: self._list(prefix)))

    # -- what an implementation provides ------------------------------------------------------------------
    def _put(self, key: str, data: bytes, if_absent: bool, if_match: str | None) -> bool:
        raise NotImplementedError

    def _get(self, key: str) -> tuple[bytes, str] | None:
        raise NotImplementedError

    def _exists(self, key: str) -> bool:
        raise NotImplementedError

    def _list(self, prefix: str) -> builtins.list[str]:
        raise NotImplementedError

    def _transient(self, exc: BaseException) -> bool:
        """Whether retrying may help."""
        raise NotImplementedError

    def _failure(self, exc: BaseException) -> str:
        """One line saying what went wrong."""
        return " ".join(str(exc).split()) or type(exc).__name__

    # -- retries and the cool-down ------------------------------------------------------------------------
    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            self.stats["calls"] += 1
            wait = self._down_until - time.monotonic()
            last = self._last_error
        if wait > 0:
            raise StoreUnavailable(
                f"{op} {self.where(key)}: store unavailable ({last}); next try in {wait:.1f}s"
                " ($PRICEINTEL_STORE_COOLDOWN)"
            )
        attempt = 0
        while True:
            try:
                out = fn()
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below: transient ones are retried
                reason = config.redact(self._failure(exc), *_aws_secrets())
                if not self._transient(exc):
                    raise StoreError(f"{op} {self.where(key)} failed: {reason}") from None
                if attempt >= self.policy.retries:
                    with self._lock:
                        self.stats["failures"] += 1
                        self._down_until = time.monotonic() + self.policy.cooldown
                        self._last_error = reason
                    raise StoreUnavailable(
                        f"{op} {self.where(key)} failed after {attempt + 1} attempt(s): {reason}"
                    ) from None
                with self._lock:
                    self.stats["retries"] += 1
                self._sleep(self.policy.delay(attempt, self._rng))
                attempt += 1
                continue
            with self._lock:
                self._down_until = 0.0
            return out


def _aws_secrets() -> tuple[str | None, ...]:
    return os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN")


class LocalStore(ObjectStore):
    """A folder (e.g. a network mount) as an object store: atomic writes (temp file + rename)."""

    def __init__(self, root: str | os.PathLike, policy: RetryPolicy | None = None) -> None:
        super().__init__(policy)
        self.root = Path(root)
        self.url = self.root.as_uri() if self.root.is_absolute() else str(self.root)
        self._write_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"bad object key {key!r} for {self.url}")
        return self.root / key

    @staticmethod
    def _tag(path: Path) -> str:
        st = path.stat()
        return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"

    def _put(self, key: str, data: bytes, if_absent: bool, if_match: str | None) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._write_lock, file_lock(self.root / ".write.lock"):
            if if_absent and path.exists():
                return False
            if if_match is not None and (not path.exists() or self._tag(path) != if_match):
                return False
            atomic_write(path, data)
        return True

    def _get(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                tag = self._tag(path)
                return fh.read(), tag
        except FileNotFoundError:
            return None

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _list(self, prefix: str) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return [k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith(".")]

    def _transient(self, exc: BaseException) -> bool:
        return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO


class S3Store(ObjectStore):
    """A bucket and key prefix of an S3-compatible store (boto3; endpoint and credentials the standard AWS
    way). Writes `if_absent` / `if_match` are conditional PUTs (If-None-Match / If-Match)."""

    def __init__(self, bucket: str, prefix: str = "", policy: RetryPolicy | None = None, client: Any = None) -> None:
        super().__init__(policy)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client (made on first use; botocore's own retries off: ours count and cool down)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    t, retries = self.policy.timeout, {"total_max_attempts": 1, "mode": "standard"}
                    cfg = Config(retries=retries, connect_timeout=t, read_timeout=t)
                    self._client = boto3.session.Session().client("s3", config=cfg)
        return self._client

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def where(self, key: str = "") -> str:
        return f"{super().where(key)} (endpoint {self._endpoint_shown()})"

    def _endpoint_shown(self) -> str:
        try:
            return config.redact(self.endpoint)
        except Exception:  # noqa: BLE001 - a message must not fail on a client that cannot be made
            return "unknown"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _put(self, key: str, data: bytes, if_absent: bool, if_match: str | None) -> bool:
        from botocore.exceptions import ClientError

        extra: dict[str, str] = {"IfNoneMatch": "*"} if if_absent else {}
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False  # 409: a concurrent conditional write to the same key
            if if_match is not None and status == 404:
                return False
            raise
        return True

    def _get(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return resp["Body"].read(), str(resp["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise

    def _list(self, prefix: str) -> builtins.list[str]:
        full = self._key(prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(item["Key"][cut:] for item in page.get("Contents", ()))
        return keys

    def _transient(self, exc: BaseException) -> bool:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

        if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError):
            return True
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return status >= 500 or status == 429 or exc.response.get("Error", {}).get("Code") in _THROTTLING
        return False

    def _failure(self, exc: BaseException) -> str:
        from botocore.exceptions import NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        return super()._failure(exc)


_STORES: dict[tuple, ObjectStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(url: str, policy: RetryPolicy | None = None) -> ObjectStore:
    """The store of `s3://bucket/prefix` or `file:///path` (ConfigError naming $PRICEINTEL_ARCHIVE_URL else)."""
    m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?", url.strip())
    if m:
        return S3Store(m.group(1), (m.group(2) or "").strip("/"), policy)
    if url.startswith("file://"):
        return LocalStore(Path(url[len("file://") :]).expanduser(), policy)
    raise config.ConfigError(
        f"{ARCHIVE_URL_ENV}={config.shown_setting(url)!r} is not s3://bucket[/prefix] or file:///path"
    )


def archive_store() -> ObjectStore | None:
    """The store of $PRICEINTEL_ARCHIVE_URL (one per URL, endpoint and retry settings in a process, so its
    cool-down is shared), or None when it is unset (local disk)."""
    url = (os.environ.get(ARCHIVE_URL_ENV) or "").strip()
    if not url:
        return None
    policy = RetryPolicy.from_env()
    key = (url, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ENDPOINT_URL_S3"), policy)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = open_store(url, policy)
    return store


# --- files ---------------------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path` (between processes); yields False when not blocking and it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- logs ----------------------------------------------------------------------------------------------------

_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _finished(path: Path, today: date) -> bool:
    """A log file no process writes any more: the date in its name is before today, or (no date in the name)
    it was last written before today (UTC)."""
    m = _DATE.search(path.name)
    if m:
        try:
            return date.fromisoformat(m.group(1)) < today
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date() < today


def ship_logs(
    logs_dir: str | os.PathLike | None = None,
    store: ObjectStore | None = None,
    today: date | None = None,
    include_open: bool = False,
):
    """Upload finished JSON log files (`<data_dir>/logs/*.jsonl`, not today's unless `include_open`: a
    scheduled run ships today's file as it stands, since a container task's disk ends with the task)
    gzip-compressed to `<prefix>/logs/<host>/<name>.gz` when object storage is configured, and mark them shipped
    in `logs/shipped.json` (name → size, sha256, key, when; a file that changed since is shipped again).
    Returns {"shipped": [names], "pending": n, "error": None or why some are not shipped}."""
    store = store if store is not None else archive_store()
    folder = Path(logs_dir) if logs_dir is not None else config.data_dir() / "logs"
    out: dict[str, Any] = {"shipped": [], "pending": 0, "error": None}
    if store is None or not folder.is_dir():
        return out
    today = today or datetime.now(UTC).date()
    ledger_path = folder / "shipped.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
    for path in sorted(folder.glob("*.jsonl")):
        if not (include_open or _finished(path, today)):
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if ledger.get(path.name, {}).get("sha256") == digest:
            continue
        if out["error"] is None:  # after a failed upload the rest are only counted
            key = f"logs/{host}/{path.name}.gz"
            try:
                store.put(key, gzip.compress(data, mtime=0))
                ledger[path.name] = {"size": len(data), "sha256": digest, "key": key,
                                     "at": datetime.now(UTC).isoformat()}  # fmt: skip
                atomic_write(ledger_path, json.dumps(ledger, indent=1, sort_keys=True).encode())
                out["shipped"].append(path.name)
                continue
            except StoreError as exc:
                out["error"] = str(exc)
        out["pending"] += _finished(path, today)  # today's open file is not waiting: it is still written
    return out
