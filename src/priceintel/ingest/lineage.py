"""Lineage of an import: the file's sha256, its archived copy, the `import_run` row, and `run_import`, which
reads, checks and loads a file in one transaction with its import_run row."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from priceintel import PriceIntelError, config
from priceintel.ingest.read import read_table
from priceintel.ingest.result import ImportResult, IngestError, Issue, refusal, write_rejects

__all__ = ["KINDS", "Checked", "file_sha256", "archive_file", "archived_path", "run_import"]

KINDS = ("catalog", "sales", "watch")


@dataclass
class Checked:
    """A checked file: the rows to load (canonical columns) and the issues found."""

    valid: pd.DataFrame
    rejects: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archived_path(path: str | Path, kind: str, sha: str, root: Path | None = None) -> Path:
    """Where `archive_file` keeps a copy of an imported file: `<root>/imports/<kind>/<sha[:12]>-<name>` (root: the
    data dir)."""
    return Path(root or config.data_dir()) / "imports" / kind / f"{sha[:12]}-{Path(path).name}"


def archive_file(path: Path, kind: str, sha: str, root: Path | None = None) -> Path:
    """Copy the raw file to `archived_path(...)`; kept if already there."""
    target = archived_path(path, kind, sha, root)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return target


def _insert_run(conn: Connection, kind: str, path: Path, sha: str, strict: bool, by: str | None = None) -> int:
    """A new import_run row (status running); its id. `by`: who imports (None: the command line)."""
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO import_run (kind, path, sha256, strict, code_version, imported_by) "
                "VALUES (:k, :p, :s, :st, :v, :by) RETURNING import_run_id"
            ),
            {"k": kind, "p": str(path), "s": sha, "st": strict, "v": config.code_version(), "by": by},
        ).scalar_one()
    )


def _finish_run(
    conn: Connection, run_id: int, status: str, counts: dict, rejects_path: Path | None, message: str | None
) -> None:
    """Close an import_run row with its status, counts, rejects file and message."""
    conn.execute(
        sa.text(
            """UPDATE import_run SET finished_at = clock_timestamp(), status = :st, rows_total = :t,
                   rows_inserted = :i, rows_updated = :u, rows_unchanged = :n, rows_rejected = :r,
                   rejects_path = :rp, message = :m
               WHERE import_run_id = :id"""
        ),
        {
            "st": status,
            "t": counts.get("total"),
            "i": counts.get("inserted"),
            "u": counts.get("updated"),
            "n": counts.get("unchanged"),
            "r": counts.get("rejected"),
            "rp": None if rejects_path is None else str(rejects_path),
            "m": message,
            "id": run_id,
        },
    )


def _record_failure(
    engine: Engine, kind: str, path: Path, sha: str, strict: bool, counts: dict, msg: str, by: str | None = None
) -> None:
    """A failed import_run row in its own transaction (the data transaction rolled back)."""
    try:
        with engine.begin() as conn:
            run_id = _insert_run(conn, kind, path, sha, strict, by)
            _finish_run(conn, run_id, "failed", counts, None, msg)
    except SQLAlchemyError:  # the database itself is the problem: the original error says more
        pass


def _status(valid: int, rejected: int) -> str:
    """success (nothing rejected), partial (some rows), failed (no row loaded)."""
    if not rejected:
        return "success"
    return "partial" if valid else "failed"


def _db_error(path: Path, err: SQLAlchemyError) -> IngestError:
    """IngestError with the database's one-line reason."""
    reason = " ".join(str(getattr(err, "orig", None) or err).split())
    return IngestError(f"{path.name}: the database refused the import: {reason}")


def run_import(
    engine: Engine,
    kind: str,
    path: str | Path,
    check: Callable[[Connection, Path, pd.DataFrame], Checked],
    load: Callable[[Connection, pd.DataFrame, int], dict],
    *,
    strict: bool = False,
    encoding: str | None = None,
    archive_root: str | Path | None = None,
    by: str | None = None,
) -> ImportResult:
    """Read `path` (`read_table`), archive it, check its rows and load the valid ones with an import_run row, all
    in one transaction; `load` returns {"inserted", "updated"}. With `strict`, any rejected row refuses the file.
    `by` names who imports (import_run.imported_by; None: the command line)."""
    path = Path(path).expanduser().resolve()
    df = read_table(path, encoding=encoding)
    sha = file_sha256(path)
    archived = archive_file(path, kind, sha, Path(archive_root) if archive_root else None)
    counts = {"total": len(df), "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    try:
        with engine.begin() as conn:
            checked = check(conn, path, df)
            counts["rejected"] = len({i.row for i in checked.rejects})
            rejects_path = write_rejects(path, checked.rejects)
            if strict and checked.rejects:
                raise refusal(path, checked.rejects, rejects_path)
            run_id = _insert_run(conn, kind, path, sha, strict, by)
            if not checked.valid.empty:
                loaded = load(conn, checked.valid, run_id)
                counts["inserted"], counts["updated"] = int(loaded["inserted"]), int(loaded["updated"])
            counts["unchanged"] = len(checked.valid) - counts["inserted"] - counts["updated"]
            status = _status(len(checked.valid), counts["rejected"])
            _finish_run(conn, run_id, status, counts, rejects_path, None)
    except PriceIntelError as err:
        _record_failure(engine, kind, path, sha, strict, counts, str(err), by)
        raise
    except SQLAlchemyError as err:
        error = _db_error(path, err)
        _record_failure(engine, kind, path, sha, strict, counts, str(error), by)
        raise error from None
    return ImportResult(kind, path, run_id, status, counts, checked.warnings, checked.rejects, rejects_path, archived)
