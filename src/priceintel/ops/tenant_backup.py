"""One tenant's backup and restore (`priceintel backup|restore --tenant NAME`).

The backup reads, in ONE `REPEATABLE READ READ ONLY` transaction as the database owner, every row of the tenant
in every tenant-owned table (each public table with a `tenant_id` column) with `COPY … TO STDOUT (FORMAT csv)`
(PostgreSQL's own text form of every value: exact), plus the rows of shared tables those rows reference (days of
the calendar `dim_date`), into `tables/<table>.csv` and `shared/<table>.csv` with a manifest (tables in
parent → child order, row counts, columns, the tenant's name and plan).

The restore replaces the tenant's rows in one transaction: the tenant is created when absent, its rows deleted
child → parent, the backup's inserted parent → child with their keys kept (and `tenant_id` set to the target's
id for the tenant), each sequence advanced with setval to at least its table's largest id; it refuses, naming the
table, key and tenant, when a kept key belongs to another tenant's row. Afterwards the tenant tokens are synced
and the app materialized views refreshed (`db.views.refresh`).
"""

from __future__ import annotations

import csv as csvlib
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from psycopg import sql

from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, tenancy, views
from priceintel.ops.backup import (
    BackupError,
    base_manifest,
    check_revision,
    default_output,
    read_backup,
    snapshot,
    write_backup,
)

__all__ = ["backup_tenant", "restore_tenant"]


def _q(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _cols(conn: Any, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
               ORDER BY attnum""",
            (f"public.{table}",),
        )
    ]


def tenant_tables(conn: Any) -> tuple[list[str], list[tuple[str, list[str], str, list[str]]]]:
    """(tenant-owned tables, parents before children; foreign keys from them to shared tables other than
    `tenant`: (table, columns, shared table, its columns))."""
    owned = {
        r[0]
        for r in conn.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'tenant'
                 AND NOT c.relispartition"""
        )
    } - {*views.ALL_TENANTS, *views.INCREMENTAL.values()}  # partitions: read through fact_price; rollups: derived
    parents: dict[str, set[str]] = defaultdict(set)
    shared = []
    for child, parent, ccols, pcols in conn.execute(
        """SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
                  ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                  ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
           FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"""
    ):
        if child in owned and parent in owned and child != parent:
            parents[child].add(parent)
        elif child in owned and parent not in owned and parent != "tenant":
            shared.append((child, list(ccols), parent, list(pcols)))
    order: list[str] = []
    done: set[str] = set()

    def visit(t: str, path: tuple[str, ...] = ()) -> None:
        if t in done or t in path:
            return
        for p in sorted(parents[t]):
            visit(p, (*path, t))
        done.add(t)
        order.append(t)

    for t in sorted(owned):
        visit(t)
    if "fact_price" in owned and not any(c == "fact_price" and p == "dim_date" for c, _, p, _ in shared):
        shared.append(("fact_price", ["date_key"], "dim_date", ["date_key"]))  # no foreign key since 0017
    return order, shared


def backup_tenant(name: str, out: str | os.PathLike | None = None, url: str | None = None) -> dict:
    """Back up one tenant's rows (see the module doc); returns the manifest and the path."""
    tenancy.check_name(name)
    engine = db_engine.get_engine(url)
    out = Path(out) if out is not None else default_output(f"tenant-{name}")
    manifest = base_manifest(engine, "tenant")
    with tempfile.TemporaryDirectory(prefix="priceintel-backup-") as tmp, snapshot(engine) as conn:
        row = conn.execute("SELECT tenant_id, plan, is_default FROM tenant WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise BackupError(f"no tenant {name!r} in database {engine.url.database}")
        tid = int(row[0])
        manifest["tenant"] = {"name": name, "plan": row[1], "is_default": row[2]}
        order, shared = tenant_tables(conn)
        members: dict[str, Path] = {}
        manifest["tables"], manifest["shared"] = {}, {}
        for table in order:
            where = sql.SQL("tenant_id = {}").format(sql.Literal(tid))
            members[f"tables/{table}.csv"] = path = Path(tmp) / "tables" / f"{table}.csv"
            manifest["tables"][table] = _copy_out(conn, table, where, path)
        for parent in sorted({s[2] for s in shared}):
            refs = [
                sql.SQL("({}) IN (SELECT {} FROM {} WHERE tenant_id = {})").format(
                    sql.SQL(", ").join(map(_q, pcols)), sql.SQL(", ").join(map(_q, ccols)), _q(child), sql.Literal(tid)
                )
                for child, ccols, p, pcols in shared
                if p == parent
            ]
            members[f"shared/{parent}.csv"] = path = Path(tmp) / "shared" / f"{parent}.csv"
            manifest["shared"][parent] = _copy_out(conn, parent, sql.SQL(" OR ").join(refs), path)
        manifest["order"] = order
        write_backup(out, manifest, members)
    return {"path": out, "manifest": manifest}


def _copy_out(conn: Any, table: str, where: sql.Composable, path: Path) -> dict:
    """COPY the rows of `table` matching `where` (sorted, so equal data gives equal files) to a CSV file."""
    cols = _cols(conn, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    query = sql.SQL("COPY (SELECT * FROM {} WHERE {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)").format(
        _q(table), where, sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(cols)))
    )
    with open(path, "wb") as fh, conn.cursor().copy(query) as copy:
        for chunk in copy:
            fh.write(chunk)
    n = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_q(table), where)).fetchone()[0]
    return {"rows": int(n), "columns": cols}


def restore_tenant(path: str | os.PathLike, name: str | None = None, yes: bool = False, url: str | None = None) -> dict:
    """Replace a tenant's rows with a tenant backup (as `name`, default the backup's tenant); see the module doc."""
    import psycopg

    from priceintel.ops.backup import _conninfo, libpq

    path = Path(path)
    engine = db_engine.get_engine(url)
    with tempfile.TemporaryDirectory(prefix="priceintel-restore-") as tmp:
        manifest = read_backup(path, Path(tmp))  # every member checked before the database is touched
        if manifest.get("kind") != "tenant":
            raise BackupError(f"{path} is a whole-warehouse backup: restore it without --tenant")
        check_revision(path, manifest)
        migrate.upgrade(engine.url.render_as_string(hide_password=False))  # a fresh database gets its schema
        name = tenancy.check_name(name or manifest["tenant"]["name"])
        params, env = libpq(engine)
        with psycopg.connect(_conninfo(params), password=env.get("PGPASSWORD")) as conn:
            tid, created = _tenant_id(conn, name, manifest["tenant"]["plan"])
            deleted = _delete(conn, manifest["order"], tid, name, yes, path)
            for parent in manifest.get("shared", {}):
                _copy_in(conn, parent, Path(tmp) / "shared" / f"{parent}.csv", None, path)
            rows = 0
            for table in manifest["order"]:
                rows += _copy_in(conn, table, Path(tmp) / "tables" / f"{table}.csv", tid, path)
            conn.commit()
    with tenancy.as_owner(), engine.begin() as sconn:
        load.tidy_partitions(sconn)  # restored prices of months without a partition yet
    tenancy.sync_tokens(engine)  # a new tenant's token hash, under this installation's key
    views.refresh(engine)
    return {"path": path, "tenant": name, "created": created, "tables": len(manifest["order"]), "rows": rows,
            "deleted": deleted}  # fmt: skip


def _tenant_id(conn: Any, name: str, plan: str) -> tuple[int, bool]:
    row = conn.execute("SELECT tenant_id FROM tenant WHERE name = %s FOR UPDATE", (name,)).fetchone()
    if row is not None:
        return int(row[0]), False
    new = conn.execute("INSERT INTO tenant (name, plan) VALUES (%s, %s) RETURNING tenant_id", (name, plan))
    return int(new.fetchone()[0]), True


def _delete(conn: Any, order: list[str], tid: int, name: str, yes: bool, path: Path) -> int:
    """Delete the tenant's rows child → parent; refuse without `yes` when it has any."""
    have = {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(_q(t)), (tid,)).fetchone()[0]
        for t in order
    }
    total = sum(have.values())
    if total and not yes:
        busiest = ", ".join(f"{t} {n}" for t, n in sorted(have.items(), key=lambda x: -x[1])[:3] if n)
        raise BackupError(
            f"tenant {name!r} holds {total} rows ({busiest}, …): pass --yes to replace them with {path.name}"
        )
    for t in reversed(order):
        conn.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(_q(t)), (tid,))
    return int(total)


def _copy_in(conn: Any, table: str, csv: Path, tid: int | None, path: Path) -> int:
    """Load one CSV through a staging table: tenant_id set to `tid` (a tenant table) or rows already present
    skipped (a shared table); kept keys checked against other tenants' rows; sequences advanced."""
    with open(csv, encoding="utf-8", newline="") as fh:
        cols = next(csvlib.reader(fh), [])
    missing = sorted(set(cols) - set(_cols(conn, table)))
    if missing:
        raise BackupError(f"backup {path}: table {table} of this database has no column {missing[0]}")
    stage = f"_restore_{table}"
    conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {} WITH NO DATA").format(
        _q(stage), _q(table)))  # fmt: skip
    col_sql = sql.SQL(", ").join(_q(c) for c in cols)
    with (
        open(csv, "rb") as fh,
        conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER)").format(_q(stage), col_sql)
        ) as copy,
    ):
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            copy.write(chunk)
    if tid is not None:
        conn.execute(sql.SQL("UPDATE {} SET tenant_id = %s").format(_q(stage)), (tid,))
        _check_collisions(conn, table, stage, path)
        conflict = sql.SQL("")
    else:
        conflict = sql.SQL(" ON CONFLICT DO NOTHING")
    n = conn.execute(
        sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}{}").format(
            _q(table), col_sql, col_sql, _q(stage), conflict
        )
    ).rowcount
    _advance_sequences(conn, table)
    return int(n) if tid is not None else 0


def _check_collisions(conn: Any, table: str, stage: str, path: Path) -> None:
    """Refuse when a row to insert has a unique key (primary key included) another tenant's row holds."""
    keys = conn.execute(
        """SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) k(n) JOIN pg_attribute a
                        ON a.attrelid = i.indrelid AND a.attnum = k.n)
           FROM pg_index i WHERE i.indrelid = %s::regclass AND i.indisunique
             AND i.indexprs IS NULL AND i.indpred IS NULL""",
        (f"public.{table}",),
    ).fetchall()
    for (cols,) in keys:
        on = sql.SQL(" AND ").join(sql.SQL("s.{c} = t.{c}").format(c=_q(c)) for c in cols)
        hit = conn.execute(
            sql.SQL("SELECT {}, t.tenant_id FROM {} s JOIN {} t ON {} LIMIT 1").format(
                sql.SQL(", ").join(sql.SQL("s.{}::text").format(_q(c)) for c in cols), _q(stage), _q(table), on
            )
        ).fetchone()
        if hit is not None:
            other = conn.execute("SELECT name FROM tenant WHERE tenant_id = %s", (hit[-1],)).fetchone()
            raise BackupError(
                f"backup {path}: {table} ({', '.join(cols)}) = ({', '.join(map(str, hit[:-1]))}) is a row of tenant "
                f"{other[0] if other else hit[-1]!r} in this database; keys are kept, so nothing was restored "
                "(restore into a database where they are free, e.g. a fresh one)"
            )


def _advance_sequences(conn: Any, table: str) -> None:
    """setval each sequence of the table's columns to at least the column's largest value."""
    for col in _cols(conn, table):
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (f"public.{table}", col)).fetchone()[0]
        if seq is None:
            continue
        conn.execute(
            sql.SQL(
                "SELECT setval({name}, m) FROM (SELECT max({c}) AS m FROM {t}) x WHERE m > "
                "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {s})"
            ).format(name=sql.Literal(seq), c=_q(col), t=_q(table), s=sql.SQL(seq))
        )
