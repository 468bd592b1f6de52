"""Read a file of our own data into a frame of text cells: CSV/TSV (delimiter sniffed, UTF-8 with or without BOM,
UTF-16 with BOM, or `encoding`), Excel (.xlsx), Parquet, and Google Merchant Center feeds (TSV, or RSS 2.0 / Atom
XML with the `g:` namespace).

Every reader returns the same shape: column names normalised (`normalize_column`), cells `str` (stripped) or
None, and the index = the row number a spreadsheet user sees (the header is row 1, the first data row 2; an Excel
sheet's own row numbers; for an XML feed the item's position, 1 = first item). Blank rows are dropped, their
numbers skipped. Anything unreadable raises `IngestError` naming the file and where.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree
from openpyxl import load_workbook

from priceintel.ingest.result import IngestError

__all__ = ["GOOGLE_NS", "normalize_column", "read_table", "to_text"]

#: the Google Merchant Center namespace of `g:` elements in RSS/Atom feeds
GOOGLE_NS = "http://base.google.com/ns/1.0"
_DELIMITERS = (",", ";", "\t", "|")
_EXCEL = (".xlsx", ".xlsm")
_PARQUET = (".parquet", ".pq")
_XML = (".xml", ".rss", ".atom")


def normalize_column(name: Any) -> str:
    """'Unit Cost' -> 'unit_cost', 'g:price' -> 'price', ' GTIN-13 ' -> 'gtin_13' (case, spaces, `g:` prefix)."""
    text = str(name).replace("\ufeff", "").strip().lower()
    text = re.sub(r"^g:", "", text)
    return re.sub(r"[\s\-./]+", "_", text).strip("_")


def read_table(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """The data rows of a CSV/TSV/Excel/Parquet/XML file as text cells (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path.name}: the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise IngestError(f"{path.name}: old-style .xls workbooks are not supported; save it as .xlsx or CSV")
    if suffix in _EXCEL:
        df = _read_excel(path)
    elif suffix in _PARQUET:
        df = _read_parquet(path)
    else:
        text = _decode(path, encoding)
        if not text.strip():
            raise IngestError(f"{path.name}: the file is empty")
        df = _read_xml(path, text) if suffix in _XML or text.lstrip().startswith("<") else _read_csv(path, text)
    return _finish(path, df)


# --------------------------------------------------------------------------- text files


def _decode(path: Path, encoding: str | None) -> str:
    """The file's text: `encoding` when given, else UTF-16 (by its BOM) or UTF-8 (BOM dropped)."""
    data = path.read_bytes()
    if encoding is None and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    try:
        return data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise IngestError(f"{path.name}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        byte = data[err.start : err.start + 1].hex()
        hint = "" if encoding else "; save it as UTF-8 or give its encoding (e.g. --encoding cp1252)"
        raise IngestError(
            f"{path.name}: not {encoding or 'UTF-8'} text: byte 0x{byte} at offset {err.start} (line {line}){hint}"
        ) from None


def _sniff(text: str) -> str:
    """The delimiter: the candidate the header line holds most, else csv.Sniffer's guess, else a comma."""
    header = text.lstrip("\r\n").split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _read_csv(path: Path, text: str) -> pd.DataFrame:
    """Delimited text with a header line; blank rows kept (dropped later) so row numbers stay true."""
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=_sniff(text),
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise IngestError(f"{path.name}: the file is empty") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise IngestError(f"{path.name}: cannot read it as CSV: {' '.join(str(err).split())}") from None
    df.index = pd.RangeIndex(2, len(df) + 2)
    return df


def _xml_rows(root: Any) -> list[dict[str, str | None]]:
    """One dict per RSS <item> / Atom <entry>: child element local name -> text (or href); nested ones skipped."""
    items = [el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname in ("item", "entry")]
    rows = []
    for item in items:
        row: dict[str, str | None] = {}
        for child in item:
            if not isinstance(child.tag, str) or len(child):
                continue
            name = etree.QName(child).localname
            value = (child.text or "").strip() or child.get("href")
            row.setdefault(name, value)
        rows.append(row)
    return rows


def _read_xml(path: Path, text: str) -> pd.DataFrame:
    """A Merchant Center RSS/Atom feed: one row per item (`g:` and plain elements alike)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as err:
        raise IngestError(f"{path.name}: not well-formed XML: {err}") from None
    rows = _xml_rows(root)
    if not rows:
        raise IngestError(f"{path.name}: no <item> or <entry> elements: is it a Merchant Center RSS/Atom feed?")
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1), dtype=object)


# --------------------------------------------------------------------------- binary files


def _read_excel(path: Path) -> pd.DataFrame:
    """The first sheet of a workbook; the first non-empty row is the header; index = the sheet's row numbers."""
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds (zip, xml, key errors) for a damaged file
        raise IngestError(f"{path.name}: cannot read it as an Excel workbook: {err}") from None
    try:
        sheet = wb.worksheets[0]
        header: list[Any] | None = None
        rows, numbers = [], []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if header is None:
                if any(v is not None and str(v).strip() for v in values):
                    header = list(values)
                continue
            rows.append(list(values)[: len(header)] + [None] * (len(header) - len(values)))
            numbers.append(number)
    finally:
        wb.close()
    if header is None:
        raise IngestError(f"{path.name}: the first sheet is empty")
    names = [f"column_{i + 1}" if v is None else str(v) for i, v in enumerate(header)]
    return pd.DataFrame(rows, columns=names, index=pd.Index(numbers, dtype="int64"), dtype=object)


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file; index = position + 2 (as if exported with a header line)."""
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises its own error types for a damaged file
        raise IngestError(f"{path.name}: cannot read it as Parquet: {' '.join(str(err).split())}") from None
    return df.reset_index(drop=True).set_axis(pd.RangeIndex(2, len(df) + 2))


# --------------------------------------------------------------------------- common


def _scalar_text(v: Any) -> str | None:
    """One cell as text: None for missing; 12.0 -> '12'; a midnight datetime -> '2024-01-31'."""
    if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() and v.tzinfo is None else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v).strip() or None


def to_text(s: pd.Series) -> pd.Series:
    """A column as object cells of stripped `str` or None (vectorised for text, ints and datetimes)."""
    if pd.api.types.is_integer_dtype(s) and not s.isna().any():
        return s.astype(str).astype(object)
    if pd.api.types.is_datetime64_any_dtype(s) and s.dt.tz is None:
        midnight = bool((s.dropna() == s.dropna().dt.normalize()).all())
        out = s.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S").astype(object)
        return out.where(s.notna(), None)
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):  # stripped by Arrow: 10x pandas' .str
        arr = pc.utf8_trim_whitespace(pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True))
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        return pd.Series(arr.to_numpy(zero_copy_only=False), index=s.index, dtype=object)
    return s.map(_scalar_text).astype(object)


def _finish(path: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Normalise names, drop unnamed empty columns and blank rows; text cells; at least one data row."""
    names = [normalize_column(c) for c in df.columns]
    keep = [not (n == "" or n.startswith("unnamed")) or df[c].notna().any() for n, c in zip(names, df.columns)]
    df = df.loc[:, keep].set_axis([n for n, k in zip(names, keep) if k], axis=1)
    dupes = [n for n, k in Counter(df.columns).items() if k > 1]
    if dupes:
        raise IngestError(f"{path.name}: several columns are named {dupes[0]!r} (after ignoring case and spaces)")
    df = pd.DataFrame({c: to_text(df.iloc[:, i]) for i, c in enumerate(df.columns)}, index=df.index)
    df = df.loc[df.notna().any(axis=1)] if len(df.columns) else df.iloc[0:0]
    if df.empty:
        raise IngestError(f"{path.name}: no data rows (only a header)")
    return df
