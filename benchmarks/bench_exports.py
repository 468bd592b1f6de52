"""Exports of a 150,000-row prices view (issue #20, item 7): the column-wise Excel writer (apps.xlsx) beside the
openpyxl write-only writer it replaced and xlsxwriter's constant-memory mode (both one Python call per cell),
CSV, and the streamed Parquet of the API, in one run on one frame.

The frame has the prices view's typed columns (apps.specs: dates, text, floats, booleans, ints) with realistic
values from a seeded generator; no database is involved (the database's share of an export is measured by
bench_apps). Each writer runs `REPEATS` times; the figures are the median seconds, the output size, and the peak
memory the writer allocated (tracemalloc, in a run of its own). Results: reports/benchmarks/exports.json.
"""

from __future__ import annotations

import io
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd
from _common import record_resources, run_cli

from priceintel.apps import export
from priceintel.apps.specs import SPECS, typed

REPEATS = 3


def prices_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """n rows shaped like the prices view (its columns and dtypes)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-01-01", periods=365, freq="D")
    shops = np.array(["amazon", "walmart", "target", "bestbuy"])
    raw = {
        "ds": days[rng.integers(0, len(days), n)],
        "retailer": shops[rng.integers(0, len(shops), n)],
        "sku": [f"SKU-{i:05d}" for i in rng.integers(0, 50_000, n)],
        "price": np.round(rng.uniform(3, 400, n), 2),
        "currency": "USD",
        "in_stock": rng.random(n) > 0.05,
        "promo": rng.random(n) > 0.8,
        "our_price": np.round(rng.uniform(3, 400, n), 2),
        "gap_pct": np.round(rng.normal(0, 8, n), 2),
        "listing_id": rng.integers(1, 200_000, n),
    }
    cols = SPECS["prices"].columns
    for name, kind in cols.items():  # the view's descriptive columns (title, category, ...)
        if name not in raw:
            raw[name] = [f"{name} {i % 997}" for i in range(n)] if kind == "str" else None
    return typed(pd.DataFrame(raw), cols)


def excel_ready(df: pd.DataFrame) -> pd.DataFrame:
    """For the per-cell reference writers: naive UTC timestamps, nullable types as plain objects."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is not None:
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif isinstance(s.dtype, (pd.BooleanDtype, pd.Int64Dtype)):
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def column_values(s: pd.Series) -> list:
    """One column's values for a writer called once per cell: dates as date, timestamps as datetime, numbers as
    int/float, booleans as bool, missing as None."""
    if pd.api.types.is_datetime64_any_dtype(s):
        nn = s.dropna()
        if (nn.dt.normalize() == nn).all():
            return [None if pd.isna(v) else v.date() for v in s]
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    if pd.api.types.is_float_dtype(s):
        return [None if math.isnan(v) else float(v) for v in s.to_numpy()]
    return [None if v is None or v is pd.NA else (v.item() if isinstance(v, np.generic) else v)
            for v in s.astype(object)]  # fmt: skip


def openpyxl_reference(frames: dict[str, pd.DataFrame]) -> bytes:
    """The writer replaced: openpyxl in write-only (streaming) mode, typed cells, bold header, widths."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    for name, df in frames.items():
        data = excel_ready(df)
        ws = wb.create_sheet(name[:31])
        header = []
        for col in data.columns:
            cell = WriteOnlyCell(ws, value=str(col))
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(header)
        for row in zip(*(column_values(data[c]) for c in data.columns)):
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsxwriter_reference(frames: dict[str, pd.DataFrame]) -> bytes:
    """xlsxwriter in constant-memory mode, one write call per cell (typed, bold header)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    bold, day = wb.add_format({"bold": True}), wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, df in frames.items():
        data = excel_ready(df)
        ws = wb.add_worksheet(name[:31])
        for j, col in enumerate(data.columns):
            ws.write_string(0, j, str(col), bold)
        for r, row in enumerate(zip(*(column_values(data[c]) for c in data.columns)), start=1):
            for c, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, str):
                    ws.write_string(r, c, v)
                elif hasattr(v, "year"):
                    ws.write_datetime(r, c, v, day)
                else:
                    ws.write(r, c, v)
    wb.close()
    return buf.getvalue()


def parquet(frame: pd.DataFrame) -> bytes:
    chunks = (frame.iloc[i : i + 50_000] for i in range(0, len(frame), 50_000))  # the API's cursor chunks
    return b"".join(export.parquet_chunks(chunks, SPECS["prices"].columns))


def measure(write: Callable[[], bytes]) -> dict:
    """Median seconds of REPEATS runs, the output's size, and the peak memory of one traced run."""
    times, size = [], 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        size = len(write())
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    write()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": round(statistics.median(times), 2), "mb": round(size / 2**20, 1),
            "peak_alloc_mb": round(peak / 2**20)}  # fmt: skip


def main(quick: bool) -> dict:
    n = 15_000 if quick else 150_000
    frame = prices_frame(n)
    frames = {"prices": frame}
    out: dict = {"rows": n, "columns": frame.shape[1], "repeats": REPEATS}
    out["excel_columnwise"] = measure(lambda: export.to_excel(frames))
    out["excel_openpyxl_reference"] = measure(lambda: openpyxl_reference(frames))
    out["excel_xlsxwriter_reference"] = measure(lambda: xlsxwriter_reference(frames))
    out["csv"] = measure(lambda: export.to_csv(frame))
    out["parquet_streamed"] = measure(lambda: parquet(frame))
    for ref in ("openpyxl", "xlsxwriter"):
        out[f"excel_speedup_vs_{ref}"] = round(
            out[f"excel_{ref}_reference"]["seconds"] / out["excel_columnwise"]["seconds"], 2
        )
    return record_resources(out)


if __name__ == "__main__":
    run_cli("exports", main)
