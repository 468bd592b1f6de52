"""Data checks name the check, table, column and number of rows."""

import pandas as pd
import pytest

from priceintel import quality
from priceintel.items import OBSERVATION_COLUMNS


def _obs(**over):
    row = dict(retailer="amazon", item_id="B01", url="/x", ds=pd.Timestamp("2026-07-01"),
               observed_at=pd.Timestamp("2026-07-01", tz="UTC"), price=9.99, list_price=None, currency="USD",
               in_stock=True, promo=False, title="t", brand="b", gtin=None, mpn=None, page_sha256="0" * 64)
    row.update(over)
    return row


def test_clean_frame_passes():
    df = pd.DataFrame([_obs(), _obs(item_id="B02")])
    res = quality.check_observations(df)
    assert all(r.passed for r in res)
    quality.raise_on_failure(res)
    assert len(quality.results_frame(res)) == len(res)


def test_each_fault_is_caught_by_name():
    df = pd.DataFrame([_obs(), _obs(), _obs(item_id="B03", price=-1.0), _obs(item_id="B04", currency="$"),
                       _obs(item_id="B05", price=None), _obs(item_id=None)])
    failed = {r.name: r.failed_rows for r in quality.check_observations(df, "obs") if not r.passed}
    assert failed == {"unique_listing_day": 1, "price_positive": 1, "currency_iso4217": 1,
                      "in_stock_has_price": 1, "item_id_present": 1}
    with pytest.raises(quality.QualityError, match=r"price_positive: table obs, column price: 1 rows"):
        quality.raise_on_failure(quality.check_observations(df, "obs"))


def test_missing_columns_named(tmp_path):
    df = pd.DataFrame([_obs()]).drop(columns=["currency"])
    with pytest.raises(quality.QualityError, match="currency"):
        quality.raise_on_failure(quality.check_observations(df))
    path = tmp_path / "o.parquet"
    pd.DataFrame([_obs()])[OBSERVATION_COLUMNS].to_parquet(path)
    quality.check_observations_product({"observations": path})
