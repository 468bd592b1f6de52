"""Structured logs: one JSON object a line, carrying the ids of the work in progress.

`setup(service)` (once per process; later calls do nothing) sends the root logger's records to stderr and to a
daily file `config.data_dir()/logs/<YYYY-MM-DD>.jsonl` (UTC days; always JSON; finished days may be shipped to
object storage). On stderr the format is JSON for unattended processes and plain text on
an interactive terminal; `PRICEINTEL_LOG_FORMAT=json|text` decides, `PRICEINTEL_LOG_LEVEL` sets the level (INFO).
Every message and traceback is `config.redact`ed.

The ids (`IDS`): `run_id` (a pipeline run: `schedule-<schedule_run.run_id>` for the scheduler, `run-<hex>` for
`priceintel run`), `task` (the pipeline task), `tenant` (whose data), `request_id` (one API request). They come
from `context(**ids)` / `bind(**ids)` (contextvars: they follow threads started with `contextvars.copy_context`
and asyncio tasks), else from registered sources (`set_source("tenant", tenancy.current)`), else from the
environment a parent process exported (`context(export=True)`: PRICEINTEL_RUN_ID, PRICEINTEL_TASK,
PRICEINTEL_TENANT), which is how a pipeline task's kernel knows its run and task.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from priceintel import config

__all__ = ["IDS", "bind", "context", "current", "log_dir", "new_run_id", "set_source", "setup", "unbind"]

#: the ids a log line may carry
IDS = ("run_id", "task", "tenant", "request_id")
#: the environment variables a child process reads its ids from
ENV = {"run_id": "PRICEINTEL_RUN_ID", "task": "PRICEINTEL_TASK", "tenant": "PRICEINTEL_TENANT"}
LEVEL_ENV = "PRICEINTEL_LOG_LEVEL"
FORMAT_ENV = "PRICEINTEL_LOG_FORMAT"
#: set by `setup` for the children of a process whose logs are set up (a pipeline kernel then sets up its own)
PARENT_ENV = "PRICEINTEL_LOG_PARENT"

_NONE: Mapping[str, str] = MappingProxyType({})
_IDS: ContextVar[Mapping[str, str]] = ContextVar("priceintel_log_ids", default=_NONE)
_SOURCES: dict[str, Callable[[], str | None]] = {}
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"service": None, "handlers": []}


# --- ids ------------------------------------------------------------------------------------------------------


def _check(ids: Mapping[str, Any]) -> dict[str, str | None]:
    unknown = sorted(set(ids) - set(IDS))
    if unknown:
        raise ValueError(f"unknown log id(s) {unknown}; known: {list(IDS)}")
    return {k: None if v is None else str(v) for k, v in ids.items()}


def bind(**ids: Any) -> Token:
    """Add ids to this context (None removes one); returns the token `unbind` takes."""
    merged = dict(_IDS.get())
    for key, value in _check(ids).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return _IDS.set(MappingProxyType(merged))


def unbind(token: Token) -> None:
    """Restore the ids as they were before the `bind` that returned `token`."""
    _IDS.reset(token)


@contextmanager
def context(*, export: bool = False, **ids: Any) -> Iterator[dict[str, str]]:
    """The ids bound inside the block; with `export`, also in the environment of the processes started in it
    (PRICEINTEL_RUN_ID, PRICEINTEL_TASK, PRICEINTEL_TENANT; restored afterwards)."""
    checked = _check(ids)
    token = bind(**checked)
    exported = {ENV[key]: value for key, value in checked.items() if key in ENV} if export else {}
    try:
        with config.environment(exported):
            yield current()
    finally:
        unbind(token)


def set_source(name: str, source: Callable[[], str | None] | None) -> None:
    """Where an id comes from when nothing bound it (e.g. `tenant` from `db.tenancy.current`); None removes."""
    _check({name: None})
    if source is None:
        _SOURCES.pop(name, None)
    else:
        _SOURCES[name] = source


def current() -> dict[str, str]:
    """The ids of this context: bound ones, else from their source, else from the environment."""
    out = {key: os.environ[var] for key, var in ENV.items() if os.environ.get(var)}
    for key, source in _SOURCES.items():
        try:
            value = source()
        except Exception:  # noqa: BLE001 - a log line never fails because an id cannot be read
            value = None
        if value:
            out[key] = str(value)
    out.update(_IDS.get())
    return out


def new_run_id(prefix: str = "run") -> str:
    """A fresh run id: `run-20260701T060000-1a2b3c` (UTC start time and 6 random hex digits)."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


# --- formatting -----------------------------------------------------------------------------------------------


class _ContextFilter(logging.Filter):
    """Puts the ids and the service on each record and redacts its message (once, for every handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_priceintel", False):
            record._priceintel = True
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is shown, not raised
                message = f"{record.msg!r} % {record.args!r}"
            record.msg, record.args = config.redact(message), None
            for key, value in current().items():
                if not hasattr(record, key):
                    setattr(record, key, value)
            record.service = _STATE["service"] or "priceintel"
        return True


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    def redacted(text: Any) -> Any:
        return config.redact(text) if isinstance(text, str) else [config.redact(str(t)) for t in text]

    class Formatter(JsonFormatter):
        def formatException(self, ei: Any) -> Any:  # noqa: N802 - logging's name
            return redacted(super().formatException(ei))

        def formatStack(self, stack_info: str) -> Any:  # noqa: N802 - logging's name
            return redacted(super().formatStack(stack_info))

    return Formatter(
        ["levelname", "name", "message", "process"],
        rename_fields={"levelname": "level", "name": "logger", "process": "pid", "exc_info": "exception"},
        reserved_attrs=[*RESERVED_ATTRS, "taskName", "_priceintel", "ids"],
        timestamp=True,
        json_ensure_ascii=False,
    )


class _TextFormatter(logging.Formatter):
    """`2026-07-01 06:00:00 INFO priceintel.x [run=… task=…] message` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        shown = [f"{k.removesuffix('_id')}={getattr(record, k)}" for k in IDS if getattr(record, k, None)]
        record.ids = f" [{' '.join(shown)}]" if shown else ""
        return super().format(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return config.redact(super().formatException(ei))


# --- the daily file -------------------------------------------------------------------------------------------


def log_dir() -> Path:
    """Where the daily files go: `config.data_dir()/logs`."""
    return config.data_dir() / "logs"


class DailyFileHandler(logging.Handler):
    """Appends each record as one line to `<dir>/<YYYY-MM-DD>.jsonl` (the record's UTC day), in one write(2) on
    an O_APPEND descriptor, so lines of several processes sharing the file never interleave."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        self._day: str | None = None
        self._fd: int | None = None

    def path_for(self, day: str) -> Path:
        return self.directory / f"{day}.jsonl"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record).replace("\n", "\\n") + "\n").encode("utf-8")
            day = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d")
            with self.lock or threading.Lock():
                if day != self._day or self._fd is None:
                    self._close_fd()
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path_for(day), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    self._day = day
                os.write(self._fd, line)
        except Exception:  # noqa: BLE001 - logging never raises into the work
            self.handleError(record)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._day = None, None

    def close(self) -> None:
        with self.lock or threading.Lock():
            self._close_fd()
        super().close()


class _Stderr(logging.StreamHandler):
    """A stream handler on whatever `sys.stderr` is when a record comes (as logging's last resort is)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


# --- setup ----------------------------------------------------------------------------------------------------


def _level() -> int:
    raw = (os.environ.get(LEVEL_ENV) or "INFO").strip().upper()
    level = logging.getLevelName(raw)
    if not isinstance(level, int):
        raise config.ConfigError(f"environment variable {LEVEL_ENV}={raw!r} is not DEBUG, INFO, WARNING or ERROR")
    return level


def _format() -> str:
    raw = (os.environ.get(FORMAT_ENV) or "").strip().lower()
    if raw and raw not in ("json", "text"):
        raise config.ConfigError(f"environment variable {FORMAT_ENV}={raw!r} must be json or text")
    return raw or ("text" if sys.stderr.isatty() else "json")


def setup(
    service: str = "priceintel", *, console_level: int | None = None, directory: str | Path | None = None
) -> bool:
    """Set up this process's logs (see the module docstring); False when they were set up already.

    `console_level`: a higher level for stderr than for the file (a pipeline kernel's stderr is its notebook);
    `directory`: the daily files' folder (default `log_dir()`). ConfigError for a bad PRICEINTEL_LOG_* value."""
    with _LOCK:
        if _STATE["handlers"]:
            return False
        level, fmt = _level(), _format()
        if console_level is None and sys.stderr.isatty() and not os.environ.get(LEVEL_ENV):
            console_level = logging.WARNING  # a person at a terminal: the command's own output and warnings
        flt = _ContextFilter()
        console = _Stderr()
        console.setFormatter(_json_formatter() if fmt == "json" else _TextFormatter())
        console.setLevel(max(level, console_level or level))
        handlers: list[logging.Handler] = [console]
        target = Path(directory) if directory is not None else log_dir()
        try:
            target.mkdir(parents=True, exist_ok=True)
            daily = DailyFileHandler(target)
            daily.setFormatter(_json_formatter())
            handlers.append(daily)
        except OSError as exc:
            print(f"warning: no log file in {target}: {exc}", file=sys.stderr)
        root = logging.getLogger()
        for handler in handlers:
            handler.addFilter(flt)
            root.addHandler(handler)
        levels = {"": root.level, "papermill": logging.getLogger("papermill").level}
        root.setLevel(level)
        if level > logging.DEBUG:
            logging.getLogger("papermill").setLevel(logging.WARNING)  # a line per notebook cell otherwise
        _STATE.update(service=service, handlers=handlers, levels=levels)
        os.environ[PARENT_ENV] = str(os.getpid())
        return True


@contextmanager
def console_at_least(level: int) -> Iterator[None]:
    """While the block runs, stderr gets only records of `level` and above (the daily file keeps every record).

    A pipeline task's notebook runs in this process (`pipeline.engine`), what a cell writes to `sys.stderr`
    going into the notebook: its output shows the task's warnings, as a task kernel's did
    (`start_task_kernel`), not this process's INFO lines. A no-op before `setup`."""
    with _LOCK:
        consoles = [h for h in _STATE["handlers"] if isinstance(h, _Stderr)]
        before = [h.level for h in consoles]
        for handler in consoles:
            handler.setLevel(max(handler.level, level))
    try:
        yield
    finally:
        with _LOCK:
            for handler, old in zip(consoles, before, strict=True):
                handler.setLevel(old)


def reset() -> None:
    """Remove what `setup` added (tests; a process that re-reads its settings)."""
    with _LOCK:
        root = logging.getLogger()
        for handler in _STATE["handlers"]:
            root.removeHandler(handler)
            handler.close()
        for name, level in (_STATE.get("levels") or {}).items():
            logging.getLogger(name or None).setLevel(level)
        _STATE.update(service=None, handlers=[], levels={})
        if os.environ.get(PARENT_ENV) == str(os.getpid()):
            os.environ.pop(PARENT_ENV, None)


def is_task_kernel() -> bool:
    """Whether this process runs a pipeline task for a parent whose logs are set up (PRICEINTEL_TASK exported,
    PRICEINTEL_LOG_PARENT another process)."""
    parent = os.environ.get(PARENT_ENV)
    return bool(os.environ.get(ENV["task"])) and bool(parent) and parent != str(os.getpid())
