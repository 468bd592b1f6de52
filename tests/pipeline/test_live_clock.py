"""The live source on a clock: the demo storefronts show the day of a settable clock (`Storefronts.set_date`)
and each daily run fetches on `PRICEINTEL_CLOCK`. Sixteen consecutive daily runs through the pipeline's
stage functions (world -> scrape -> clean -> match -> load -> checks and alerts) accumulate 16 days equal to the
demo source's observations of the same world; a shop outage on one day leaves exactly that gap, recorded in
watch_fetch; a shop whose pages lose their prices trips the extraction_rate_drop check, which notifies a real
webhook receiver; a `priceintel run` killed with SIGKILL mid-way and run again loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from _receivers import HTTPSink
from priceintel import clean, config
from priceintel.alerts.notify import WebhookNotifier
from priceintel.demo import Storefronts, generate_world
from priceintel.ingest import import_catalog, import_watches
from priceintel.pipeline import hooks
from priceintel.pipeline import stages as pipeline
from priceintel.scrape import Fetcher, RawArchive, scrape_demo

# 16 days: history enough for the forecast check (every listing backtested on two 3-day windows); the fault days
# have runs on either side
N_DAYS = 16
OUTAGE = (6, "walmart")  # (day index, shop): every page answers 503
DROP = (11, "target")  # every page in stock without a price: the extractor finds none

pytestmark = [pytest.mark.slow, pytest.mark.e2e]




def _inputs(tmp: Path, world, urls: dict[str, str]) -> None:
    """shops.yaml (the three storefronts, fast politeness), our catalogue and a watch list of every listing."""
    shops = {r: {"base_url": u + "/", "adapter": r, "requests_per_second": 100, "concurrency": 2}
             for r, u in urls.items()}
    (tmp / "shops.yaml").write_text(yaml.safe_dump({"shops": shops}))
    cols = ["sku", "name", "brand", "category", "gtin", "mpn", "size", "unit_cost", "map_price"]
    world.products[cols].to_csv(tmp / "catalogue.csv", index=False)
    watch = world.listings[["retailer", "item_id", "url"]].merge(world.truth_matches, how="left")
    watch["url"] = [urls[r] + u for r, u in zip(watch["retailer"], watch["url"])]
    watch[["retailer", "url", "sku"]].to_csv(tmp / "watch.csv", index=False)


def _run_day(engine, data: Path, reports: Path, run_key: str, hook: HTTPSink) -> dict:
    """One scheduled daily run of the live source through the stage functions the notebooks call."""
    params = pipeline.validate_params(data_dir=data, days=2, world_start="2026-01-01", retailers="amazon,walmart,target",
                                      source="live")
    world_dir = pipeline.world_stage(params, engine)
    offers, errors, fetches = pipeline.scrape_stage(params)
    obs, cerr = clean.offers_to_observations(offers)
    listings = clean.listings_from_observations(obs)
    matches, _, _ = pipeline.match_stage(listings, pipeline.read_catalogue(world_dir / "products.csv"), "live",
                                         engine)
    up = pipeline.save_products(data, world_dir, {
        "scrape": {"offers": offers, "errors": errors, "fetches": fetches},
        "clean": {"observations": obs, "listings": listings, "errors": cerr}, "match": {"matches": matches}})
    pipeline.load_stage(up, data)
    return hooks.monitor_load(engine, run_key, None, reports, notifiers={"webhook": WebhookNotifier(hook.url)})


def _stored(engine) -> pd.DataFrame:
    sql = """SELECT r.retailer, l.item_id, d.date AS ds, fp.price::float AS price FROM fact_price fp
             JOIN dim_listing l USING (listing_id) JOIN dim_retailer r USING (retailer_id)
             JOIN dim_date d ON d.date_key = fp.date_key WHERE fp.price IS NOT NULL"""
    df = pd.read_sql(sql, engine)
    df["ds"] = pd.to_datetime(df["ds"])
    return df.sort_values(["retailer", "item_id", "ds"]).reset_index(drop=True)


def _demo_observations(world, tmp: Path, days: list[date]) -> pd.DataFrame:
    """What the demo source observes of the same world: every page of the days, fetched by date."""
    with Storefronts(world) as fronts, Fetcher(archive=RawArchive(tmp / "demo-raw")) as fetcher:
        offers, _ = scrape_demo(fronts.urls, days, fetcher)
    obs, _ = clean.offers_to_observations(offers)
    obs = obs[obs["price"].notna()][["retailer", "item_id", "ds", "price"]]
    return obs.sort_values(["retailer", "item_id", "ds"]).reset_index(drop=True)


def _faults(world, day: int) -> dict:
    """The day's injected faults: the outage shop answers 503 everywhere; the drop shop shows no prices."""
    keys = {r: [(r, i) for i in world.listings.loc[world.listings["retailer"] == r, "item_id"]]
            for r in (OUTAGE[1], DROP[1])}
    if day == OUTAGE[0]:
        return {"status": {k: 503 for k in keys[OUTAGE[1]]}}
    if day == DROP[0]:
        return {"missing_price": keys[DROP[1]]}
    return {}


def test_sixteen_days_of_daily_live_runs_equal_the_demo_source(fresh_db, tmp_path, monkeypatch):
    world = generate_world(n_products=4, n_days=N_DAYS, seed=21)
    data, reports = tmp_path / "data", tmp_path / "reports"
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(data))
    days = [world.start + timedelta(days=i) for i in range(N_DAYS)]
    with Storefronts(world) as fronts, HTTPSink() as hook:
        _inputs(tmp_path, world, fronts.urls)
        monkeypatch.setenv("PRICEINTEL_SHOPS", str(tmp_path / "shops.yaml"))
        assert import_catalog(fresh_db, tmp_path / "catalogue.csv").counts["rejected"] == 0
        assert import_watches(fresh_db, tmp_path / "watch.csv").counts["rejected"] == 0
        outcomes = []
        for i, day in enumerate(days):
            fronts.set_date(day)
            fronts.set_faults(_faults(world, i))
            monkeypatch.setenv("PRICEINTEL_CLOCK", day.isoformat())
            outcomes.append(_run_day(fresh_db, data, reports, f"day-{i}", hook))
        posts = list(hook.bodies)
    stored = _stored(fresh_db)
    expect = _demo_observations(world, tmp_path, days)
    gap = {(OUTAGE[1], pd.Timestamp(days[OUTAGE[0]])), (DROP[1], pd.Timestamp(days[DROP[0]]))}
    in_gap = [(r, d) in gap for r, d in zip(expect["retailer"], expect["ds"])]
    assert len(expect[in_gap]) > 0  # the faults hit days with prices
    expect = expect[[not g for g in in_gap]].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expect, check_dtype=False)  # every day, exactly the demo's, minus the gaps
    assert stored["ds"].nunique() == N_DAYS
    with fresh_db.connect() as conn:
        outcomes_on = {
            (r, d): dict(c) for r, d, c in conn.execute(sa.text(
                "SELECT o.retailer, d.date, json_object_agg(o.outcome, o.n) FROM (SELECT w.retailer, f.date_key, "
                "f.outcome, count(*) AS n FROM watch_fetch f JOIN watch w USING (watch_id) GROUP BY 1, 2, 3) o "
                "JOIN dim_date d USING (date_key) GROUP BY 1, 2")).all()}
        totals = conn.execute(sa.text("SELECT (SELECT count(*) FROM scrape_run), (SELECT count(*) FROM watch_fetch)")
                              ).one()
    n = world.listings["retailer"].value_counts().to_dict()
    assert outcomes_on[(OUTAGE[1], days[OUTAGE[0]])] == {"error": n[OUTAGE[1]]}  # the gap, recorded
    assert outcomes_on[(DROP[1], days[DROP[0]])] == {"no_price": n[DROP[1]]}
    assert len(outcomes_on) == 3 * N_DAYS and tuple(totals) == (N_DAYS, N_DAYS * len(world.listings))
    failed = {i: o["failed"] for i, o in enumerate(outcomes) if "extraction_rate_drop" in o["failed"]}
    assert list(failed) == [DROP[0]]
    # the model stages read the whole history from the database: the live days backtest and forecast every listing
    early = pipeline.forecast_stage(horizon=3, prophet_series=0, engine=fresh_db, n_windows=2)
    assert early["forecast_run_id"] is not None and "skipped" not in early
    assert set(early["future"]["unique_id"]) == {f"{r}:{i}" for r, i in stored[["retailer", "item_id"]].drop_duplicates()
                                                 .itertuples(index=False)}
    firsts = pd.to_datetime(early["future"]["ds"]).groupby(early["future"]["unique_id"]).min()
    assert firsts.max() == pd.Timestamp(days[-1]) + pd.Timedelta(days=1)  # from the newest live day on
    notes = [p for p in posts if "extraction_rate_drop" in p.get("title", "")]
    assert len(notes) == 1 and f"shop {DROP[1]}" in " ".join(notes[0].get("lines", []))


def test_a_killed_live_run_then_a_rerun_lose_and_duplicate_nothing(fresh_db, tmp_path, monkeypatch):
    world = generate_world(n_products=4, n_days=5, seed=22)
    data, reports = tmp_path / "data", tmp_path / "reports"
    env = {**os.environ, "PRICEINTEL_DATA_DIR": str(data), "PRICEINTEL_SHOPS": str(tmp_path / "shops.yaml"),
           "PRICEINTEL_CLOCK": world.start.isoformat(), "DATABASE_URL": os.environ["DATABASE_URL"]}
    cmd = [sys.executable, "-m", "priceintel.cli", "run", "--env-file", str(config.PROJ_ROOT / "env.test.yaml"),
           "--set", "source=live", "--set", f"data_dir={data}", "--set", f"reports_dir={reports}",
           "--until", "load"]  # fetch, check and store: what is killed and run again here (no models)
    with Storefronts(world) as fronts:
        _inputs(tmp_path, world, fronts.urls)
        fronts.set_date(world.start)
        import_catalog(fresh_db, tmp_path / "catalogue.csv")
        import_watches(fresh_db, tmp_path / "watch.csv")
        # slow every page down so the kill lands while the run is fetching or loading
        fronts.set_faults({"delay": {(r, i): (1, 0.4) for r, i in zip(world.listings["retailer"],
                                                                     world.listings["item_id"])}})
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while not (data / "raw").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = _stored(fresh_db)
        fronts.set_faults({})
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (data / "interim" / "load_receipt.json").exists() and not (reports / "summary.json").exists()
    assert json.loads((reports / "last_run.json").read_text())["until"] == "load"  # models not built, and said so
    with fresh_db.connect() as conn:  # and so does the run's row
        params = conn.execute(sa.text("SELECT params FROM pipeline_run WHERE task = 'pipeline' AND status = "
                                      "'success' ORDER BY run_id DESC LIMIT 1")).scalar()
    assert params["until"] == "load"
    stored = _stored(fresh_db)
    assert killed.empty  # nothing half-loaded by the killed run
    expect = _demo_observations(world, tmp_path, [world.start])
    pd.testing.assert_frame_equal(stored, expect, check_dtype=False)  # everything, once
    with fresh_db.connect() as conn:
        fetches = conn.execute(sa.text("SELECT count(*), count(DISTINCT watch_id) FROM watch_fetch")).one()
    assert tuple(fetches) == (len(world.listings), len(world.listings))  # the completed run's, once each

