"""Data checks name the check, table, column and number of rows."""

import pandas as pd
import pytest

from priceintel.db import tenancy
from priceintel.items import OBSERVATION_COLUMNS
from priceintel.pipeline import quality


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


# ------------------------------------------------------------ injected faults, named checks
from pathlib import Path  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from priceintel import clean  # noqa: E402
from priceintel.alerts import notify
from priceintel.db import load  # noqa: E402
from priceintel.pipeline import hooks as monitor

CRITICAL_SQL = {"duplicate_listings", "price_jump", "currency_mismatch"}


def _scraped(pipeline_env) -> pd.DataFrame:
    """The observations the session pipeline scraped from the demo shops (real pages)."""
    return pd.read_parquet(Path(pipeline_env["data_dir"]) / "interim" / "observations.parquet")


def _load(engine, obs: pd.DataFrame) -> None:
    with tenancy.as_owner(), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE dim_date, dim_retailer, dim_listing, fact_price RESTART IDENTITY CASCADE")
        load.ensure_dates(conn, obs["ds"].min(), obs["ds"].max())
        load.upsert_retailers(conn, pd.DataFrame({"retailer": sorted(obs["retailer"].unique())}))
        load.upsert_listings(conn, clean.listings_from_observations(obs))
        load.load_prices(conn, obs)


def _failed(engine) -> dict:
    return {r.name: r for r in quality.sql_checks(engine) if not r.passed}


@pytest.mark.slow
def test_each_injected_fault_is_caught_by_a_named_check(pipeline_env, clean_db):
    obs = _scraped(pipeline_env)
    last = obs["ds"].max()
    _load(clean_db, obs)
    assert _failed(clean_db) == {}  # the real scrape passes every check

    stale = obs[~((obs["retailer"] == "walmart") & (obs["ds"] > last - pd.Timedelta(days=3)))]
    _load(clean_db, stale)
    failed = _failed(clean_db)
    assert set(failed) == {"freshness"} and "walmart last seen" in failed["freshness"].detail

    dup = pd.concat([obs, obs.sample(5, random_state=1)], ignore_index=True)
    names = {r.name: r.failed_rows for r in quality.validate_frame(dup, "observations") if not r.passed}
    assert names == {"observations.unique_listing_day": 10}
    with pytest.raises(load.LoadError, match="fact_price"):
        _load(clean_db, dup)

    x100 = obs.copy()
    hit = x100.index[(x100["retailer"] == "amazon") & (x100["ds"] == last) & x100["price"].notna()][0]
    x100.loc[hit, "price"] = round(x100.loc[hit, "price"] * 100, 2)
    _load(clean_db, x100)
    failed = _failed(clean_db)
    assert set(failed) == {"price_jump"} and failed["price_jump"].failed_rows == 1
    assert x100.loc[hit, "item_id"] in failed["price_jump"].detail and "vs median" in failed["price_jump"].detail

    eur = obs.copy()
    eur.loc[(eur["retailer"] == "target") & (eur["ds"] == last) & eur["price"].notna(), "currency"] = "EUR"
    _load(clean_db, eur)
    failed = _failed(clean_db)
    assert set(failed) == {"currency_mismatch"} and "target:" in failed["currency_mismatch"].detail
    assert {r.name for r in quality.sql_checks(clean_db, expected_currencies=("USD",)) if not r.passed} == {
        "currency_mismatch"}
    assert CRITICAL_SQL == {r.name for r in quality.sql_checks(clean_db) if r.severity == "critical"}


@pytest.mark.slow
def test_critical_failure_is_stored_reported_notified_and_raised(pipeline_env, clean_db, tmp_path):
    from _receivers import HTTPSink

    obs = _scraped(pipeline_env)
    bad = obs.copy()
    bad.loc[(bad["retailer"] == "target") & (bad["ds"] == bad["ds"].max()), "currency"] = "EUR"
    _load(clean_db, bad)
    interim = Path(pipeline_env["data_dir"]) / "interim"
    with HTTPSink() as hook:
        with pytest.raises(quality.QualityError, match="currency_mismatch"):
            monitor.monitor_load(clean_db, "run-bad", interim, tmp_path,
                                 notifiers={"webhook": notify.WebhookNotifier(hook.url)})
        assert hook.bodies[0]["kind"] == "quality" and "currency_mismatch" in hook.bodies[0]["lines"][0]
    with clean_db.connect() as c:
        rows = c.execute(sa.text("SELECT stage, check_name, passed FROM quality_result WHERE run_key = 'run-bad'")).all()
    stages = {r.stage for r in rows}
    assert {"scrape", "clean", "match", "load"} <= stages  # frame checks from the upstream hooks + SQL checks
    assert ("load", "currency_mismatch", False) in {tuple(r) for r in rows}
    page = (tmp_path / "quality.html").read_text()
    assert "run-bad" in page and 'class="fail critical"' in page


@pytest.mark.slow
def test_frame_hooks_and_schema_failures(tmp_path, pipeline_env):
    interim = Path(pipeline_env["data_dir"]) / "interim"
    names = {r.name for r in monitor.frame_results(interim)}
    assert {"offers.schema", "observations.schema", "listings.schema", "matches.schema"} <= names
    m = pd.DataFrame({"retailer": ["amazon", "amazon"], "item_id": ["A", "A"], "sku": ["S", "S"],
                      "method": ["gtin", "gtin"], "score": [1.5, 0.9], "status": ["auto", "maybe"]})
    path = tmp_path / "m.parquet"
    m.to_parquet(path)
    with pytest.raises(quality.QualityError) as err:
        quality.check_matches_product({"matches": path})
    for name in ("matches.score_in_0_1", "matches.value_known", "matches.unique_key"):
        assert name in str(err.value)
    with pytest.raises(quality.QualityError, match="unknown frame schema"):
        quality.validate_frame(m, "nope")
    with pytest.raises(quality.QualityError, match="unknown SQL check option"):
        quality.sql_checks(None, jump=3)
