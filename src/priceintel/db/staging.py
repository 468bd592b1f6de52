"""Validation and staging behind the loaders of `priceintel.db.load`: typed conversion of a frame's columns for
COPY (a bad value raises `LoadError` naming table, column, count and the first offending rows), key and
currency checks, the TEMP staging table, lookups of staged rows, and counted upserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from priceintel.db.errors import LoadError
from priceintel.items import is_missing, jsonable

#: how many offending rows an error message shows
SHOW_ROWS = 5
_MAX_NUMERIC = 1e10  # numeric(12,2) holds |x| < 10^10


@dataclass(frozen=True)
class Col:
    """A staged column: frame name, kind (text|num|int|bool|date|ts), Postgres type, constraints."""

    name: str
    kind: str
    pgtype: str
    required: bool = False
    nonneg: bool = False


#: frame kind of each Postgres type a staged column may have
_KINDS = {"text": "text", "integer": "int", "boolean": "bool", "date": "date", "timestamptz": "ts", "real": "num"}


def cols(spec: str) -> list[Col]:
    """Columns from a compact spec: space-separated `name[:pgtype][!][+]` (type text by default; `!` required,
    `+` not negative), e.g. "sku! ds:date! units:integer!+ price:numeric(12,2)+"."""
    out = []
    for token in spec.split():
        name, _, pgtype = token.rstrip("!+").partition(":")
        pgtype = pgtype or "text"
        kind = "num" if pgtype.startswith("numeric") else _KINDS[pgtype]
        out.append(Col(name, kind, pgtype, required="!" in token, nonneg="+" in token))
    return out


# --------------------------------------------------------------------------- validation


def show_rows(df: pd.DataFrame, mask: pd.Series, cols: Sequence[str]) -> list[dict]:
    """First offending rows as dicts (frame index as `row`) for error messages."""
    shown = [c for c in dict.fromkeys(cols) if c in df.columns]
    out = []
    for idx, rec in df.loc[mask, shown].head(SHOW_ROWS).iterrows():
        out.append({"row": idx, **{k: (None if is_missing(v) else jsonable(v)) for k, v in rec.items()}})
    return out


def bad_rows(
    table: str, column: str, problem: str, df: pd.DataFrame, mask: pd.Series, keys: Sequence[str]
) -> LoadError:
    """LoadError: '<table>.<column>: n row(s) <problem>; first rows: [...]'."""
    n = int(mask.sum())
    rows = show_rows(df, mask, [*keys, column])
    return LoadError(f"{table}.{column}: {n} row(s) {problem}; first rows: {rows}")


def per_value(s: pd.Series, test: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`test` (a vectorised check of a Series) applied to each distinct non-missing value once and spread back
    to every row (False where missing): loads repeat a few retailers, currencies and ids over many rows."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if not len(uniques):
        return pd.Series(False, index=s.index)
    verdict = np.asarray(test(pd.Series(uniques, dtype=object)), dtype=bool)
    return pd.Series(np.where(codes >= 0, verdict[np.maximum(codes, 0)], False), index=s.index)


def _text(s: pd.Series) -> pd.Series:
    """Object series of str/None (integral floats like 12.0 → '12')."""
    mask = s.notna()
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.astype(object).where(mask, None)

    def conv(v: Any) -> str | None:
        if is_missing(v):
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, np.generic):
            v = v.item()
        return str(v)

    return s.map(conv).astype(object)


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _bool(s: pd.Series) -> pd.Series:
    """Object series of True/False/None; unparseable values become the string '?bad'."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype(object)

    def conv(v: Any) -> Any:
        if is_missing(v):
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            return v.strip().lower() in _TRUE
        return "?bad"

    return s.map(conv).astype(object)


def prepare(df: pd.DataFrame, table: str, cols: Sequence[Col], keys: Sequence[str]) -> tuple[list[Col], pd.DataFrame]:
    """Validate and convert the frame's columns for COPY; return (present columns, converted frame)."""
    if not isinstance(df, pd.DataFrame):
        raise LoadError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c.name for c in cols if c.required and c.name not in df.columns]
    if missing:
        raise LoadError(f"{table}: input frame lacks required column(s) {missing}; it has {list(df.columns)}")
    present = [c for c in cols if c.name in df.columns]
    out = {}
    for col in present:
        s = df[col.name]
        given = s.notna()
        if col.kind == "text":
            conv = _text(s)
            if col.required:
                given = given & per_value(conv, lambda u: u.astype(str).str.strip().ne(""))
                conv = conv.where(given, None)
        elif col.kind in ("num", "int"):
            num = pd.to_numeric(s, errors="coerce").astype(float)
            ok = num.notna() & np.isfinite(num) & (num.abs() < _MAX_NUMERIC)
            if col.kind == "int":
                ok &= num.round() == num
            bad = given & ~ok
            if bad.any():
                what = "an integer" if col.kind == "int" else "a finite number below 1e10"
                raise bad_rows(table, col.name, f"with a value that is not {what}", df, bad, keys)
            if col.nonneg and (num < 0).any():
                raise bad_rows(table, col.name, "with a negative value", df, num < 0, keys)
            conv = num.astype(object).where(ok, None)
            if col.kind == "int":
                conv = conv.map(lambda v: None if v is None else int(v))
        elif col.kind == "bool":
            conv = _bool(s)
            bad = conv.eq("?bad") if not pd.api.types.is_bool_dtype(s) else pd.Series(False, index=s.index)
            if bad.any():
                raise bad_rows(table, col.name, "with a value that is not a boolean", df, bad, keys)
        elif col.kind in ("date", "ts"):
            ts = (
                pd.to_datetime(s, errors="coerce", utc=(col.kind == "ts"), format="mixed")
                if not pd.api.types.is_datetime64_any_dtype(s)
                else s
            )
            if col.kind == "ts":
                ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
            bad = given & ts.isna()
            if bad.any():
                raise bad_rows(
                    table,
                    col.name,
                    f"with a value that is not a {'date' if col.kind == 'date' else 'timestamp'}",
                    df,
                    bad,
                    keys,
                )
            if ts.dt.tz is not None:  # ts: UTC wall time; date: the local calendar day
                ts = ts.dt.tz_convert(None) if col.kind == "ts" else ts.dt.tz_localize(None)
            naive = ts.to_numpy("datetime64[us]")
            text = np.datetime_as_string(naive, unit="D" if col.kind == "date" else "us")
            if col.kind == "ts":
                text = np.char.add(text, "+00:00")
            conv = pd.Series(text, index=df.index, dtype=object).where(ts.notna(), None)
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown column kind {col.kind!r}")
        if col.required:
            nulls = conv.isna()
            if nulls.any():
                raise bad_rows(
                    table, col.name, "with a missing value (NaN/None/empty) in a NOT NULL column", df, nulls, keys
                )
        out[col.name] = conv
    return present, pd.DataFrame(out, index=df.index)


def check_unique(table: str, df: pd.DataFrame, conv: pd.DataFrame, keys: Sequence[str], what: str) -> None:
    """Raise LoadError when the (converted) frame holds the same key twice."""
    dup = conv.duplicated(list(keys), keep=False)
    if dup.any():
        raise LoadError(
            f"{table}: {int(dup.sum())} row(s) repeat the key ({', '.join(keys)}) — {what}; "
            f"first rows: {show_rows(df, dup, keys)}"
        )


def check_currency(table: str, df: pd.DataFrame, conv: pd.DataFrame, keys: Sequence[str]) -> None:
    """Currency must be an ISO-4217 code (3 upper-case letters) and present whenever a price is."""
    if "currency" not in conv:
        if "price" in conv and conv["price"].notna().any():
            raise LoadError(f"{table}.currency: input frame has prices but no currency column")
        return
    cur = conv["currency"]
    bad = cur.notna() & ~per_value(cur, lambda u: u.astype(str).str.fullmatch(r"[A-Z]{3}"))
    if bad.any():
        raise bad_rows(
            table, "currency", "with a non-ISO-4217 currency (expected 3 upper-case letters, e.g. USD)", df, bad, keys
        )
    if "price" in conv:
        missing = conv["price"].notna() & cur.isna()
        if missing.any():
            raise bad_rows(table, "currency", "with a price but no currency", df, missing, keys)


# --------------------------------------------------------------------------- staging


def stage(conn: Connection, name: str, cols: Sequence[Col], frame: pd.DataFrame) -> int:
    """(Re)create TEMP table `name` (ON COMMIT DROP) with a `_row` column and COPY the frame in (as CSV written
    by Arrow, one block: no Python loop per row)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
    ddl = ", ".join(["_row bigint", *(f"{c.name} {c.pgtype}" for c in cols)])
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({ddl}) ON COMMIT DROP")
    names = ", ".join(["_row", *(c.name for c in cols)])
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection always has its DBAPI (psycopg) connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {name} ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(_csv(frame, cols))
    return len(frame)


def _csv(frame: pd.DataFrame, cols: Sequence[Col]) -> bytes:
    """The frame's `cols` after `_row` (0, 1, …) as CSV for COPY: every value quoted, NULL as nothing."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays = [pa.array(np.arange(len(frame), dtype=np.int64))]
    for c in cols:
        values = frame[c.name].to_numpy(dtype=object)
        try:
            arrays.append(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds (e.g. str and int): as text
            arrays.append(pa.array([None if v is None else str(v) for v in values], type=pa.string()))
    table = pa.table(arrays, names=["_row", *(c.name for c in cols)])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return sink.getvalue().to_pybytes()


def _pos_mask(df: pd.DataFrame, positions: Iterable[int]) -> pd.Series:
    """Boolean mask over df selecting the given 0-based positions."""
    mask = np.zeros(len(df), dtype=bool)
    mask[list(positions)] = True
    return pd.Series(mask, index=df.index)


def check_lookup(
    conn: Connection, df: pd.DataFrame, table: str, column: str, problem: str, sql: str, keys: Sequence[str]
) -> None:
    """Run sql (returning `_row` of staged rows whose lookup failed); raise LoadError if any."""
    rows = conn.execute(sa.text(sql)).scalars().all()
    if rows:
        raise bad_rows(table, column, problem, df, _pos_mask(df, rows), keys)


def upsert_counts(conn: Connection, table: str, sql: str, staged: int, params: dict | None = None) -> dict:
    """Execute an `INSERT … RETURNING (xmax = 0) AS inserted` wrapped in a counting CTE."""
    wrapped = f"WITH w AS ({sql}) SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w"
    try:
        ins, upd = conn.execute(sa.text(wrapped), params or {}).one()
    except DBAPIError as err:
        raise LoadError(f"{table}: PostgreSQL rejected the load: {' '.join(str(err.orig).split())}") from None
    return {"staged": staged, "inserted": int(ins), "updated": int(upd)}


def execute(conn: Connection, table: str, sql: str, params: dict | None = None) -> int:
    """Execute one statement of a load; returns its row count. PostgreSQL's refusal becomes a LoadError."""
    try:
        return int(conn.execute(sa.text(sql), params or {}).rowcount)
    except DBAPIError as err:
        raise LoadError(f"{table}: PostgreSQL rejected the load: {' '.join(str(err.orig).split())}") from None


def distinct(cols: Sequence[str], new: Sequence[str] | None = None) -> str:
    """`(t.a, t.b) IS DISTINCT FROM (new_a, new_b)` (new defaults to excluded.<col>)."""
    new = new or [f"excluded.{c}" for c in cols]
    left = ", ".join(f"t.{c}" for c in cols)
    right = ", ".join(new)
    if len(cols) == 1:
        return f"t.{cols[0]} IS DISTINCT FROM {right}"
    return f"ROW({left}) IS DISTINCT FROM ROW({right})"


def empty_counts() -> dict:
    """Counts of a load with nothing staged."""
    return {"staged": 0, "inserted": 0, "updated": 0}
