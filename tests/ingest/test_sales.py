"""Sales import into fact_sales on the real PostgreSQL: validation, idempotency, strict, a larger file."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from _ingest_helpers import query, rows

from priceintel.ingest.result import IngestError
from priceintel.ingest.sales import import_sales


def _sales(engine) -> list[tuple]:
    return rows(
        engine,
        "SELECT p.sku, d.date::text AS ds, s.units, s.price, s.promo FROM fact_sales s "
        "JOIN dim_product p USING (product_id) JOIN dim_date d USING (date_key) ORDER BY 1, 2",
    )


def test_sales_load_with_lineage(catalog, write, tmp_path):
    path = write("sales.csv", "sku,date,units,price,promo\nA1,2024-01-01,3,15.00,no\nA1,2024-01-02,5,12.50 USD,yes\n")
    res = import_sales(catalog, path, archive_root=tmp_path)
    assert (res.status, res.counts["inserted"]) == ("success", 2)
    assert _sales(catalog) == [
        ("A1", "2024-01-01", 3, Decimal("15.00"), False),
        ("A1", "2024-01-02", 5, Decimal("12.50"), True),
    ]
    run = query(catalog, "SELECT * FROM import_run WHERE kind = 'sales'")[0]
    assert (run["status"], run["rows_inserted"], run["import_run_id"]) == ("success", 2, res.import_run_id)
    assert (tmp_path / "imports" / "sales").is_dir()


BAD = (
    "sku,date,units,price\n"
    "A1,2024-01-01,3,15.00\n"  # 2 ok
    "ZZ9,2024-01-01,1,1.00\n"  # 3 unknown sku
    "A2,yesterday-ish,1,1.00\n"  # 4 bad date
    "A2,2024-01-02,-2,1.00\n"  # 5 negative units
    "A2,2024-01-03,1.5,1.00\n"  # 6 fractional units
    "A2,2024-01-04,1,abc\n"  # 7 bad price
    "A2,2024-01-05,1,-1.00\n"  # 8 negative price
    "A1,2024/01/06,1,1.00\n"  # 9 duplicate (same day as row 10)
    "A1,2024-01-06,2,1.00\n"  # 10 duplicate
    "A2,2024-01-07,99999999999999999999,1.00\n"  # 11 more units than a row may hold
)


def test_bad_sales_rows_are_rejected_by_row_and_column(catalog, write, tmp_path):
    res = import_sales(catalog, write("sales.csv", BAD), archive_root=tmp_path)
    assert res.status == "partial"
    assert res.counts == {"total": 10, "inserted": 1, "updated": 0, "unchanged": 0, "rejected": 9}
    assert res.lines()[1:] == [
        "sales.csv row 3, column sku: unknown sku 'ZZ9' (not in the catalogue: import it first with "
        "`priceintel catalog import`)",
        "sales.csv row 4, column date: unreadable date 'yesterday-ish' (use YYYY-MM-DD)",
        "sales.csv row 5, column units: negative units '-2'",
        "sales.csv row 6, column units: units '1.5' is not a whole number",
        "sales.csv row 7, column price: unparsable price 'abc'",
        "sales.csv row 8, column price: negative price '-1.00'",
        "sales.csv row 9, column sku: duplicate sku and date 'A1 / 2024-01-06' (rows 9, 10): every copy rejected",
        "sales.csv row 10, column sku: duplicate sku and date 'A1 / 2024-01-06' (rows 9, 10): every copy rejected",
        "sales.csv row 11, column units: units '99999999999999999999' above 2,147,483,647 (not a day's sales)",
    ]
    assert _sales(catalog) == [("A1", "2024-01-01", 3, Decimal("15.00"), None)]
    assert res.rejects_path.read_text().splitlines()[1].startswith("3,sku,ZZ9,unknown sku 'ZZ9'")


def test_strict_sales_import_writes_nothing(catalog, write, tmp_path):
    with pytest.raises(IngestError, match=r"^sales.csv: refused \(strict\): 9 row\(s\) rejected, nothing imported; "):
        import_sales(catalog, write("sales.csv", BAD), strict=True, archive_root=tmp_path)
    assert _sales(catalog) == []
    assert query(catalog, "SELECT status FROM import_run WHERE kind = 'sales'") == [{"status": "failed"}]


def test_missing_columns_are_named(catalog, write, tmp_path):
    with pytest.raises(IngestError) as err:
        import_sales(catalog, write("sales.csv", "sku,qty\nA1,1\n"), archive_root=tmp_path)
    assert str(err.value) == ("sales.csv: no date column(s) (sales need sku, date, units); its columns: ['sku', 'qty']")


def test_sales_reimport_is_idempotent_and_updates_changed_days(catalog, write, tmp_path):
    text = "sku,date,units,price\nA1,2024-01-01,3,15.00\nA2,2024-01-01,1,20.00\n"
    path = write("sales.csv", text)
    import_sales(catalog, path, archive_root=tmp_path)
    again = import_sales(catalog, path, archive_root=tmp_path)
    assert again.counts == {"total": 2, "inserted": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    path.write_text(text.replace("A2,2024-01-01,1", "A2,2024-01-01,4"))
    changed = import_sales(catalog, path, archive_root=tmp_path)
    assert (changed.counts["updated"], changed.counts["unchanged"]) == (1, 1)
    assert _sales(catalog)[1][2] == 4


def test_a_larger_parquet_file_loads_set_based(catalog, tmp_path):
    days = pd.date_range("2023-01-01", periods=10_000, freq="D")
    df = pd.DataFrame(
        {
            "sku": np.repeat(["A1", "A2"], len(days)),
            "date": np.tile(days, 2),
            "units": np.arange(2 * len(days)) % 7,
            "price": np.round(np.linspace(5, 50, 2 * len(days)), 2),
            "promo": np.arange(2 * len(days)) % 5 == 0,
        }
    )
    path = tmp_path / "sales.parquet"
    df.to_parquet(path)
    res = import_sales(catalog, path, archive_root=tmp_path)
    assert res.counts == {"total": 20_000, "inserted": 20_000, "updated": 0, "unchanged": 0, "rejected": 0}
    assert query(catalog, "SELECT count(*) AS n, sum(units) AS u FROM fact_sales") == [
        {"n": 20_000, "u": int(df["units"].sum())}
    ]
