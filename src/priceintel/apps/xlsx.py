"""Excel workbooks of exported frames, written column-wise: each column's cells become OOXML text in one
vectorised pass (pandas string operations, no Python call per cell), rows are joined and streamed into the zip
in chunks of CHUNK_ROWS, so a 150,000-row sheet takes a couple of seconds and bounded memory (a writer calling
Python once per cell, openpyxl's write-only mode or xlsxwriter's constant-memory mode, took 20-25 s).

Cells are typed (dates are Excel dates, timestamps date-times, numbers numbers, booleans booleans) and text is
never a formula: every text cell is an inline string, and text a spreadsheet would run as a formula or read as
an error code (`items.formula_like`) is also quote-prefixed, so Excel keeps it text when the cell is edited.
Control characters are removed (`items.clean_text`), a CR is kept as `&#13;`, text that looks like OOXML's
`_xHHHH_` escape is escaped itself, and text longer than Excel's 32,767 characters is cut there. The sheet has
a bold shaded frozen header row with an auto-filter and column widths fitted to the content.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pandas as pd

from priceintel.items import CONTROL_CHARS_RE, FORMULA_RE, clean_text, is_missing

#: Excel's limit of characters in a cell, and of rows in a sheet
MAX_CELL_TEXT = 32_767
MAX_ROWS = 1_048_576
#: text Excel would read as an error value: written as quote-prefixed strings
EXCEL_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
#: rows turned into XML at a time (bounds the memory of one sheet's text)
CHUNK_ROWS = 20_000
#: cell styles of styles.xml: header, date, date-time, quote-prefixed text
HEADER, DATE, DATETIME, QUOTED = 1, 2, 3, 4
_EPOCH = pd.Timestamp("1899-12-30")  # Excel's day 0 (the 1900 date system)
_OOXML_ESCAPE = r"_(x[0-9A-Fa-f]{4}_)"

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL_NS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet {_NS}><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>\
<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>\
<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>\
<font><b/><sz val="11"/><color rgb="FFFFFFFF"/><name val="Calibri"/><family val="2"/></font></fonts>\
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>\
<fill><patternFill patternType="solid"><fgColor rgb="FF1F3A5F"/><bgColor indexed="64"/></patternFill></fill></fills>\
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>\
<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>\
<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1"/>\
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/></cellXfs>\
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"""


def _naive_utc(df: pd.DataFrame) -> pd.DataFrame:
    """Time-zone-aware timestamps as naive UTC (Excel has no time zones); other columns as they are."""
    out = df
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is not None:
            out = out.copy() if out is df else out
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
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


def _is_dates(s: pd.Series) -> bool:
    nn = s.dropna()
    return bool((nn.dt.normalize() == nn).all())


def column_letter(i: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    out = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        out = chr(65 + rem) + out
    return out


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


# --- cells: one column at a time ------------------------------------------------------------------------------


#: text that needs more than copying into the XML: a character to escape or remove, OOXML's escape pattern, or a
#: start a spreadsheet reads as a formula (also an error code, matched by the caller); most columns have none.
#: Searched once over a column's values joined by line feeds (MULTILINE: `^` is also a value's start)
_SPECIAL = re.compile(
    "[&<>\r" + CONTROL_CHARS_RE.pattern[1:-1] + "]|_x[0-9A-Fa-f]{4}_|^" + FORMULA_RE.pattern + "|^#", re.MULTILINE
)


def special_mask(values: list[str]) -> np.ndarray:
    """Which values need `_cell_text`: one regex scan over all of them joined (no call per value); a formula
    start is attributed to the value holding its trigger character (the match's last)."""
    lens = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    mask = lens > MAX_CELL_TEXT
    ends = [m.end() - 1 for m in _SPECIAL.finditer("\n".join(values))]
    if ends:
        starts = np.concatenate(([0], np.cumsum(lens[:-1] + 1)))
        mask[np.searchsorted(starts, ends, side="right") - 1] = True
    return mask


def _cell_text(value: Any) -> tuple[str, bool]:
    """(the XML text of one special value, whether it is quote-prefixed)."""
    text = clean_text(value)[:MAX_CELL_TEXT]
    quoted = FORMULA_RE.match(text) is not None or text in EXCEL_ERROR_CODES
    text = escape(text, {"\r": "&#13;"})
    if "_x" in text:
        text = re.sub(_OOXML_ESCAPE, r"_x005F_\1", text)
    return text, quoted


def _text_cells(refs: pd.Series, s: pd.Series) -> pd.Series:
    """Inline-string cells of a column of text (no missing values): a value with nothing special is copied as
    it is, the others go through `_cell_text` (found in one vectorised search)."""
    if pd.api.types.infer_dtype(s, skipna=False) != "string":
        s = s.map(lambda v: json.dumps(v, default=str, ensure_ascii=False) if isinstance(v, (dict, list, tuple))
                  else str(v))  # fmt: skip
    special = pd.Series(special_mask(s.tolist()), index=s.index)
    text, style = s, pd.Series("", index=s.index, dtype=object)
    if special.any():
        done = [_cell_text(v) for v in s[special]]
        text = s.copy()
        text[special] = [t for t, _ in done]
        style[special] = [f' s="{QUOTED}"' if q else "" for _, q in done]
    return '<c r="' + refs + '" t="inlineStr"' + style + '><is><t xml:space="preserve">' + text + "</t></is></c>"


def _value_cells(refs: pd.Series, values: pd.Series, style: int | None = None, kind: str = "") -> pd.Series:
    attrs = (f' s="{style}"' if style else "") + (f' t="{kind}"' if kind else "")
    return '<c r="' + refs + '"' + attrs + "><v>" + values + "</v></c>"


def _one_cell(ref: str, v: Any) -> str:
    """The XML of one value of any type (columns of mixed types, e.g. a summary's values)."""
    if v is None or is_missing(v):
        return ""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return f'<c r="{ref}" t="b"><v>{int(v)}</v></c>'
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        else:
            return f'<c r="{ref}"><v>{v!r}</v></c>'
    if isinstance(v, (datetime, pd.Timestamp)):
        ts = pd.Timestamp(v)
        ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
        days = (ts - _EPOCH) / pd.Timedelta(days=1)
        return f'<c r="{ref}" s="{DATETIME}"><v>{days!r}</v></c>'
    if isinstance(v, date):
        return f'<c r="{ref}" s="{DATE}"><v>{(pd.Timestamp(v) - _EPOCH).days}</v></c>'
    return str(_text_cells(pd.Series([ref]), pd.Series([v])).iloc[0])


def _fits_int64(s: pd.Series) -> bool:
    return bool(s.map(lambda v: -(2**63) <= v < 2**63).all())


def column_cells(s: pd.Series, letter: str, rows: pd.Series) -> pd.Series:
    """The XML of every cell of one column of a chunk whose row numbers (as text) are `rows` (missing: "")."""
    refs = letter + rows
    out = pd.Series("", index=s.index, dtype=object)
    ok = s.notna()
    if not ok.any():
        return out
    s, refs = s[ok], refs[ok]
    kind = pd.api.types.infer_dtype(s, skipna=False) if s.dtype == object else ""
    if pd.api.types.is_datetime64_any_dtype(s):
        days = (s - _EPOCH) / pd.Timedelta(days=1)
        if _is_dates(s):
            out[ok] = _value_cells(refs, days.astype("int64").astype(str), DATE)
        else:
            out[ok] = _value_cells(refs, days.map(repr), DATETIME)
    elif pd.api.types.is_bool_dtype(s) or kind == "boolean":
        out[ok] = _value_cells(refs, s.astype(bool).astype(int).astype(str), kind="b")
    elif pd.api.types.is_integer_dtype(s) or (kind == "integer" and _fits_int64(s)):
        out[ok] = _value_cells(refs, s.astype("int64").astype(str))
    elif pd.api.types.is_float_dtype(s):
        finite = np.isfinite(s.to_numpy(dtype=float))
        cells = _value_cells(refs, s.map(repr))
        if not finite.all():  # inf has no Excel number: its text
            cells[~finite] = _text_cells(refs[~finite], s[~finite].map(str))
        out[ok] = cells
    elif kind == "string":
        out[ok] = _text_cells(refs, s)
    else:  # mixed types
        out[ok] = [_one_cell(r, v) for r, v in zip(refs, s)]
    return out


# --- the package -----------------------------------------------------------------------------------------------


def _sheet_xml(fh: Any, data: pd.DataFrame) -> None:
    """Write one worksheet's XML to the open zip member `fh`, CHUNK_ROWS rows at a time."""
    n, m = len(data), len(data.columns)
    last = f"{column_letter(max(m, 1) - 1)}{n + 1}"
    cols = "".join(
        f'<col min="{i + 1}" max="{i + 1}" width="{_width(data[c], c) + 0.7109375}" customWidth="1"/>'
        for i, c in enumerate(data.columns)
    )
    head = "".join(
        f'<c r="{column_letter(j)}1" t="inlineStr" s="{HEADER}"><is><t xml:space="preserve">'
        f"{escape(clean_text(str(c)))}</t></is></c>"
        for j, c in enumerate(data.columns)
    )
    fh.write(
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_REL_NS}>'
        f'<dimension ref="A1:{last}"/><sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>{f"<cols>{cols}</cols>" if cols else ""}'
        f'<sheetData><row r="1">{head}</row>'.encode()
    )
    letters = [column_letter(j) for j in range(m)]
    for start in range(0, n, CHUNK_ROWS):
        chunk = data.iloc[start : start + CHUNK_ROWS]
        first = start + 2
        numbers = pd.Series(np.arange(first, first + len(chunk)).astype(str), index=chunk.index, dtype=object)
        xml = '<row r="' + numbers + '">'
        for j, col in enumerate(chunk.columns):
            xml = xml + column_cells(chunk[col], letters[j], numbers)
        fh.write(("".join((xml + "</row>").tolist())).encode("utf-8"))
    filt = f'<autoFilter ref="A1:{last}"/>' if m else ""
    fh.write(
        f'</sheetData>{filt}<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
        'footer="0.3"/></worksheet>'.encode()
    )


def _package_parts(names: list[str], sizes: list[tuple[int, int]]) -> dict[str, str]:
    """The workbook's other parts: content types, relationships, workbook (with the auto-filter names)."""
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(names) + 1)
    )
    types = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="{_PKG}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{sheets}</Types>"
    )
    root_rels = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_DOC}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    book_rels = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG}/relationships">'
        f'{rels}<Relationship Id="rId{len(names) + 1}" Type="{_DOC}/styles" Target="styles.xml"/></Relationships>'
    )
    sheet_tags = "".join(
        f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, start=1)
    )
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{escape(_quoted_sheet(name))}!$A$1:${column_letter(m - 1)}${n + 1}</definedName>"
        for i, (name, (n, m)) in enumerate(zip(names, sizes))
        if m
    )
    book = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} {_REL_NS}>'
        f"<bookViews><workbookView/></bookViews><sheets>{sheet_tags}</sheets>"
        f"{f'<definedNames>{filters}</definedNames>' if filters else ''}</workbook>"
    )
    return {
        "[Content_Types].xml": types,
        "_rels/.rels": root_rels,
        "xl/workbook.xml": book,
        "xl/_rels/workbook.xml.rels": book_rels,
        "xl/styles.xml": _STYLES,
    }


def _quoted_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def to_excel(frames: dict[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per frame (see the module docstring). ValueError without frames or for
    a frame of more rows than a sheet holds."""
    if not frames:
        raise ValueError("to_excel: no frames to write")
    used: set[str] = set()
    names, sizes, buf = [], [], io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, (name, df) in enumerate(frames.items(), start=1):
            if len(df) + 1 > MAX_ROWS:
                raise ValueError(f"to_excel: {name} has {len(df):,} rows; an Excel sheet holds {MAX_ROWS - 1:,}")
            names.append(sheet_name(name, used))
            sizes.append((len(df), len(df.columns)))
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as fh:
                _sheet_xml(fh, _naive_utc(df))
        for part, text in _package_parts(names, sizes).items():
            zf.writestr(part, text)
    return buf.getvalue()
