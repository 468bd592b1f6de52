"""The whole pipeline on a small demo world, against real PostgreSQL and real loopback storefronts."""

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from priceintel import cli
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline
from priceintel.db import engine as db_engine
from priceintel.db import queries

pytestmark = pytest.mark.slow

STAGES = ["00-world", "01-scrape", "02-clean", "03-match", "04-load", "04b-dbt", "05-forecast", "06-elasticity",
          "07-evaluate"]


def _upstream(env):
    d = Path(env["data_dir"]) / "interim"
    world = Path(env["data_dir"]) / "demo" / "world"
    return {
        "world": {"world": world, "catalogue": world / "products.csv", "sales": world / "sales.csv"},
        "scrape": {"offers": d / "offers.parquet", "errors": d / "scrape_errors.csv"},
        "clean": {"observations": d / "observations.parquet", "listings": d / "listings.parquet",
                  "errors": d / "clean_errors.csv"},
        "match": {"matches": d / "matches.parquet", "metrics": d / "match_metrics.json"},
        "load": {"receipt": d / "load_receipt.json"},
        "forecast": {"forecasts": d / "forecasts.parquet", "forecast_metrics": d / "forecast_metrics.csv"},
        "elasticity": {"elasticity": d / "elasticity.csv"},
    }


def test_every_stage_rendered_to_html(pipeline_env):
    reports = Path(pipeline_env["reports_dir"])
    for stage in STAGES:
        page = reports / f"{stage}.html"
        assert page.exists(), f"missing report {page}"
        body = page.read_text()
        assert "Traceback" not in body and len(body) > 10_000


def test_dbt_docs_of_the_run_show_every_node_compiled(pipeline_env):
    """The dbt task renders the docs without compiling again (`docs(compile_sql=False)`): the build's manifest
    must hold every model's and data test's compiled SQL."""
    import json

    manifest = json.loads((Path(pipeline_env["reports_dir"]) / "dbt-docs" / "manifest.json").read_text())
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "test")]
    assert {n["resource_type"] for n in nodes} == {"model", "test"}
    assert [n["unique_id"] for n in nodes if not (n.get("compiled_code") or "").strip()] == []


def test_database_holds_every_product_retailer_and_day(pipeline_env, on_pipeline_db):
    eng = db_engine.get_engine()
    n_products, days = int(pipeline_env["n_products"]), int(pipeline_env["days"])
    with eng.connect() as c:
        assert c.execute(text("select count(*) from dim_product")).scalar() == n_products
        assert c.execute(text("select count(*) from dim_retailer")).scalar() == 3
        per = c.execute(text("""
            select count(*) from (
              select m.product_id, l.retailer_id, count(distinct f.date_key) as n
              from fact_price f join product_match m using (listing_id) join dim_listing l using (listing_id)
              where m.status = 'auto' group by 1, 2) t where n = :days"""), {"days": days}).scalar()
        # nearly every (product, retailer) pair matched and observed on every day
        assert per >= 0.9 * n_products * 3
        assert c.execute(text("select count(*) from fact_sales")).scalar() == n_products * days
        assert c.execute(text("select count(*) from pipeline_run")).scalar() >= 1


def test_summary_scores_every_stage(pipeline_env):
    summary = json.loads((Path(pipeline_env["reports_dir"]) / "summary.json").read_text())
    assert summary["match"]["f1"] >= 0.9
    assert summary["scrape"]["pages"] >= int(pipeline_env["n_products"]) * 3 * int(pipeline_env["days"])
    models = {row["model"] for row in summary["forecast"]["overall"]}
    assert {"naive", "seasonal_naive", "prophet"} <= models
    assert summary["elasticity"]["products"] == int(pipeline_env["n_products"])
    assert summary["elasticity"]["mae_vs_truth"] < 1.0
    assert summary["elasticity"]["pooled_mae_vs_truth"] < 1.0 and summary["elasticity"]["cross_mae_vs_truth"] < 1.0


def test_reloading_the_same_day_changes_nothing(pipeline_env, on_pipeline_db):
    eng = db_engine.get_engine()
    before = queries.table_counts(eng)
    receipt = pipeline.load_stage(_upstream(pipeline_env), pipeline_env["data_dir"])
    after = queries.table_counts(eng)
    for table in ("dim_product", "dim_listing", "fact_price", "fact_sales", "product_match"):
        assert after[table] == before[table], table
    for name in ("products", "listings", "prices", "sales"):
        assert receipt["loaded"][name]["inserted"] == 0, name
        assert receipt["loaded"][name]["updated"] == 0, name


def test_bad_parameter_is_a_clear_error_and_recorded(pipeline_env, on_pipeline_db, tmp_path, capsys):
    code = cli.main(["run", "--env-file", str(Path(cli.config.PROJ_ROOT) / "env.test.yaml"),
                     "--set", f"data_dir={tmp_path / 'data'}", "--set", f"reports_dir={tmp_path / 'reports'}",
                     "--set", "days=0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "days=0" in err and "Traceback" not in err
    outcome = json.loads((tmp_path / "reports" / "last_run.json").read_text())
    assert outcome["status"] == "failed" and "days=0" in outcome["error"]
    with db_engine.get_engine().connect() as c:
        row = c.execute(text("select status, errors::text from pipeline_run order by run_id desc limit 1")).one()
    assert row[0] == "failed" and "days=0" in row[1]


def test_unknown_setting_is_refused(capsys):
    assert cli.main(["run", "--set", "dayz=3"]) == 2
    assert "unknown pipeline setting" in capsys.readouterr().err


def test_unknown_retailer_is_reported_and_skipped():
    known, unknown = pipeline.parse_retailers("amazon, Foo ,target")
    assert known == ["amazon", "target"] and unknown == ["foo"]
    with pytest.raises(pipeline.ParameterError, match="retailers"):
        pipeline.validate_params(data_dir=".", seed=1, n_products=5, days=5, world_start="2026-07-01",
                                 retailers="foo")
    with pytest.raises(pipeline.ParameterError, match="world_start"):
        pipeline.validate_params(data_dir=".", seed=1, n_products=5, days=5, world_start="July",
                                 retailers="amazon")
    with pytest.raises(pipeline.ParameterError, match="n_products='x' is not an integer"):
        pipeline.validate_params(data_dir=".", seed=1, n_products="x", days=5, world_start="2026-07-01",
                                 retailers="amazon")


def test_summary_command_prints_where_results_are(pipeline_env, on_pipeline_db, capsys):
    env_file = Path(pipeline_env["reports_dir"]).parent / "env.yaml"
    env_file.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in pipeline_env.items()))
    assert cli.main(["summary", "--env-file", str(env_file)]) == 0
    out = capsys.readouterr().out
    assert "summary.json" in out and "matching F1" in out
    assert "'fact_price': " in out and "'fact_sales': 280" in out
    assert "make api  ->  http://127.0.0.1:8000/docs" in out  # one line for the REST API


def test_json_helpers_turn_nan_into_null(tmp_path):
    path = pipeline.save_json({"a": float("nan"), "b": pd.DataFrame({"x": [1]})}, tmp_path / "x.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [{"x": 1}]}


def test_stages_in_process(pipeline_env, on_pipeline_db, tmp_path):
    """The stage functions the notebooks call, run in this process on the pipeline's data."""
    result = pipeline.forecast_stage(horizon=7, prophet_series=1)
    overall = result["overall"]
    assert {"naive", "seasonal_naive", "window_average", "auto_ets", "prophet"} <= set(overall["model"])
    el = pipeline.elasticity_stage()
    assert (el["elasticity"]["n"] > 0).all() and el["elasticity_run_id"] > 0
    fig = report.plot_forecast_example(result)
    assert fig is not None and fig.axes[0].get_title().startswith("Held-out forecast")
    summary = pipeline.evaluate_stage(_upstream(pipeline_env))
    assert summary["forecast"]["best_baseline"] in ("naive", "seasonal_naive")
    assert summary["clean"]["observations"] > 0

    params = pipeline.validate_params(data_dir=tmp_path, seed=3, n_products=3, days=2, world_start="2026-07-01",
                                      retailers="amazon,nosuchshop", product_limit=2)
    offers, errors, fetches = pipeline.scrape_stage(params)
    assert fetches.empty  # the demo source watches no pages
    assert set(offers["retailer"]) == {"amazon"} and len(offers) == 2 * 2
    assert list(errors["kind"]) == ["unknown_retailer"]
    table = pipeline.scrape_summary(offers, errors)
    assert table.loc["amazon", "pages"] == 4
    assert any((tmp_path / "raw").rglob("*.gz"))
