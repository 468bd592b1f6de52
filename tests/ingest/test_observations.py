"""Competitor prices observed elsewhere: `priceintel prices import FILE` (and the API's POST /v1/observations)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from priceintel.cli import main
from priceintel.ingest.observations import import_observations
from priceintel.ingest.result import IngestError


def _prices(db) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT r.retailer, l.item_id, d.date::text, f.price, f.currency, f.in_stock, f.promo, l.title "
            "FROM fact_price f JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id) "
            "JOIN dim_date d USING (date_key) ORDER BY 1, 2, 3"))]


GOOD = """retailer,item_id,date,price,currency,in_stock,title,url
Amazon,B01,2026-07-01,12.99,USD,yes,Blender,https://www.amazon.com/dp/B01
amazon,B01,2026-07-02,"$11.49",,yes,,
walmart,555,2026-07-01,€9.50,,no,Kettle,https://www.walmart.com/ip/555
"""


def test_observations_load_with_lineage_and_new_retailers(db, write, tmp_path):
    res = import_observations(db, write("obs.csv", GOOD), archive_root=tmp_path)
    assert res.status == "success" and res.counts == {
        "total": 3, "inserted": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    assert {w.value for w in res.warnings} == {"amazon", "walmart"}  # new retailers are named
    assert _prices(db) == [
        ("amazon", "B01", "2026-07-01", Decimal("12.99"), "USD", True, None, "Blender"),
        ("amazon", "B01", "2026-07-02", Decimal("11.49"), "USD", True, None, "Blender"),  # title kept
        ("walmart", "555", "2026-07-01", Decimal("9.50"), "EUR", False, None, "Kettle"),
    ]
    with db.connect() as conn:
        run = conn.execute(sa.text("SELECT kind, status, sha256 FROM import_run")).one()
    assert run.kind == "prices" and run.status == "success" and len(run.sha256) == 64
    assert res.archive_path is not None and res.archive_path.is_file()
    # the same file again changes nothing; a changed price updates its one row
    again = import_observations(db, write("obs.csv", GOOD), archive_root=tmp_path)
    assert again.counts["unchanged"] == 3 and again.counts["inserted"] == again.counts["updated"] == 0
    changed = import_observations(db, write("obs2.csv", GOOD.replace("12.99", "13.49")), archive_root=tmp_path)
    assert changed.counts["updated"] == 1 and changed.counts["unchanged"] == 2
    assert _prices(db)[0][3] == Decimal("13.49")


def test_bad_observation_rows_are_rejected_by_row_and_column(db, write, tmp_path):
    text = """retailer,item_id,date,price,in_stock
amazon,B01,2026-07-01,12.99 USD,yes
amazon,,2026-07-01,1.00 USD,yes
amazon,B02,July first,1.00 USD,yes
amazon,B03,2026-07-01,call us,yes
amazon,B04,2026-07-01,0 USD,yes
amazon,B05,2026-07-01,5.00,yes
amazon,B06,2026-07-01,5.00 USD,maybe
amazon,B07,2026-07-01,5.00 XYZ,yes
amazon,B08,2026-07-01,5.00 USD,yes
amazon,B08,2026-07-01,5.00 USD,yes
Bad Shop!,B09,2026-07-01,5.00 USD,yes
amazon,B10,2100-01-01,5.00 USD,yes
"""
    res = import_observations(db, write("obs.csv", text), archive_root=tmp_path)
    assert res.status == "partial" and res.counts["inserted"] == 1 and res.counts["rejected"] == 11
    by_row = {i.row: (i.column, i.reason) for i in res.rejects}
    assert by_row[3] == ("item_id", "missing item_id")
    assert by_row[4] == ("date", "unreadable date 'July first' (use YYYY-MM-DD)")
    assert "unparsable price 'call us'" in by_row[5][1]
    assert "zero price" in by_row[6][1]
    assert "no currency price '5.00'" in by_row[7][1]
    assert "unreadable in_stock 'maybe'" in by_row[8][1]
    assert "unknown currency price '5.00 XYZ'" in by_row[9][1]
    assert "duplicate" in by_row[10][1] and "duplicate" in by_row[11][1]
    assert "retailer 'Bad Shop!'" in by_row[12][1]  # the value as written
    assert "out of range" in by_row[13][1]
    assert res.rejects_path is not None and res.rejects_path.is_file()
    assert _prices(db) == [("amazon", "B01", "2026-07-01", Decimal("12.99"), "USD", True, None, None)]


def test_strict_import_and_missing_columns(db, write, tmp_path):
    with pytest.raises(IngestError, match="rejected"):
        import_observations(db, write("o.csv", "retailer,item_id,date,price\namazon,B1,2026-07-01,n/a\n"),
                            strict=True, archive_root=tmp_path)
    assert _prices(db) == []
    with pytest.raises(IngestError, match=r"no date, price column\(s\)"):
        import_observations(db, write("o.csv", "retailer,item_id\namazon,B1\n"), archive_root=tmp_path)


def test_prices_import_command(db, write, capsys):
    assert main(["prices", "import", str(write("obs.csv", GOOD))]) == 0
    out = capsys.readouterr().out
    assert "obs.csv: 3 row(s): 3 inserted" in out and "new retailer 'walmart'" in out


def test_a_newer_stored_observation_is_kept(db, write, tmp_path):
    head = "retailer,item_id,date,price,observed_at\n"
    import_observations(db, write("a.csv", head + "amazon,B1,2026-07-01,5.00 USD,2026-07-01T18:00:00Z\n"),
                        archive_root=tmp_path)
    older = import_observations(db, write("b.csv", head + "amazon,B1,2026-07-01,4.00 USD,2026-07-01T09:00:00Z\n"),
                                archive_root=tmp_path)
    assert older.counts["unchanged"] == 1 and _prices(db)[0][3] == Decimal("5.00")  # the later look stays
    newer = import_observations(db, write("c.csv", head + "amazon,B1,2026-07-01,3.00 USD,2026-07-01T20:00:00Z\n"),
                                archive_root=tmp_path)
    assert newer.counts["updated"] == 1 and _prices(db)[0][3] == Decimal("3.00")
