"""Readers of imported files: delimiters, encodings, Excel, Parquet, Merchant feeds, clear errors (no database)."""

from __future__ import annotations

import pandas as pd
import pytest
from _ingest_helpers import ATOM, RSS
from openpyxl import Workbook

from priceintel.ingest.read import normalize_column, read_table
from priceintel.ingest.result import IngestError


def test_column_names_are_normalised():
    assert normalize_column(" Unit Cost ") == "unit_cost"
    assert normalize_column("g:price") == "price"
    assert normalize_column("G:Google_Product_Category") == "google_product_category"
    assert normalize_column("\ufeffID") == "id"
    assert normalize_column("GTIN-13") == "gtin_13"


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed_and_rows_keep_spreadsheet_numbers(write, sep):
    text = sep.join(["ID", "Title", "Price"]) + "\n"
    text += sep.join(["A1", "Blender", "15.00 USD"]) + "\n\n"  # a blank line: row 3
    text += sep.join(["A2", "Toaster", ""]) + "\n"
    df = read_table(write("catalog.csv", text))
    assert list(df.columns) == ["id", "title", "price"]
    assert list(df.index) == [2, 4]
    assert df.loc[2, "title"] == "Blender" and df.loc[4, "price"] is None


def test_utf8_bom_and_quoted_fields(write):
    path = write("c.csv", '\ufeffid,title\n00123,"Café, large"\n'.encode())
    df = read_table(path)
    assert list(df.columns) == ["id", "title"]
    assert df.loc[2, "id"] == "00123" and df.loc[2, "title"] == "Café, large"


def test_non_utf8_file_is_a_clear_error_unless_an_encoding_is_given(write):
    path = write("catalog.csv", "id,title\nA1,Blender\nA2,Caf\xe9\n".encode("cp1252"))
    with pytest.raises(IngestError) as err:
        read_table(path)
    assert str(err.value) == (
        "catalog.csv: not UTF-8 text: byte 0xe9 at offset 26 (line 3); save it as UTF-8 or give its encoding "
        "(e.g. --encoding cp1252)"
    )
    assert read_table(path, encoding="cp1252").loc[3, "title"] == "Café"


def test_utf16_with_bom_is_read(write):
    path = write("export.txt", "id\ttitle\nA1\tBlender\n".encode("utf-16"))
    assert read_table(path).loc[2, "title"] == "Blender"


def test_empty_and_header_only_files_are_clear_errors(write):
    with pytest.raises(IngestError, match=r"^empty.csv: the file is empty$"):
        read_table(write("empty.csv", ""))
    with pytest.raises(IngestError, match=r"^blank.csv: the file is empty$"):
        read_table(write("blank.csv", "\n \n"))
    with pytest.raises(IngestError, match=r"^header.csv: no data rows \(only a header\)$"):
        read_table(write("header.csv", "id,title\n"))
    with pytest.raises(IngestError, match=r"/missing.csv: no such file$"):
        read_table(write("x.csv", "a").with_name("missing.csv"))


def test_malformed_csv_names_the_file(write):
    with pytest.raises(IngestError, match=r"^bad.csv: cannot read it as CSV: .*line 3"):
        read_table(write("bad.csv", "id,title\nA1,x\nA2,y,z,w\n"))


def test_excel_first_sheet_with_sheet_row_numbers(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["ID", "Title", "Price", "GTIN"])
    ws.append(["A1", "Blender", 15.0, 4006381333931])
    ws.append([None, None, None, None])
    ws.append(["A2", "Toaster", 20.5, None])
    path = tmp_path / "catalog.xlsx"
    wb.save(path)
    df = read_table(path)
    assert list(df.columns) == ["id", "title", "price", "gtin"]
    assert list(df.index) == [2, 4]
    assert df.loc[2].tolist() == ["A1", "Blender", "15", "4006381333931"]
    assert df.loc[4, "price"] == "20.5" and df.loc[4, "gtin"] is None


def test_parquet_typed_columns_become_text(tmp_path):
    path = tmp_path / "sales.parquet"
    pd.DataFrame(
        {
            "sku": ["A1", "A2"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "units": [3, 4],
            "price": [1.5, None],
        }
    ).to_parquet(path)
    df = read_table(path)
    assert list(df.index) == [2, 3]
    assert df.loc[2].tolist() == ["A1", "2024-01-01", "3", "1.5"]
    assert df.loc[3, "price"] is None


def test_merchant_rss_feed(write):
    df = read_table(write("feed.xml", RSS))
    assert list(df.index) == [1, 2]
    assert df.loc[1, "id"] == "A1" and df.loc[1, "title"] == "Blender 500 W"
    assert df.loc[1, "price"] == "15.00 USD"  # the item's price, not the nested shipping price
    assert df.loc[1, "link"] == "https://shop.example.com/a1"
    assert df.loc[2, "title"] == "Toaster" and df.loc[2, "link"] is None


def test_merchant_atom_feed_reads_link_href(write):
    df = read_table(write("feed.atom", ATOM))
    assert df.loc[1, ["id", "title", "link", "price"]].tolist() == [
        "B1",
        "Kettle",
        "https://shop.example.com/b1",
        "9.99 EUR",
    ]


def test_xml_errors_are_clear(write):
    with pytest.raises(IngestError, match=r"^feed.xml: not well-formed XML"):
        read_table(write("feed.xml", "<rss><channel><item></channel></rss>"))
    with pytest.raises(IngestError, match=r"^other.xml: no <item> or <entry> elements"):
        read_table(write("other.xml", "<root><a>1</a></root>"))


def test_xls_is_refused_with_a_hint(write):
    with pytest.raises(IngestError, match=r"^old.xls: old-style .xls workbooks are not supported"):
        read_table(write("old.xls", b"\xd0\xcf\x11\xe0"))
