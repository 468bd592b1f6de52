"""Prometheus metrics shared by every process of an installation (prometheus_client's multiprocess mode).

Pages are fetched in the pipeline's runs and the scheduler, requests answered by one or several API
workers: each process writes its samples to its own memory-mapped files in one directory,
`$PROMETHEUS_MULTIPROC_DIR` (default `config.data_dir()/metrics`), and `render()` (the API's `GET /metrics`)
adds up the files of every process, running or finished. Importing this module sets the variable when unset,
before prometheus_client is imported, so the processes started afterwards (kernels, workers) inherit it; the
value class is chosen here too, so a prometheus_client imported earlier by another library does not matter.

Files are named `<type>_<pid>@<host>.db`. The files of processes that have ended on this host are merged into
`<type>_archive.db` by `compact()` (run by `render()`), so the directory does not grow with every process
that fetched or served; a lock file keeps readers from seeing a merge half done.

Every label has a bounded set of values: shops (the retailer name, else the host; at most `MAX_SHOPS` a
process, then `other`), fixed outcome and error kinds, task and product names from pipeline.yaml, API route
templates (never raw paths), HTTP methods and status codes, alert channels.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import re
import socket
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from priceintel import config

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
os.environ.setdefault(DIR_ENV, str(config.data_dir() / "metrics"))  # before prometheus_client, for the children

from prometheus_client import (  # noqa: E402 - the directory must be known first
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.mmap_dict import MmapedDict  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

__all__ = [
    "ALERTS_FAILED",
    "ALERTS_SENT",
    "API_REQUESTS",
    "API_SECONDS",
    "FETCH_ERRORS",
    "FETCH_PAGES",
    "FETCH_SECONDS",
    "RUNS",
    "TASKS",
    "TASK_ROWS",
    "TASK_SECONDS",
    "compact",
    "metrics_dir",
    "render",
    "use_dir",
]

_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
#: the archive files' identity in place of `<pid>@<host>`
ARCHIVE = "archive"
#: distinct shop label values a process uses before it reports `other`
MAX_SHOPS = 64


def _identity() -> str:
    """This process in its file names: `<pid>@<host>` (pids of other hosts sharing the directory differ)."""
    return f"{os.getpid()}@{_HOST}"


def _value_class(path: str | Path) -> tuple[type, bool]:
    """prometheus_client's value class for samples kept in `path` (made when missing); the in-process class
    (this process's samples only) when the directory cannot be written, so counting never breaks the work."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path} is not writable")
    except OSError:
        return values.MutexValue, False
    return values.MultiProcessValue(_identity), True


values.ValueClass, _MULTIPROCESS = _value_class(os.environ[DIR_ENV])


def metrics_dir() -> Path:
    """The shared directory: $PROMETHEUS_MULTIPROC_DIR."""
    return Path(os.environ[DIR_ENV])


# --- the series -----------------------------------------------------------------------------------------------

FETCH_OUTCOMES = ("ok", "not_modified", "http_error", "error", "refused", "other")
FETCH_PAGES = Counter(
    "priceintel_fetch_pages_total",
    "Pages the fetcher was asked for, by shop and outcome (ok, not_modified, http_error, error, refused, other)",
    ["shop", "outcome"],
)
FETCH_ERRORS = Counter(
    "priceintel_fetch_errors_total",
    "Failed fetches by shop and error kind (scrape.results.ERROR_KINDS)",
    ["shop", "kind"],
)
FETCH_SECONDS = Histogram(
    "priceintel_fetch_duration_seconds",
    "Seconds of each HTTP exchange with a shop (request sent to body read, redirects included; per attempt)",
    ["shop"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASK_SECONDS = Histogram(
    "priceintel_pipeline_task_duration_seconds",
    "Seconds each executed pipeline task took (its notebook and hooks), by task",
    ["task"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
TASKS = Counter("priceintel_pipeline_tasks_total", "Pipeline task builds by task and status (executed, failed)",
                ["task", "status"])  # fmt: skip
TASK_ROWS = Gauge(
    "priceintel_pipeline_task_rows",
    "Rows in each tabular product of a task's latest run (the load task: rows loaded per table)",
    ["task", "product"],
    multiprocess_mode="mostrecent",
)
RUNS = Counter("priceintel_pipeline_runs_total", "Pipeline runs by status (success, failed)", ["status"])
ALERTS_SENT = Counter("priceintel_alerts_sent_total", "Alert notifications delivered, by channel", ["channel"])
ALERTS_FAILED = Counter(
    "priceintel_alerts_failed_total", "Alert notifications that could not be delivered, by channel", ["channel"]
)
API_REQUESTS = Counter(
    "priceintel_api_requests_total", "API requests by method, route template and status", ["method", "route", "status"]
)
API_SECONDS = Histogram(
    "priceintel_api_request_duration_seconds",
    "Seconds from an API request's arrival to its last byte, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_ALL = (FETCH_PAGES, FETCH_ERRORS, FETCH_SECONDS, TASK_SECONDS, TASKS, TASK_ROWS, RUNS, ALERTS_SENT, ALERTS_FAILED,
        API_REQUESTS, API_SECONDS)  # fmt: skip

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_shops: set[str] = set()
_shops_lock = threading.Lock()


def shop_label(name: str | None, url: str = "") -> str:
    """A shop's label: its retailer name, else the URL's host (no port); `other` past MAX_SHOPS a process."""
    if not name:
        try:
            name = urlsplit(url).hostname
        except ValueError:  # a malformed URL (the fetcher answers invalid_url)
            name = None
    label = (name or "unknown").strip().lower()[:64] or "unknown"
    if label in _shops:
        return label
    with _shops_lock:
        if len(_shops) >= MAX_SHOPS:
            return "other"
        _shops.add(label)
    return label


def record_fetch(shop: str, outcome: str, kind: str | None) -> None:
    """One page asked of the fetcher: its outcome (FETCH_OUTCOMES) and error kind (None: no error)."""
    FETCH_PAGES.labels(shop, outcome if outcome in FETCH_OUTCOMES else "other").inc()
    if kind:
        FETCH_ERRORS.labels(shop, kind).inc()


def task_finished(task: str, status: str, seconds: float, rows: Mapping[str, int] | None = None) -> None:
    """One pipeline task build: its status (executed / failed), duration and the rows of its products."""
    TASKS.labels(task, status).inc()
    if status == "executed":
        TASK_SECONDS.labels(task).observe(seconds)
        for product, n in (rows or {}).items():
            TASK_ROWS.labels(task, product).set(n)


def run_finished(status: str) -> None:
    """One pipeline run (`priceintel run`, a scheduled run) ended with `status` (success / failed); the files of
    its ended task kernels are merged (`compact`: only this host's processes can be known to have ended, so the
    host that runs the pipeline keeps the shared directory from growing with every kernel)."""
    RUNS.labels(status).inc()
    if _MULTIPROCESS:
        try:
            compact()
        except OSError as exc:  # the next /metrics or run merges them
            logging.getLogger(__name__).warning("metrics: could not merge ended processes' files: %s", exc)


def alert_delivered(channel: str, ok: bool) -> None:
    """One notification (an alert, a digest, a run or quality message) delivered on `channel`, or given up
    after its retries."""
    (ALERTS_SENT if ok else ALERTS_FAILED).labels(channel).inc()


def api_request(method: str, route: str, status: int, seconds: float) -> None:
    """One API request answered."""
    API_REQUESTS.labels(method if method in _METHODS else "OTHER", route, str(status)).inc()
    API_SECONDS.labels(route).observe(seconds)


# --- the directory: exposition, merging the files of ended processes ------------------------------------------


@contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    """flock on `<dir>/.lock` (not a *.db file, so never read as samples): shared to read, exclusive to merge."""
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ended(path: Path) -> list[Path]:
    """Sample files of processes of this host that have ended (never the archive, never another host's)."""
    out = []
    for f in path.glob("*.db"):
        who = f.stem.rsplit("_", 1)[-1]
        pid, _, host = who.partition("@")
        if host == _HOST and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            out.append(f)
    return out


def _merge(mode: str, old: tuple[float, float] | None, new: tuple[float, float]) -> tuple[float, float]:
    """Two samples of one series: counters, histograms and `sum` gauges add up; `max`/`min` keep one;
    `mostrecent` keeps the later (by timestamp)."""
    if old is None:
        return new
    if mode == "max":
        return max(old, new)
    if mode == "min":
        return min(old, new)
    if mode == "mostrecent":
        return new if new[1] >= old[1] else old
    return old[0] + new[0], max(old[1], new[1])


def compact(path: str | Path | None = None) -> int:
    """Merge the files of ended processes into the archive files; returns how many files were merged (the
    files of `live*` gauges are removed, as `mark_process_dead` does; `all` gauges keep their files)."""
    path = Path(path) if path is not None else metrics_dir()
    if not path.is_dir() or not _ended(path):
        return 0
    groups: dict[str, list[Path]] = {}
    with _locked(path, exclusive=True):
        for f in _ended(path):
            groups.setdefault(f.stem.rsplit("_", 1)[0], []).append(f)
        done = 0
        for prefix, files in groups.items():
            mode = prefix.split("_", 1)[1] if prefix.startswith("gauge_") else "sum"
            if mode.startswith("live"):
                for f in files:
                    f.unlink(missing_ok=True)
                continue
            if mode == "all":
                continue
            archive = path / f"{prefix}_{ARCHIVE}.db"
            merged: dict[str, tuple[float, float]] = {}
            for f in ([archive] if archive.exists() else []) + files:
                for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(str(f)):
                    merged[key] = _merge(mode, merged.get(key), (value, timestamp))
            tmp = path / f"{prefix}_{ARCHIVE}.tmp"
            out = MmapedDict(str(tmp))
            try:
                for key, (value, timestamp) in merged.items():
                    out.write_value(key, value, timestamp)
            finally:
                out.close()
            os.replace(tmp, archive)  # then the merged files go: the lock keeps readers from seeing both
            for f in files:
                f.unlink(missing_ok=True)
            done += len(files)
    return done


def render(path: str | Path | None = None) -> tuple[bytes, str]:
    """The text exposition of every process's samples in the directory (ended processes' files merged first):
    (body, content type). Without a usable directory, this process's samples only."""
    if path is None and not _MULTIPROCESS:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    where = Path(path) if path is not None else metrics_dir()
    where.mkdir(parents=True, exist_ok=True)
    compact(where)
    registry = CollectorRegistry(auto_describe=True)
    MultiProcessCollector(registry, path=str(where))
    with _locked(where, exclusive=False):
        return generate_latest(registry), CONTENT_TYPE_LATEST


def use_dir(path: str | Path) -> Path:
    """Keep this process's samples in `path` from now on (and its future children's: the variable is set);
    the samples recorded so far stay where they were. For tests, and a process that must move its files."""
    global _MULTIPROCESS
    os.environ[DIR_ENV] = str(path)
    values.ValueClass, _MULTIPROCESS = _value_class(path)
    with warnings.catch_warnings():  # "not implemented in multi-process mode": the samples stay in the files
        warnings.simplefilter("ignore", UserWarning)
        for metric in _ALL:
            metric.clear()  # children are made anew, with files in the new directory
    with _shops_lock:
        _shops.clear()
    return Path(path)


def _at_exit() -> None:
    """The files of `live*` gauges of this process go when it ends (prometheus_client's mark_process_dead)."""
    if _MULTIPROCESS:
        for f in metrics_dir().glob(f"gauge_live*_{_identity()}.db"):
            f.unlink(missing_ok=True)


atexit.register(_at_exit)
