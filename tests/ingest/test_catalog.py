"""Catalogue import into dim_product on the real PostgreSQL: feeds, validation, rejects, lineage, idempotency."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from _ingest_helpers import RSS, query
from openpyxl import Workbook

import priceintel.ingest as ingest
from priceintel.ingest.catalog import import_catalog
from priceintel.ingest.result import IngestError

MERCHANT_TSV = (
    "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tsale_price\tbrand\tgtin\tmpn\t"
    "google_product_category\tproduct_type\tcost_of_goods_sold\tsize\n"
    "A1\tBlender 500 W\tA blender\thttps://Shop.Example.com/a1\thttps://img/a1.jpg\tin stock\t15.00 USD\t"
    "12.50 USD\tAcme\t4006381333931\tBL-500\t Kitchen Appliances\tHome > Kitchen > Blenders\t8.00 USD\t500 W\n"
    "A2\tToaster\tA toaster\thttps://shop.example.com/a2\t\tout_of_stock\t20.00 USD\t\tAcme\t\tTO-2\t\t"
    "Home > Kitchen\t\t\n"
)


def _products(engine) -> dict[str, dict]:
    rows = query(engine, "SELECT * FROM dim_product ORDER BY sku")
    return {r["sku"]: r for r in rows}


def _runs(engine) -> list[dict]:
    return query(engine, "SELECT * FROM import_run ORDER BY import_run_id")


def test_plain_id_title_csv_with_lineage_and_archive(db, write, tmp_path):
    path = write("catalog.csv", "id,title\nA1,Blender\nA2,Toaster\n")
    res = import_catalog(db, path, archive_root=tmp_path / "data")
    assert (res.status, res.counts) == (
        "success",
        {"total": 2, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 0},
    )
    assert res.lines() == [
        f"catalog.csv: 2 row(s): 2 inserted, 0 updated, 0 unchanged, 0 rejected (success; catalog import run "
        f"{res.import_run_id})"
    ]
    products = _products(db)
    assert {k: v["name"] for k, v in products.items()} == {"A1": "Blender", "A2": "Toaster"}
    assert {v["import_run_id"] for v in products.values()} == {res.import_run_id}
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (run,) = _runs(db)
    assert run["kind"] == "catalog" and run["path"] == str(path) and run["sha256"] == sha
    assert (run["status"], run["rows_total"], run["rows_inserted"], run["rows_rejected"]) == ("success", 2, 2, 0)
    assert run["finished_at"] is not None and run["rejects_path"] is None and run["code_version"]
    archived = tmp_path / "data" / "imports" / "catalog" / f"{sha[:12]}-catalog.csv"
    assert res.archive_path == archived and archived.read_bytes() == path.read_bytes()
    assert res.rejects_path is None and not (tmp_path / "catalog.rejects.csv").exists()


def test_full_merchant_tsv_feed(db, write, tmp_path):
    res = import_catalog(db, write("feed.tsv", MERCHANT_TSV), archive_root=tmp_path)
    assert res.status == "success" and res.counts["inserted"] == 2 and not res.warnings
    a1, a2 = _products(db).values()
    assert a1["name"] == "Blender 500 W" and a1["brand"] == "Acme" and a1["mpn"] == "BL-500"
    assert a1["own_price"] == Decimal("12.50") and a1["currency"] == "USD"  # the sale price is our price
    assert a1["unit_cost"] == Decimal("8.00") and a1["size"] == "500 W"
    assert a1["gtin"] == "4006381333931" and a1["availability"] == "in_stock"
    assert a1["url"] == "https://shop.example.com/a1" and a1["category"] == "Home > Kitchen > Blenders"
    assert a2["own_price"] == Decimal("20.00") and a2["availability"] == "out_of_stock" and a2["gtin"] is None


def test_merchant_xml_feed(db, write, tmp_path):
    res = import_catalog(db, write("feed.xml", RSS), archive_root=tmp_path)
    assert res.counts["inserted"] == 2
    products = _products(db)
    assert products["A1"]["own_price"] == Decimal("15.00") and products["A1"]["gtin"] == "4006381333931"
    assert products["A2"]["name"] == "Toaster" and products["A2"]["url"] is None


def test_excel_catalogue_with_default_currency(db, tmp_path):
    wb = Workbook()
    wb.active.append(["SKU", "Name", "Price", "MAP Price", "MSRP"])
    wb.active.append(["X1", "Kettle", 9.99, 8, 12])
    path = tmp_path / "catalog.xlsx"
    wb.save(path)
    res = import_catalog(db, path, currency="eur", archive_root=tmp_path)
    assert res.status == "success"
    x1 = _products(db)["X1"]
    assert (x1["own_price"], x1["currency"], x1["map_price"], x1["msrp"]) == (
        Decimal("9.99"),
        "EUR",
        Decimal("8.00"),
        Decimal("12.00"),
    )


BAD = (
    "id,title,price,gtin\n"
    "A1,Blender,15.00 USD,4006381333931\n"  # row 2: ok
    "A2,Toaster,abc,\n"  # row 3: unparsable price
    "A3,,5 USD,\n"  # row 4: missing title
    "A4,Kettle,-3.00 USD,\n"  # row 5: negative price
    "A5,Mixer,7 USD,\n"  # row 6: duplicate id
    "A6,Grill,9.00 USD,4006381333932\n"  # row 7: bad check digit -> warning
    "A5,Mixer 2,8 USD,\n"  # row 8: duplicate id
    "A7,Fan,4,\n"  # row 9: price without currency
)
BAD_LINES = [
    "catalog.csv row 7, column gtin: bad check digit '4006381333932' (row loaded without gtin)",
    "catalog.csv row 3, column price: unparsable price 'abc'",
    "catalog.csv row 4, column title: missing title",
    "catalog.csv row 5, column price: negative price '-3.00 USD'",
    "catalog.csv row 6, column id: duplicate id 'A5' (rows 6, 8): every copy rejected",
    "catalog.csv row 8, column id: duplicate id 'A5' (rows 6, 8): every copy rejected",
    "catalog.csv row 9, column price: price '4' has no currency: write '15.00 USD', add a currency column or give "
    "a default currency (--currency)",
]


def test_bad_rows_are_rejected_and_only_valid_rows_load(db, write, tmp_path):
    path = write("catalog.csv", BAD)
    res = import_catalog(db, path, archive_root=tmp_path)
    assert res.status == "partial"
    assert res.counts == {"total": 8, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 6}
    assert res.lines()[1:] == BAD_LINES
    products = _products(db)
    assert sorted(products) == ["A1", "A6"]
    assert products["A6"]["gtin"] is None and products["A1"]["gtin"] == "4006381333931"
    assert res.rejects_path == tmp_path / "catalog.rejects.csv"
    assert res.rejects_path.read_text().splitlines() == [
        "row,column,value,reason",
        "3,price,abc,unparsable price 'abc'",
        "4,title,,missing title",
        "5,price,'-3.00 USD,negative price '-3.00 USD'",  # a leading - is quoted: a spreadsheet shows it as text
        "6,id,A5,\"duplicate id 'A5' (rows 6, 8): every copy rejected\"",
        "8,id,A5,\"duplicate id 'A5' (rows 6, 8): every copy rejected\"",
        "9,price,4,\"price '4' has no currency: write '15.00 USD', add a currency column or give a default currency "
        '(--currency)"',
    ]
    (run,) = _runs(db)
    assert (run["status"], run["rows_inserted"], run["rows_rejected"]) == ("partial", 2, 6)
    assert run["rejects_path"] == str(res.rejects_path)


def test_strict_refuses_the_whole_file(db, write, tmp_path):
    path = write("catalog.csv", BAD)
    with pytest.raises(IngestError) as err:
        import_catalog(db, path, strict=True, archive_root=tmp_path)
    assert str(err.value) == (
        "catalog.csv: refused (strict): 6 row(s) rejected, nothing imported; row 3, column price: unparsable price "
        "'abc'; row 4, column title: missing title; row 5, column price: negative price '-3.00 USD'; row 6, column "
        "id: duplicate id 'A5' (rows 6, 8): every copy rejected; row 8, column id: duplicate id 'A5' (rows 6, 8): "
        f"every copy rejected; … 1 more (all in {tmp_path / 'catalog.rejects.csv'})"
    )
    assert _products(db) == {}
    (run,) = _runs(db)
    assert (run["status"], run["strict"], run["rows_total"], run["rows_rejected"]) == ("failed", True, 8, 6)
    assert run["message"] == str(err.value)


def test_all_rows_rejected_is_failed(db, write, tmp_path):
    res = import_catalog(db, write("catalog.csv", "id,title\nA1,\n"), archive_root=tmp_path)
    assert res.status == "failed" and res.counts["rejected"] == 1 and _products(db) == {}


def test_reimport_changes_nothing_and_one_changed_row_is_one_update(db, write, tmp_path):
    text = "id,title,brand,price\nA1,Blender,Acme,15.00 USD\nA2,Toaster,Acme,20 USD\nA3,Kettle,,9.99 USD\n"
    path = write("catalog.csv", text)
    first = import_catalog(db, path, archive_root=tmp_path)
    again = import_catalog(db, path, archive_root=tmp_path)
    assert first.counts["inserted"] == 3
    assert again.counts == {"total": 3, "inserted": 0, "updated": 0, "unchanged": 3, "rejected": 0}
    path.write_text(text.replace("20 USD", "21 USD"))
    changed = import_catalog(db, path, archive_root=tmp_path)
    assert changed.counts == {"total": 3, "inserted": 0, "updated": 1, "unchanged": 2, "rejected": 0}
    products = _products(db)
    assert len(products) == 3 and products["A2"]["own_price"] == Decimal("21.00")
    assert products["A2"]["import_run_id"] == changed.import_run_id
    assert products["A1"]["import_run_id"] == first.import_run_id
    runs = _runs(db)
    assert [r["rows_unchanged"] for r in runs] == [0, 3, 2]
    assert runs[0]["sha256"] == runs[1]["sha256"] != runs[2]["sha256"]
    assert len(list((tmp_path / "imports" / "catalog").iterdir())) == 2  # one copy per distinct file


def test_a_rejected_formula_stays_text_in_the_rejects_file(db, write, tmp_path):
    path = write("catalog.csv", 'id,title,price\nA1,Kettle,"=HYPERLINK(""http://evil.example"",""x"")"\n')
    res = import_catalog(db, path, archive_root=tmp_path)
    (line,) = res.rejects_path.read_text().splitlines()[1:]
    assert line.startswith('2,price,"\'=HYPERLINK(')  # quoted: opened in a spreadsheet it is text, not a link


def test_a_fixed_file_removes_the_stale_rejects_file(db, write, tmp_path):
    path = write("catalog.csv", "id,title\nA1,\n")
    assert import_catalog(db, path, archive_root=tmp_path).rejects_path.exists()
    path.write_text("id,title\nA1,Blender\n")
    assert import_catalog(db, path, archive_root=tmp_path).rejects_path is None
    assert not (tmp_path / "catalog.rejects.csv").exists()


def test_missing_required_columns_name_the_file(db, write, tmp_path):
    with pytest.raises(IngestError) as err:
        import_catalog(db, write("catalog.csv", "sku,brand\nA1,Acme\n"), archive_root=tmp_path)
    assert str(err.value) == "catalog.csv: no title column (title or name); its columns: ['sku', 'brand']"


def test_unreadable_files_write_nothing(db, write, tmp_path):
    with pytest.raises(IngestError, match=r"^catalog.csv: not UTF-8 text: byte 0xe9 at offset 15 \(line 2\)"):
        import_catalog(db, write("catalog.csv", "id,title\nA1,Caf\xe9\n".encode("latin-1")), archive_root=tmp_path)
    with pytest.raises(IngestError, match=r"^empty.csv: the file is empty$"):
        import_catalog(db, write("empty.csv", ""), archive_root=tmp_path)
    with pytest.raises(IngestError, match=r"^header.csv: no data rows \(only a header\)$"):
        import_catalog(db, write("header.csv", "id,title\n"), archive_root=tmp_path)
    assert _runs(db) == [] and _products(db) == {}
    res = import_catalog(db, tmp_path / "catalog.csv", encoding="latin-1", archive_root=tmp_path)
    assert res.status == "success" and _products(db)["A1"]["name"] == "Café"


def test_strict_accepts_warnings_and_the_package_exports_the_api(db, write, tmp_path):
    path = write("catalog.csv", "id,title,gtin\nA1,Blender,4006381333932\n")
    res = ingest.import_catalog(db, path, strict=True, archive_root=tmp_path)
    assert res.status == "success" and res.counts["inserted"] == 1
    assert [w.line("catalog.csv") for w in res.warnings] == [
        "catalog.csv row 2, column gtin: bad check digit '4006381333932' (row loaded without gtin)"
    ]
    assert res.rejects_path is None and _products(db)["A1"]["gtin"] is None


def test_currency_column_with_an_empty_cell_names_the_row(db, write, tmp_path):
    path = write("cat.csv", "id,title,price,currency\nA1,Blender,10,usd\nA2,Toaster,12.50,\n")
    res = import_catalog(db, path, archive_root=tmp_path)
    assert res.counts["inserted"] >= 1
    issues = res.rejects + res.warnings
    assert any(i.row == 3 and "currency" in i.reason for i in issues), issues
