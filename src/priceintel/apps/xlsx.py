"""Excel workbooks of exported frames, written by xlsxwriter in constant-memory mode: row by row, each row flushed
to a temporary file, so a 150,000-row sheet takes seconds and little memory (openpyxl's write-only mode took
about five times longer).

Cells are typed (dates are Excel dates, timestamps date-times, numbers numbers, booleans booleans) and text is
never a formula: strings are written as strings, and text a spreadsheet would run as a formula or read as an
error code (`items.formula_like`) is also marked quote-prefixed, so Excel keeps it text when the cell is edited.
Control characters are removed; text longer than Excel's 32,767 characters is cut there.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from priceintel.items import clean_text, formula_like

#: Excel's limit of characters in a cell
MAX_CELL_TEXT = 32_767
#: text Excel would read as an error value: written as quote-prefixed strings
EXCEL_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
HEADER = {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F3A5F"}


def excel_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Excel cannot hold time zones: timestamps become naive UTC; nullable types become plain objects."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is not None:
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif isinstance(s.dtype, (pd.BooleanDtype, pd.Int64Dtype)):
            out[col] = s.astype(object).where(s.notna(), None)
        elif s.dtype == object:
            out[col] = s.map(lambda v: v.replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v)
    return out


def sheet_name(name: str, used: set[str]) -> str:
    """A valid, unique Excel sheet name (≤ 31 chars, no []:*?/\\)."""
    base = "".join(c for c in str(name) if c not in "[]:*?/\\")[:31] or "sheet"
    out, i = base, 2
    while out.lower() in used:
        out = f"{base[:28]}_{i}"
        i += 1
    used.add(out.lower())
    return out


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _is_dates(s: pd.Series) -> bool:
    nn = s.dropna()
    return bool((nn.dt.normalize() == nn).all())


def column_values(s: pd.Series) -> list:
    """Plain Python cell values of one column: dates as date, timestamps as datetime, numbers as int/float,
    booleans as bool, missing as None."""
    if pd.api.types.is_datetime64_any_dtype(s):
        if _is_dates(s):
            return [None if pd.isna(v) else v.date() for v in s]
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    if pd.api.types.is_float_dtype(s):
        return [None if math.isnan(v) else float(v) for v in s.to_numpy()]
    return [None if _missing(v) else (v.item() if isinstance(v, np.generic) else v) for v in s.astype(object)]


def _width(s: pd.Series, name: str) -> int:
    """A column's width: dates 11, timestamps 20, floats 12, else its longest of the first 500 values (8-60)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        width = 11 if _is_dates(s) else 20
    elif pd.api.types.is_float_dtype(s):
        width = 12
    else:
        lens = s.head(500).dropna().astype(str).str.len()
        width = int(min(60, max(8, lens.max() if len(lens) else 8)))
    return max(width, len(str(name)) + 2)


def _cell_writer(ws: Any, formats: dict[str, Any]) -> Callable[[int, int, Any], None]:
    """write(row, col, value) for any exported value, typed as the module docstring says."""
    quoted, day, moment = formats["quoted"], formats["date"], formats["datetime"]

    def write(r: int, c: int, v: Any) -> None:
        if v is None:
            return
        if isinstance(v, bool):
            ws.write_boolean(r, c, v)
        elif isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                ws.write_string(r, c, str(v))
            else:
                ws.write_number(r, c, v)
        elif isinstance(v, datetime):
            ws.write_datetime(r, c, v, moment)
        elif isinstance(v, date):
            ws.write_datetime(r, c, v, day)
        else:
            if isinstance(v, (dict, list, tuple)):
                v = json.dumps(v, default=str, ensure_ascii=False)
            text = clean_text(str(v))[:MAX_CELL_TEXT]
            if formula_like(text) or text in EXCEL_ERROR_CODES:
                ws.write_string(r, c, text, quoted)
            else:
                ws.write_string(r, c, text)

    return write


def _sheet(ws: Any, df: pd.DataFrame, formats: dict[str, Any]) -> None:
    data = excel_ready(df)
    for i, col in enumerate(data.columns):
        ws.set_column(i, i, _width(data[col], col))
    ws.freeze_panes(1, 0)
    if len(data.columns):
        ws.autofilter(0, 0, len(data), len(data.columns) - 1)
    for j, col in enumerate(data.columns):
        ws.write_string(0, j, clean_text(str(col)), formats["header"])
    write = _cell_writer(ws, formats)
    rows: Iterable[tuple] = zip(*(column_values(data[c]) for c in data.columns))
    for r, row in enumerate(rows, start=1):  # constant-memory mode: rows in order, each flushed once done
        for c, v in enumerate(row):
            write(r, c, v)


def to_excel(frames: dict[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per frame: typed cells, a bold shaded frozen header with an auto-filter,
    and column widths fitted to the content (see the module docstring)."""
    import xlsxwriter

    if not frames:
        raise ValueError("to_excel: no frames to write")
    buf = io.BytesIO()
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
               "strings_to_numbers": False}  # fmt: skip
    wb = xlsxwriter.Workbook(buf, options)
    formats = {
        "header": wb.add_format(HEADER),
        "quoted": wb.add_format({"quote_prefix": True}),
        "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
    }
    used: set[str] = set()
    for name, df in frames.items():
        _sheet(wb.add_worksheet(sheet_name(name, used)), df, formats)
    wb.close()
    return buf.getvalue()
