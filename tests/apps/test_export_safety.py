"""Hostile text in the exports: formulas and control characters from scraped pages are neutralised in CSV and
Excel (negative numbers stay numbers), and the PDF is printed with JavaScript off and no network."""

from __future__ import annotations

import csv
import io
import re
import zlib
from http.server import BaseHTTPRequestHandler

import openpyxl
import pandas as pd
import pytest

from _receivers import serve_handler
from priceintel.apps import export
from priceintel.apps.svg import svg_chart
from priceintel.items import clean_text, formula_like, safe_cell, safe_frame

HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tcmd|' /C calc'!A0",
    "\rnext",
    "bell\x07 nul\x00 esc\x1b[31m del\x7f",
    "  =1+1",
    "#N/A",
    "plain text",
]


def _frame() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame(
        {
            "item_id": HOSTILE,
            "price": [-12.5] + [float(i) for i in range(1, n)],  # a genuine negative number
            "units": pd.array([-3] + list(range(1, n)), dtype="Int64"),
            "ds": pd.date_range("2026-07-01", periods=n, freq="D"),
            "value": [-4, *HOSTILE[1:]],  # a mixed column (as in the summary sheet): the int stays a number
        }
    )


def test_safe_cell_neutralises_formulas_and_drops_control_characters():
    assert safe_cell(HOSTILE[0]) == "'" + HOSTILE[0]
    assert [safe_cell(v) for v in ("+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "  =1")] == [
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "'  =1",
    ]
    assert safe_cell("bell\x07 nul\x00 esc\x1b[31m del\x7f") == "bell nul esc[31m del"
    assert safe_cell("\x00=1") == "'=1"  # removing a control character cannot uncover a formula
    assert safe_cell("a\tb\nc\r") == "a\tb\nc\r"  # tab, LF and CR inside text are kept
    assert [safe_cell(v) for v in (-2, -2.5, None, True)] == [-2, -2.5, None, True]
    assert formula_like("\uff1dSUM(A1)") and not formula_like("B0ABC-1") and clean_text("\ud800x\uffff") == "x"
    df = safe_frame(pd.DataFrame({"=h": ["-1"], "n": [-1]}))
    assert list(df.columns) == ["'=h", "n"] and df["n"].dtype.kind == "i" and df.iloc[0, 0] == "'-1"


def test_csv_export_neutralises_every_hostile_text_and_keeps_numbers():
    df = _frame()
    text = export.to_csv(df).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(df.columns) and len(rows) == len(df) + 1  # a CR inside a cell starts no new row
    assert '"\'\rnext"' in text  # ...because a cell holding a CR is quoted
    got = [r[0] for r in rows[1:]]
    assert got[:6] == ["'" + v for v in HOSTILE[:6]]
    assert got[6] == "bell nul esc[31m del" and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    assert got[7] == "'  =1+1" and got[9] == "plain text"
    for r in rows[1:]:  # no cell a spreadsheet would run
        assert not any(c[:1] in ("=", "+", "@", "\t", "\r") for c in r)
        assert all(not c.startswith("-") or re.fullmatch(r"-\d+(\.\d+)?", c) for c in r)
    assert rows[1][1] == "-12.5" and rows[1][2] == "-3" and rows[1][4] == "-4"  # numbers stay numbers
    back = pd.read_csv(io.StringIO(text, newline=""))
    assert len(back) == len(df)
    assert back["price"].dtype == "float64" and back["price"].iloc[0] == -12.5 and back["units"].iloc[0] == -3


def _ooxml_text(value):
    """A string cell's text with OOXML's _xHHHH_ escapes (ECMA-376 ST_Xstring) decoded."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def test_excel_export_has_no_formula_cells_and_keeps_numbers():
    frames = {"prices": _frame(), "summary": pd.DataFrame({"item": ["=cmd"], "value": [-1.25]})}
    wb = openpyxl.load_workbook(io.BytesIO(export.to_excel(frames)))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert cells and not [c.coordinate for c in cells if c.data_type in ("f", "e")]
    ws = wb["prices"]
    header = [c.value for c in ws[1]]
    col = {h: i + 1 for i, h in enumerate(header)}
    ids = [ws.cell(r, col["item_id"]) for r in range(2, len(HOSTILE) + 2)]
    # the exact text, as a string cell (a CR is stored as OOXML's escape _x000D_, which Excel decodes and
    # openpyxl does not: decoded here as the spec says)
    assert [_ooxml_text(c.value) for c in ids[:6]] == HOSTILE[:6]
    assert all(c.data_type == "s" for c in ids) and all(c.quotePrefix for c in ids[:6])
    assert ids[6].value == "bell nul esc[31m del" and ids[8].value == "#N/A" and ids[9].value == "plain text"
    assert not ids[9].quotePrefix
    price, units, value = ws.cell(2, col["price"]), ws.cell(2, col["units"]), ws.cell(2, col["value"])
    assert (price.value, price.data_type) == (-12.5, "n") and (units.value, units.data_type) == (-3, "n")
    assert (value.value, value.data_type) == (-4, "n") and ws.cell(2, col["ds"]).is_date
    s = wb["summary"]
    assert (s["A2"].value, s["A2"].data_type, s["B2"].value) == ("=cmd", "s", -1.25)


@pytest.fixture()
def beacon():
    """A real HTTP server on loopback counting every request the printed page makes."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    with serve_handler(Handler) as base:
        yield base, hits


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def _line_ops(pdf: bytes) -> int:
    """Line-to operators drawn in the PDF's content streams (an SVG polyline becomes many)."""
    n = 0
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            n += len(re.findall(rb"[\d.]+ [\d.]+ l\b", zlib.decompress(m.group(1))))
        except zlib.error:
            continue
    return n


def test_pdf_is_printed_without_javascript_or_network_and_keeps_svg_charts(beacon):
    base, hits = beacon
    chart = pd.DataFrame(
        {"ds": pd.date_range("2026-07-01", periods=30), "y": [(i * 7) % 11 for i in range(30)], "s": ["a"] * 30}
    )
    svg = svg_chart(chart, "ds", "y", "s", "A chart", "y")
    hostile = f"""<!doctype html><html><head><link rel="stylesheet" href="{base}/style.css"></head><body>
<h1>Report</h1>{svg}<img src="{base}/img.png"><iframe src="{base}/frame"></iframe>
<div id="x"></div>
<script>
for (let i = 0; i < 400; i++) {{ const p = document.createElement('p'); p.textContent = 'JS ran ' + i;
  document.getElementById('x').appendChild(p); }}
fetch('{base}/fetch'); new Image().src = '{base}/js-image.png';
</script></body></html>"""
    pdf = export.to_pdf(hostile, timeout=30)
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == 1  # the script would have added 400 paragraphs (many pages)
    assert hits == []  # no request left the page: no stylesheet, image, frame or fetch
    plain = export.to_pdf(hostile.replace(svg, ""), timeout=30)
    assert _line_ops(pdf) >= _line_ops(plain) + 20  # the inline SVG chart is drawn without any script


def test_chromium_is_sandboxed_unless_root():
    assert "--no-sandbox" not in export.chromium_args(euid=1000)
    assert export.chromium_args(euid=0)[0] == "--no-sandbox"
    assert set(export.CHROMIUM_ARGS) <= set(export.chromium_args(euid=1000))
