"""The column-wise Excel writer (apps.xlsx): every part well-formed XML, every value read back typed and exact
by openpyxl and pandas (hostile, long, escaped-looking and non-BMP text, missing values of every type, time
zones, mixed columns), empty sheets, odd sheet names, and the row limit."""

import io
import re
import zipfile
from datetime import date, datetime
from zoneinfo import ZoneInfo
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pandas as pd
import pytest

from priceintel.apps import xlsx


def _decoded(v):
    """openpyxl leaves OOXML's _xHHHH_ escapes as they are: decoded as Excel does."""
    if not isinstance(v, str):
        return v
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), v)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "day": pd.to_datetime(["2026-07-01", None, "1999-12-31"]),
        "at": pd.to_datetime(["2026-07-01T06:30:15Z", "2026-07-02T00:00:01Z", None], utc=True),
        "text": ["=1+1", "_x0041_ stays literal", "caf\u00e9 \U0001F600 <b>&amp;</b>\r\nnext"],
        "price": [1.5, np.nan, -0.000012],
        "inf": [np.inf, 2.0, -np.inf],
        "n": pd.array([3, None, -7], dtype="Int64"),
        "ok": pd.array([True, None, False], dtype="boolean"),
        "mixed": [date(2026, 1, 2), "#N/A", 7],
        "long": ["x" * 40_000, None, "\x00bell\x07"],
        "when": [datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris")), "a\n=b", 2**70],
    })


def test_every_part_is_well_formed_and_values_come_back_typed_and_exact():
    data = xlsx.to_excel({"it's": _frame(), "empty": pd.DataFrame({"a": []}), "bare": pd.DataFrame()})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            ElementTree.fromstring(zf.read(name))  # raises on anything not well-formed
        assert {"[Content_Types].xml", "xl/workbook.xml", "xl/styles.xml"} <= set(zf.namelist())
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["it's", "empty", "bare"]
    ws = wb["it's"]
    assert [c.value for c in ws[1]] == list(_frame().columns) and ws["A1"].font.bold and ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J4"
    rows = [[_decoded(c.value) for c in row] for row in ws.iter_rows(min_row=2)]
    assert rows[0][0] == datetime(2026, 7, 1) and ws["A2"].number_format == "yyyy-mm-dd"
    assert rows[1][0] is None and rows[2][0] == datetime(1999, 12, 31)
    assert rows[0][1] == datetime(2026, 7, 1, 6, 30, 15) and ws["B2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert [r[2] for r in rows] == ["=1+1", "_x0041_ stays literal", "caf\u00e9 \U0001F600 <b>&amp;</b>\r\nnext"]
    assert ws["C2"].data_type == "s" and ws["C2"].quotePrefix and not ws["C3"].quotePrefix
    assert [r[3] for r in rows] == [1.5, None, -0.000012] and ws["D2"].data_type == "n"
    assert [r[4] for r in rows] == ["inf", 2.0, "-inf"]  # no number Excel could hold: the text
    assert [r[5] for r in rows] == [3, None, -7] and isinstance(rows[0][5], int)
    assert [r[6] for r in rows] == [True, None, False]
    assert rows[0][7] == datetime(2026, 1, 2) and rows[1][7] == "#N/A" and ws["H3"].quotePrefix and rows[2][7] == 7
    assert len(rows[0][8]) == xlsx.MAX_CELL_TEXT and rows[2][8] == "bell"  # cut at Excel's limit; controls gone
    assert rows[0][9] == datetime(2026, 7, 1, 6, 0)  # an aware time in a mixed column: as UTC
    assert rows[1][9] == "a\n=b" and not ws["J3"].quotePrefix and rows[2][9] == float(2**70)
    assert wb["empty"].max_row == 1 and [c.value for c in wb["empty"][1]] == ["a"]
    back = pd.read_excel(io.BytesIO(data), sheet_name="it's")
    assert back["day"].dtype.kind == "M" and back["price"].dtype == "float64" and back["n"].iloc[2] == -7


def test_chunks_join_into_one_sheet_and_the_row_limit_is_refused(monkeypatch):
    monkeypatch.setattr(xlsx, "CHUNK_ROWS", 7)
    df = pd.DataFrame({"i": range(50), "s": [f"row {i}" for i in range(50)]})
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.to_excel({"rows": df}))).active
    assert ws.max_row == 51 and [ws.cell(r, 1).value for r in range(2, 52)] == list(range(50))
    assert ws.cell(51, 2).value == "row 49"
    monkeypatch.setattr(xlsx, "MAX_ROWS", 40)
    with pytest.raises(ValueError, match="rows has 50 rows; an Excel sheet holds 39"):
        xlsx.to_excel({"rows": df})
    with pytest.raises(ValueError, match="no frames"):
        xlsx.to_excel({})
    assert xlsx.column_letter(0) == "A" and xlsx.column_letter(25) == "Z" and xlsx.column_letter(27) == "AB"
