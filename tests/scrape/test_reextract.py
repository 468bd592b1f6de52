"""Re-extraction from the raw archive and chunked work on a real Dask LocalCluster (#20 item 5).

One LocalCluster of 2 worker processes (1 thread each) serves the module: the forecast tournament and the page
re-extraction run on it and must give exactly what the local run gives."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from priceintel import compute
from priceintel.forecast.tournament import run_tournament
from priceintel.scrape import Fetcher, RawArchive, scrape_demo
from priceintel.scrape.reextract import product_records, reextract


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        yield lc


@pytest.fixture(scope="module")
def scraped(demo_world, storefronts, tmp_path_factory):
    """Two days of the demo shops scraped into a fresh archive: (archive, offers, errors)."""
    before = storefronts.date
    arc = RawArchive(tmp_path_factory.mktemp("raw"), store="local")
    days = [demo_world.start + timedelta(days=5), demo_world.start + timedelta(days=6)]
    try:
        with Fetcher(archive=arc, backoff=0.01) as f:
            offers, errors = scrape_demo(storefronts.urls, days, f)
    finally:
        storefronts.set_date(before)
    return arc, offers, errors


def _key(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["retailer", "item_id", "ds"]).reset_index(drop=True)


def test_reextract_gives_back_the_scraped_offers(scraped):
    arc, offers, errors = scraped
    again, errs = reextract(arc)
    assert len(again) == len(offers) > 0 and len(errs) == len(errors)
    pd.testing.assert_frame_equal(_key(again)[list(offers.columns)], _key(offers), check_dtype=False)
    # the second day's pages were answered 304 Not Modified: extracted from the body each one confirmed
    recs = [r for r in arc.iter_index() if r["meta"].get("kind") == "product"]
    assert sum(r["status"] == 304 for r in recs) > 0 and all(r["meta"]["not_modified_of"] for r in recs
                                                             if r["status"] == 304)
    # one shop: only its records
    one = reextract(arc, retailers=["walmart"])[0]
    assert set(one["retailer"]) == {"walmart"} and len(one) == int((offers["retailer"] == "walmart").sum())
    assert product_records(arc, retailers=["nowhere"]) == []


@pytest.mark.slow
def test_reextract_on_a_local_cluster_is_identical(scraped, cluster):
    arc, _, _ = scraped
    local, local_err = reextract(arc, chunk=7)
    dist, dist_err = reextract(arc, cluster=cluster.scheduler_address, chunk=7)
    pd.testing.assert_frame_equal(dist, local)
    pd.testing.assert_frame_equal(dist_err, local_err)


PAGE = (b"<html><head><title>Mug</title></head><body><h1>Mug</h1>"
        b"<span class='a-price'><span class='a-offscreen'>$12.50</span></span></body></html>")


def test_which_archived_records_are_extracted_and_how(tmp_path):
    """Hand-made index records: an error response is the fetcher's http_error, a 304 reads the body it
    confirmed, a refetch replaces the first fetch, single-page fetches (live, preview) are left out, and a
    partition filter keeps the pages first fetched that day."""
    from datetime import UTC, datetime

    arc = RawArchive(tmp_path, store="local")
    at = datetime(2026, 7, 1, 6, tzinfo=UTC)
    url = "http://127.0.0.1:9/dp/B000000001"
    body = arc.put(url, 200, {"ETag": '"v1"'}, PAGE, at, partition="2026-07-01", kind="product",
                   retailer="amazon", ds="2026-07-01")
    arc.put(url, 304, {}, b"", at, partition="2026-07-02", kind="product", retailer="amazon", ds="2026-07-02",
            not_modified_of=body)
    arc.put(url + "9", 503, {}, b"busy", at, partition="2026-07-02", kind="product", retailer="amazon",
            ds="2026-07-02")
    arc.put(url + "8", 200, {}, b"<html><title>Robot check</title></html>", at, partition="2026-07-02",
            kind="product", retailer="amazon", ds="2026-07-02")
    arc.put(url + "8", 200, {}, PAGE, at, partition="2026-07-03", kind="product", retailer="amazon",
            ds="2026-07-02", refetch=True)  # after midnight: the next partition, the same run day
    arc.put(url + "7", 200, {}, PAGE, at, partition="2026-07-02", kind="product", retailer="my-shop",
            page="single")  # a live watch: not a crawl record (and no adapter of that name)
    offers, errors = reextract(arc)
    assert sorted(zip(offers["url"], offers["ds"].dt.strftime("%Y-%m-%d"))) == [
        (url, "2026-07-01"), (url, "2026-07-02"), (url + "8", "2026-07-02")]
    assert (offers["price"].astype(float) == 12.5).all()
    assert (offers.loc[offers["status"] == 304, "page_sha256"] == body).all()
    assert errors[["url", "kind", "message"]].values.tolist() == [
        [url + "9", "http_error", f"HTTP 503 Service Unavailable for {url}9"]]
    day2 = reextract(arc, partitions=["2026-07-02"])[0]
    assert sorted(day2["url"]) == [url, url + "8"] and (day2["price"].astype(float) == 12.5).all()
    assert reextract(arc, partitions=["2026-07-03"])[0].empty  # its only record refetches a page of the day before


def _panel(n: int = 12, days: int = 120, seed: int = 7) -> pd.DataFrame:
    """Step-like daily prices with promotions: n series."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-01-01", periods=days, freq="D")
    rows = []
    for i in range(n):
        regular = 10 + 3 * i + np.repeat(rng.normal(0, 0.4, days // 30 + 1), 30)[:days].cumsum()
        promo = rng.random(days) < 0.1
        y = np.round(np.where(promo, regular * 0.8, regular), 2)
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.slow
def test_tournament_on_a_local_cluster_is_identical(cluster):
    df = _panel()
    local = run_tournament(df, h=7, n_windows=2, n_jobs=1, progress=False)
    dist = run_tournament(df, h=7, n_windows=2, progress=False, cluster=cluster)
    assert local.timing["backtest_on"] == "local" and dist.timing["backtest_on"] == cluster.scheduler_address
    for name in ("cv", "metrics", "forecasts", "choices", "change", "calibration"):
        a, b = getattr(local, name), getattr(dist, name)
        pd.testing.assert_frame_equal(b, a, obj=name)
    assert dist.params == local.params and dist.failures == local.failures


def test_cluster_errors_are_clear(monkeypatch):
    with pytest.raises(compute.ClusterError, match="not a Dask scheduler address"):
        compute.resolve("localhost:8786")
    monkeypatch.setattr(compute, "CONNECT_TIMEOUT", 2)
    with pytest.raises(compute.ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        run_tournament(_panel(n=2), h=7, n_windows=2, progress=False, cluster="tcp://127.0.0.1:9")
    monkeypatch.setenv(compute.CLUSTER_ENV, "tcp://127.0.0.1:9")
    assert compute.resolve(None) == "tcp://127.0.0.1:9" and compute.describe("") == "tcp://127.0.0.1:9"
    monkeypatch.setenv(compute.CLUSTER_ENV, "")
    assert compute.resolve(None) is None and compute.describe(None) == "local"


@pytest.mark.slow
def test_reextract_command_on_the_cluster(scraped, cluster, tmp_path, capsys):
    import json

    from priceintel import cli

    arc, offers, _ = scraped
    out = tmp_path / "again"
    assert cli.main(["reextract", "--out", str(out), "--archive", str(arc.root), "--retailer", "target",
                     "--cluster", cluster.scheduler_address]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ran_on"] == cluster.scheduler_address and summary["archive"] == str(arc.root)
    assert summary["pages"] == len(pd.read_parquet(out / "offers.parquet")) == int((offers["retailer"] == "target").sum())
    capsys.readouterr()
    assert cli.main(["reextract", "--out", str(out), "--archive", str(tmp_path / "empty")]) == 2
    assert "holds no pages" in capsys.readouterr().err
    # --cluster is checked before anything runs, and the environment is left as it was
    assert cli.main(["run", "--cluster", "localhost:8786"]) == 2
    assert "not a Dask scheduler address" in capsys.readouterr().err
    assert compute.CLUSTER_ENV not in __import__("os").environ
