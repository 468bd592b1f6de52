"""The apps' data layer (priceintel.apps.views) on a real embedded PostgreSQL: filters, keyset pages,
cache keyed by the load, refresh, CSV/Excel/PDF exports, stored elasticities and migration 0007."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from datetime import date, timedelta

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from priceintel import config
from priceintel.apps import views as dashboard
from priceintel.db import load
from priceintel.demo import world as demo

N_PRODUCTS, N_DAYS = 16, 30
START = demo.DEFAULT_START


def _observations(world: demo.World) -> pd.DataFrame:
    obs = world.prices.copy()
    obs["currency"] = "USD"
    obs["observed_at"] = obs["ds"].dt.tz_localize("UTC") + pd.Timedelta(hours=6)
    return obs


@pytest.fixture(scope="module")
def dash_db(pg_server_url):
    """A fresh database: a small demo world loaded, the model stage run (forecasts + stored elasticities),
    alerts detected, the app views refreshed."""
    from priceintel.alerts.deliver import run_alerts
    from priceintel.alerts.rules import load_rules
    from priceintel.db.engine import (
        create_database,
        dispose_engines,
        drop_database,
        get_engine,
    )
    from priceintel.db.migrate import upgrade
    from priceintel.pipeline import stages as pipeline

    name = f"priceintel_dash_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        eng = get_engine(url)
        world = demo.generate_world(n_products=N_PRODUCTS, n_days=N_DAYS, seed=3)
        obs = _observations(world)
        matches = world.truth_matches.dropna(subset=["sku"]).assign(method="gtin", score=1.0, status="auto")
        with eng.begin() as conn:
            load.ensure_dates(conn, obs.ds.min(), obs.ds.max() + pd.Timedelta(days=3))
            load.upsert_retailers(conn, pd.DataFrame({"retailer": demo.RETAILERS}))
            load.upsert_products(conn, world.products)
            load.upsert_listings(conn, world.listings[["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]])
            load.load_matches(conn, matches)
            load.load_prices(conn, obs[obs["ds"] < obs["ds"].max()])  # the last day comes as a "new load"
            load.load_sales(conn, world.sales)
        pipeline.forecast_stage(horizon=5, prophet_series=0, engine=eng, n_windows=2)
        pipeline.elasticity_stage(engine=eng)
        run_alerts(eng, load_rules(config.PROJ_ROOT / "config" / "alert_rules.yaml"), notifiers={})
        dashboard.refresh(eng)
        yield {"url": url, "engine": eng, "world": world, "obs": obs}
    finally:
        dispose_engines()
        drop_database(pg_server_url, name)


def _all_pages(eng, view, f, limit):
    """Every page of a view through the cursors."""
    frames, cursor, n = [], None, 0
    while True:
        p = dashboard.page(eng, view, f, after=cursor, limit=limit)
        frames.append(p.rows)
        n += 1
        assert len(p.rows) <= limit
        assert p.has_more == (p.next_cursor is not None)
        if not p.has_more:
            break
        cursor = p.next_cursor
        assert n < 500
    return pd.concat(frames, ignore_index=True)


def test_filters_normalise_and_reject_bad_values():
    f = dashboard.Filters(start="2026-07-05", end=date(2026, 7, 9), retailers=["walmart", "amazon", "amazon"],
                          skus="SKU-00001")
    assert f.start == date(2026, 7, 5) and f.retailers == ("amazon", "walmart") and f.skus == ("SKU-00001",)
    assert hash(f) == hash(dashboard.Filters(start=date(2026, 7, 5), end="2026-07-09",
                                             retailers=("walmart", "amazon"), skus=("SKU-00001",)))
    with pytest.raises(ValueError, match="filter start 2026-07-10 is after filter end 2026-07-01"):
        dashboard.Filters(start="2026-07-10", end="2026-07-01")
    with pytest.raises(ValueError, match=r"filter end='July 4th' is not a date"):
        dashboard.Filters(end="July 4th")
    with pytest.raises(ValueError, match="filter retailers holds 3"):
        dashboard.Filters(retailers=("amazon", 3))


def test_bad_view_filter_cursor_and_limit_give_one_clear_error(dash_db):
    eng = dash_db["engine"]
    for call, pattern in [
        (lambda: dashboard.page(eng, "sales", dashboard.Filters()),
         "unknown view 'sales': expected one of prices, forecasts, elasticity, alerts"),
        (lambda: dashboard.summary(eng, "prices", dashboard.Filters(retailers=("ebay",))),
         "filter retailers: unknown 'ebay' \\(known: amazon, target, walmart\\)"),
        (lambda: dashboard.chart_frame(eng, "prices", dashboard.Filters(skus=("SKU-99999",))),
         "filter skus: unknown 'SKU-99999'"),
        (lambda: dashboard.page(eng, "prices", dashboard.Filters(), after=("2026-07-01", "SKU-00001")),
         "cursor after=.* does not fit view 'prices': expected \\(ds, sku, retailer, listing_id\\)"),
        (lambda: dashboard.page(eng, "alerts", dashboard.Filters(), after=("2026-07-01", "x")),
         "alert_id must be a int"),
        (lambda: dashboard.page(eng, "prices", dashboard.Filters(), limit=0), "page limit=0 must be an integer"),
        (lambda: dashboard.refresh(eng, views=["mv_nope"]), "refresh: unknown view"),
    ]:
        with pytest.raises(ValueError, match=pattern) as err:
            call()
        assert "\n" not in str(err.value)


def test_filter_options_list_the_loaded_world(dash_db):
    eng, world = dash_db["engine"], dash_db["world"]
    opts = dashboard.filter_options(eng)
    assert opts["retailers"] == sorted(demo.RETAILERS)
    assert opts["categories"] == sorted(world.products["category"].unique())
    assert [s for _, s in opts["products"]] == sorted(world.products["sku"])
    assert opts["min_date"] == START
    assert opts["max_date"] >= START + timedelta(days=N_DAYS - 2)
    assert opts["date_ranges"]["prices"] == (START, START + timedelta(days=N_DAYS - 2))
    assert opts["date_ranges"]["forecasts"][0] > START + timedelta(days=N_DAYS - 2)
    assert opts["date_ranges"]["elasticity"][0] == START


def test_filters_change_the_rows_and_match_the_base_tables(dash_db):
    eng, world = dash_db["engine"], dash_db["world"]
    everything = dashboard.summary(eng, "prices", dashboard.Filters())
    loaded = dash_db["obs"][dash_db["obs"]["ds"] < dash_db["obs"]["ds"].max()]
    matched = loaded.merge(world.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
    assert everything["rows"] == len(matched)
    assert everything["products"] == N_PRODUCTS
    cat = sorted(world.products["category"].unique())[0]
    sku = world.products["sku"].iloc[2]
    f = dashboard.Filters(start=START + timedelta(days=3), end=START + timedelta(days=9), retailers=("walmart",),
                          categories=(cat,))
    rows = _all_pages(eng, "prices", f, 40)
    skus_in_cat = set(world.products.loc[world.products["category"] == cat, "sku"])
    expect = matched[(matched["retailer"] == "walmart") & matched["sku"].isin(skus_in_cat)
                     & matched["ds"].between(pd.Timestamp(f.start), pd.Timestamp(f.end))]
    assert len(rows) == len(expect) > 0
    assert set(rows["retailer"]) == {"walmart"} and set(rows["category"]) == {cat}
    assert rows["ds"].min() >= pd.Timestamp(f.start) and rows["ds"].max() <= pd.Timestamp(f.end)
    assert dashboard.summary(eng, "prices", f)["rows"] == len(expect)
    # our price and the gap come from our own daily price
    one = _all_pages(eng, "prices", dashboard.Filters(skus=(sku,)), 100)
    ours = world.sales[world.sales["sku"] == sku].set_index("ds")["price"]
    assert (one["our_price"].to_numpy() == ours.loc[one["ds"]].to_numpy()).all()
    priced = one.dropna(subset=["price"])
    gap = ((priced["price"] / priced["our_price"] - 1) * 100).round(2)
    assert (gap - priced["gap_pct"]).abs().max() < 0.011
    assert dashboard.summary(eng, "prices", dashboard.Filters(skus=(sku,)))["products"] == 1
    chart = dashboard.chart_frame(eng, "prices", dashboard.Filters(skus=(sku,)))
    assert set(chart["series"]) == {"amazon", "target", "walmart", "ours"}
    ours_line = chart[chart["series"] == "ours"].set_index("ds")["mean_price"]
    assert (ours_line - ours.loc[ours_line.index]).abs().max() < 1e-9
    wide = dashboard.chart_frame(eng, "prices", dashboard.Filters(retailers=("amazon",)))
    assert set(wide["series"]) == {"amazon", "ours"} and wide["ds"].nunique() == N_DAYS - 1


@pytest.mark.parametrize("view,f", [
    ("prices", dashboard.Filters()),
    ("prices", dashboard.Filters(start=START + timedelta(days=5), end=START + timedelta(days=12),
                                 retailers=("amazon", "target"))),
    ("forecasts", dashboard.Filters()),
    ("forecasts", dashboard.Filters(retailers=("target",))),
    ("elasticity", dashboard.Filters()),
    ("alerts", dashboard.Filters()),
])
def test_keyset_pages_concatenate_to_the_filtered_set_in_order(dash_db, view, f):
    eng = dash_db["engine"]
    streamed = pd.concat(list(dashboard.iter_rows(eng, view, f, chunksize=97)), ignore_index=True)
    paged = _all_pages(eng, view, f, 23)
    assert len(streamed) > 0
    pd.testing.assert_frame_equal(paged, streamed)
    key = list(dashboard.SPECS[view].key)
    assert not paged.duplicated(key).any()
    assert len(paged) == dashboard.summary(eng, view, f)["rows"]
    asc = [c != "ds" or view != "prices" for c in key]
    if view == "alerts":
        asc = [False, False]
    assert paged.equals(paged.sort_values(key, ascending=asc, kind="stable").reset_index(drop=True))


def test_no_category_filter_finds_alerts_of_uncategorised_products(dash_db):
    """The '(none)' category the filter offers selects an uncategorised product's alerts too (the alert table
    keeps NULL, the product views say '(none)')."""
    eng = dash_db["engine"]
    with eng.begin() as conn:
        sku, cat = conn.execute(sa.text("SELECT sku, category FROM dim_product ORDER BY sku LIMIT 1")).one()
        conn.execute(sa.text("UPDATE dim_product SET category = NULL WHERE sku = :s"), {"s": sku})
        alert_id = conn.execute(sa.text(
            "INSERT INTO alert (dedup_key, rule, kind, severity, ds, sku, category, reason) "
            "VALUES ('review-no-category', 'test', 'price_drop', 'warning', :d, :s, NULL, 'test') "
            "RETURNING alert_id"), {"d": START, "s": sku}).scalar_one()
    try:
        assert "(none)" in dashboard.filter_options(eng)["categories"]
        f = dashboard.Filters(categories=("(none)",))
        rows = _all_pages(eng, "alerts", f, 50)
        assert list(rows["alert_id"]) == [alert_id]
        assert dashboard.summary(eng, "alerts", f)["rows"] == 1
        assert dashboard.chart_frame(eng, "alerts", f)["n"].sum() == 1
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text("DELETE FROM alert WHERE alert_id = :a"), {"a": alert_id})
            conn.execute(sa.text("UPDATE dim_product SET category = :c WHERE sku = :s"), {"c": cat, "s": sku})


def test_views_hold_the_stored_forecasts_elasticities_and_alerts(dash_db):
    eng = dash_db["engine"]
    with eng.connect() as conn:
        run_id = conn.execute(sa.text("SELECT max(run_id) FROM forecast_run")).scalar()
        n_chosen = conn.execute(sa.text("""
            SELECT count(*) FROM forecast_value fv
            JOIN dim_retailer r ON fv.unique_id LIKE r.retailer || ':%'
            JOIN dim_listing l ON l.retailer_id = r.retailer_id AND r.retailer || ':' || l.item_id = fv.unique_id
            JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status IN ('auto', 'confirmed')
            WHERE fv.run_id = :r AND fv.model = 'chosen'"""), {"r": run_id}).scalar()
        n_alerts = conn.execute(sa.text("SELECT count(*) FROM alert")).scalar()
    fc = _all_pages(eng, "forecasts", dashboard.Filters(), 200)
    assert set(fc["run_id"]) == {run_id} and len(fc) == n_chosen > 0  # the matched listings' forecasts
    assert fc["last_price"].notna().all() and fc["change_pct"].notna().all()
    assert (fc["lo-95"] <= fc["lo-80"]).all() and (fc["lo-80"] <= fc["yhat"]).all()
    assert (fc["yhat"] <= fc["hi-95"]).all()
    first_day = fc["ds"].min().date()
    one_day = dashboard.page(eng, "forecasts", dashboard.Filters(start=first_day, end=first_day), limit=500).rows
    assert set(one_day["ds"]) == {pd.Timestamp(first_day)} and len(one_day) == fc["unique_id"].nunique()
    el = _all_pages(eng, "elasticity", dashboard.Filters(), 10)
    assert len(el) == N_PRODUCTS and el["sku"].is_unique
    priced = el.dropna(subset=["recommended_price"])
    assert len(priced) >= N_PRODUCTS // 2
    change = (priced["recommended_price"] / priced["current_price"] - 1) * 100
    assert (change - priced["change_pct"]).abs().max() < 1e-6
    for rec in priced.itertuples():  # the stored reason is the pricing module's, for the stored price
        assert rec.reason.startswith(f"Recommended ${rec.recommended_price:,.2f} (now ${rec.current_price:,.2f}")
    assert (priced["elasticity"].between(priced["ci_lo"], priced["ci_hi"])).all()
    s = dashboard.summary(eng, "elasticity", dashboard.Filters())
    assert s["products"] == N_PRODUCTS and s["window_start"] == START
    # a date filter outside every estimation window leaves no run
    later = dashboard.Filters(start=START + timedelta(days=400))
    assert dashboard.summary(eng, "elasticity", later)["rows"] == 0
    al = _all_pages(eng, "alerts", dashboard.Filters(), 5)
    assert len(al) == n_alerts > 0
    assert dashboard.chart_frame(eng, "alerts", dashboard.Filters())["n"].sum() == n_alerts
    ch = dashboard.chart_frame(eng, "elasticity", dashboard.Filters())
    assert ch["n_products"].sum() == N_PRODUCTS


def test_cache_hits_and_a_new_load_shows_new_data(dash_db):
    eng, obs = dash_db["engine"], dash_db["obs"]
    f = dashboard.Filters(retailers=("amazon",))
    key = dashboard.load_key(eng)
    first = dashboard.page(eng, "prices", f)
    hits = dashboard.CACHE.stats()["hits"]
    assert dashboard.page(eng, "prices", f) is first
    assert dashboard.CACHE.stats()["hits"] > hits  # (check_filters also hits the cached filter options)
    assert dashboard.summary(eng, "prices", f) is dashboard.summary(eng, "prices", f)
    last_day = obs["ds"].max()
    assert first.rows["ds"].max() < last_day
    # an alert acknowledged in the alert manager changes the key at once (the alerts view is live)
    with eng.connect() as conn:
        alert_id = conn.execute(sa.text("SELECT min(alert_id) FROM alert")).scalar()
    from priceintel.alerts.store import set_state

    set_state(eng, [alert_id], "acknowledged")
    key_ack = dashboard.load_key(eng)
    assert key_ack != key
    # the next day's load, then the refresh the pipeline runs after every load
    with eng.begin() as conn:
        load.load_prices(conn, obs[obs["ds"] == last_day])
    dashboard.refresh(eng)
    assert dashboard.load_key(eng) != key_ack
    after = dashboard.page(eng, "prices", f)
    assert after is not first
    assert after.rows["ds"].max() == last_day
    assert dashboard.summary(eng, "prices", dashboard.Filters())["last_day"] == last_day.date()
    # a concurrent refresh works (every view has its unique index) and changes the key again
    k = dashboard.load_key(eng)
    timings = dashboard.refresh(eng, concurrently=True)
    assert set(timings) == set(dashboard.APP_VIEWS) and dashboard.load_key(eng) != k


def test_cache_is_bounded_lru():
    c = dashboard.AppCache(maxsize=2)
    a = c.get_or_compute("a", lambda: [1])
    c.get_or_compute("b", lambda: [2])
    assert c.get_or_compute("a", lambda: [9]) is a
    c.get_or_compute("c", lambda: [3])  # evicts b, the least recently used
    assert "a" in c and "c" in c and "b" not in c and len(c) == 2
    assert c.stats() == {"entries": 2, "hits": 1, "misses": 3}
    c.clear()
    assert len(c) == 0


def test_csv_and_excel_exports_reread_with_rows_and_types(dash_db):
    eng, world = dash_db["engine"], dash_db["world"]
    sku = world.products["sku"].iloc[0]
    f = dashboard.Filters(skus=(sku,), end=START + timedelta(days=19))
    frames = dashboard.export_frames(eng, "prices", f)
    assert list(frames) == ["prices", "chart", "summary"]
    rows = frames["prices"]
    assert len(rows) == dashboard.summary(eng, "prices", f)["rows"] == 3 * 20
    back = pd.read_csv(io.BytesIO(dashboard.to_csv(rows)), parse_dates=["ds"])
    assert list(back.columns) == list(rows.columns) and len(back) == len(rows)
    assert back["ds"].dtype == "datetime64[ns]" and back["price"].dtype == "float64"
    assert (back["sku"] == sku).all()
    pd.testing.assert_series_equal(back["price"], rows["price"], check_names=False)
    xlsx = dashboard.to_excel(frames)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames == ["prices", "chart", "summary"]
    ws = wb["prices"]
    header = [c.value for c in ws[1]]
    assert header == list(rows.columns) and ws.max_row == len(rows) + 1
    assert ws["A1"].font.bold and ws.freeze_panes == "A2"
    col = {h: i + 1 for i, h in enumerate(header)}
    assert ws.cell(2, col["ds"]).is_date and ws.cell(2, col["ds"]).number_format.lower() == "yyyy-mm-dd"
    assert isinstance(ws.cell(2, col["our_price"]).value, float)
    assert isinstance(ws.cell(2, col["in_stock"]).value, bool)
    assert isinstance(ws.cell(2, col["listing_id"]).value, int)
    assert ws.column_dimensions["B"].width >= len("retailer")
    xl = pd.read_excel(io.BytesIO(xlsx), sheet_name=None)
    assert xl["prices"]["ds"].dtype.kind == "M" and xl["prices"]["price"].dtype == "float64"
    assert len(xl["chart"]) == len(frames["chart"]) and "filter: products" in set(xl["summary"]["item"])
    alerts = dashboard.export_frames(eng, "alerts", dashboard.Filters())
    wb2 = openpyxl.load_workbook(io.BytesIO(dashboard.to_excel(alerts)))
    assert wb2.sheetnames == ["alerts", "chart", "summary"]
    assert wb2["alerts"].max_row == len(alerts["alerts"]) + 1


def test_export_refuses_views_beyond_the_row_limit(dash_db, monkeypatch):
    from priceintel.apps import export

    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 10)
    with pytest.raises(ValueError, match=r"the prices view holds 1,\d{3} rows under these filters; exports are "
                                         r"limited to 10: narrow"):
        dashboard.export_frames(dash_db["engine"], "prices", dashboard.Filters())
    with pytest.raises(ValueError, match="to_excel: no frames"):
        dashboard.to_excel({})


def test_report_html_is_self_contained_and_prints_to_a_pdf(dash_db):
    eng = dash_db["engine"]
    f = dashboard.Filters(retailers=("target",), start=START + timedelta(days=2))
    html = dashboard.report_html(eng, "prices", f)
    assert "<h1>Competitor prices</h1>" in html and "target" in html
    assert html.count("<svg") == 2 and "<polyline" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    n = dashboard.summary(eng, "prices", f)["rows"]
    assert f"{n:,} rows" in html

    async def inside_a_running_loop():  # as in a Voila kernel
        return dashboard.to_pdf(html)

    pdf = asyncio.run(inside_a_running_loop())
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2  # the 100-row table needs more than a page
    for view in ("forecasts", "elasticity", "alerts"):
        page_html = dashboard.report_html(eng, view, dashboard.Filters())
        assert "<svg" in page_html and "<table" in page_html
    with pytest.raises(ValueError, match="to_pdf: the HTML to print is empty"):
        dashboard.to_pdf("  ")


def test_svg_chart_handles_empty_data_and_bars():
    empty = dashboard.svg_chart(pd.DataFrame({"ds": [], "v": []}), "ds", "v", title="Nothing")
    assert "no data for these filters" in empty
    bars = dashboard.svg_chart(pd.DataFrame({"c": ["a", "b"], "v": [-1.5, 2.0]}), "c", "v", kind="bar")
    assert bars.count("<rect") == 2


def test_app_charts_of_one_day_show_days_and_tables_show_yes_no():
    """A one-day filter: the chart's axis spans the day and its neighbours (not milliseconds around it), lines
    get markers, bars are a day wide; a later multi-day chart drawn into the same figure autoranges again.
    Table cells of typed pages (numpy scalars) read yes/no and formatted numbers."""
    from priceintel.apps import charts as app_charts
    from priceintel.apps import widgets as app_widgets

    day = pd.Timestamp("2026-07-28")
    alerts = pd.DataFrame({"ds": [day, day], "series": ["critical", "info"], "n": [8, 2]})
    fig = app_charts.view_figure("alerts", alerts)
    assert tuple(fig.layout.xaxis.range) == ("2026-07-27", "2026-07-29") and fig.layout.xaxis.dtick == 86_400_000
    assert all(t.width == 0.8 * 86_400_000 for t in fig.data)
    prices = pd.DataFrame({"ds": [day, day], "series": ["amazon", "ours"], "mean_price": [14.0, 15.0],
                           "mean_gap_pct": [-6.7, 0.0], "n": [1, 1]})
    assert {t.mode for t in app_charts.view_figure("prices", prices).data} == {"lines+markers"}
    wider = app_charts.view_figure("alerts", alerts.assign(ds=[day - timedelta(days=9), day]))
    fig.update_layout(wider.layout.to_plotly_json())  # how DashboardPanel._draw updates its chart
    assert fig.layout.xaxis.autorange is True and fig.layout.xaxis.tickmode == "auto"
    page = pd.DataFrame({"in_stock": pd.array([True, False], dtype="boolean"),
                         "n": pd.array([1234, 5], dtype="Int64")})
    cells = app_widgets.frame_html(page)
    assert "<td>yes</td>" in cells and "<td>no</td>" in cells and '<td class="num">1,234</td>' in cells


def test_migration_0007_downgrades_and_upgrades(pg_server_url):
    from priceintel.db.engine import (
        create_database,
        dispose_engines,
        drop_database,
        get_engine,
    )
    from priceintel.db.migrate import downgrade, upgrade

    name = f"priceintel_mig7_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        objects = "SELECT count(*) FROM pg_class WHERE relname IN ('mv_app_prices', 'v_app_alerts', 'elasticity_run')"
        with get_engine(url).connect() as conn:
            assert conn.execute(sa.text(objects)).scalar() == 3
        downgrade(url, "0006")
        with get_engine(url).connect() as conn:
            assert conn.execute(sa.text(objects)).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM pg_class WHERE relname = 'fact_price'")).scalar() == 1
        upgrade(url)
        eng = get_engine(url)
        dashboard.refresh(eng)
        assert dashboard.summary(eng, "prices", dashboard.Filters())["rows"] == 0
        assert dashboard.page(eng, "prices", dashboard.Filters()).rows.empty
    finally:
        dispose_engines()
        drop_database(pg_server_url, name)


@pytest.mark.slow
def test_the_pipeline_fills_the_app_views(pipeline_env, on_pipeline_db):
    """The load stage refreshes the views; the model stage stores elasticities and recommendations."""
    from priceintel.db.engine import get_engine

    eng = get_engine(on_pipeline_db)
    with eng.connect() as conn:
        refreshed = {r[0] for r in conn.execute(sa.text("SELECT name FROM app_refresh"))}
        n_products = conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar()
        n_matched = conn.execute(sa.text("""
            SELECT count(*) FROM fact_price fp JOIN product_match pm ON pm.listing_id = fp.listing_id
            WHERE pm.status IN ('auto', 'confirmed')""")).scalar()
        fc_run = conn.execute(sa.text("SELECT max(run_id) FROM forecast_run")).scalar()
        el_runs = conn.execute(sa.text("SELECT count(*) FROM elasticity_run")).scalar()
    assert refreshed == set(dashboard.APP_VIEWS)
    assert dashboard.summary(eng, "prices", dashboard.Filters())["rows"] == n_matched > 0
    assert dashboard.summary(eng, "forecasts", dashboard.Filters())["run_id"] == fc_run
    assert el_runs >= 1
    el = dashboard.page(eng, "elasticity", dashboard.Filters(), limit=1000).rows
    assert len(el) == n_products
    assert el["recommended_price"].notna().sum() >= 1 and el["reason"].notna().all()


def test_cli_db_refresh_refreshes_the_app_views(dash_db, monkeypatch, capsys):
    from priceintel import cli

    monkeypatch.setenv("DATABASE_URL", dash_db["url"])
    key = dashboard.load_key(dash_db["engine"])
    assert cli.main(["db", "refresh"]) == 0
    out = capsys.readouterr().out
    assert "app views refreshed in" in out and "mv_app_prices" in out
    assert dashboard.load_key(dash_db["engine"]) != key
