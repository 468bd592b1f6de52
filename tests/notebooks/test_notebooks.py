"""The data scientists' notebooks run under papermill with parameters, against a real database, with the command
docs/notebooks.md gives: `jupytext --to ipynb --set-kernel python3 -o - NOTEBOOK | papermill - OUT -p NAME VALUE`.

* `00-your-data.py` top to bottom on a fresh database: example files imported (one rejected row each), one
  watched page previewed, the pipeline run once on the live source, the latest prices and the watch health shown;
* the forecast and evaluate task notebooks alone after the small pipeline run (`pipeline_env`): papermill's
  values win over env.yaml, the products land at the declared paths, the forecast is stored in the database;
* `priceintel.pipeline.standalone` itself: papermill's parameters read back, upstream products from the database.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import sqlalchemy as sa

from priceintel import config
from priceintel.pipeline import standalone

NOTEBOOKS = config.PROJ_ROOT / "notebooks"
BIN = Path(sys.executable).parent
#: seconds a notebook cell may take (papermill --execution-timeout), and a whole notebook
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 300, 420


def run_alone(notebook: str, out: Path, env: dict, **params) -> nbformat.NotebookNode:
    """The documented command: the percent .py converted by jupytext and piped into papermill with `-p` values;
    returns the executed notebook (the test fails with papermill's output when a cell fails)."""
    args = " ".join(f"-p {shlex.quote(k)} {shlex.quote(str(v))}" for k, v in params.items())
    cmd = (
        f"set -o pipefail; {BIN}/jupytext --to ipynb --set-kernel python3 -o - {shlex.quote(str(NOTEBOOKS / notebook))}"
        f" | {BIN}/papermill - {shlex.quote(str(out))} --execution-timeout {CELL_TIMEOUT} {args}"
    )
    proc = subprocess.run(
        ["bash", "-c", cmd], env=env, cwd=config.PROJ_ROOT, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT
    )
    assert proc.returncode == 0, f"{notebook} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
    return nbformat.read(out, as_version=4)


def kernel_env(database_url: str, data_dir: Path, reports_dir: Path) -> dict:
    """The environment papermill (and so its kernel, and the pipeline's task kernels) runs in."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        PRICEINTEL_DATA_DIR=str(data_dir),
        PRICEINTEL_REPORTS_DIR=str(reports_dir),
        NO_PROXY="127.0.0.1,localhost,::1",
        OMP_NUM_THREADS="1",
    )
    for name in ("COV_CORE_SOURCE", "COV_CORE_CONFIG", "COV_CORE_DATAFILE", "PRICEINTEL_SHOPS"):
        env.pop(name, None)
    return env


def cell_text(nb: nbformat.NotebookNode, starts: str) -> str:
    """Everything the code cell whose source starts with `starts` printed or displayed (plain text and HTML)."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts))
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append("\n" + out["data"].get("text/plain", "") + "\n" + out["data"].get("text/html", "") + "\n")
    return "".join(parts)


@pytest.fixture()
def fresh_db(pg_server_url):
    """A fresh, empty database of its own: (url, engine)."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database

    name = f"priceintel_nb_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()
    dispose_engines()
    drop_database(pg_server_url, name)


# --- 00-your-data: files -> first live run -> prices, health, apps ----------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT + 60)
def test_your_data_walkthrough_runs_top_to_bottom(fresh_db, tmp_path):
    url, engine = fresh_db
    examples = tmp_path / "examples"
    env = kernel_env(url, tmp_path / "data", tmp_path / "reports")
    nb = run_alone("00-your-data.py", tmp_path / "00-your-data.ipynb", env, example_folder=examples, example_pages=8)

    catalogue = pd.read_csv(examples / "catalogue.csv", dtype=str)
    watch = pd.read_csv(examples / "watch.csv", dtype=str)
    sales = pd.read_csv(examples / "sales.csv", dtype=str)
    with engine.connect() as conn:
        count = lambda table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: E731
        products, watches, sold = count("dim_product"), count("watch"), count("fact_sales")
        prices, fetches = count("fact_price"), count("watch_fetch")
        runs = conn.execute(sa.text("SELECT task, status FROM pipeline_run WHERE task = 'pipeline'")).all()
        imports = conn.execute(sa.text("SELECT kind, status FROM import_run ORDER BY import_run_id")).all()
    # every example file has exactly one bad row: the rest is in the database, the bad row is reported
    assert products == len(catalogue) - 1 and watches == len(watch) - 1 and sold == len(sales) - 1
    assert [tuple(r) for r in imports] == [("catalog", "partial"), ("sales", "partial"), ("watch", "partial")]
    assert "1 rejected" in cell_text(nb, "from priceintel.ingest import import_catalog")
    assert "missing title" in cell_text(nb, "from priceintel.ingest import import_catalog")
    assert "malformed URL" in cell_text(nb, "from priceintel.ingest import import_watches")
    assert "outcome ok" in cell_text(nb, "from priceintel.apps.onboarding import preview_url")
    # the live run fetched every watched page once and stored a price for each page that has one
    assert runs == [("pipeline", "success")]
    assert json.loads((tmp_path / "reports" / "last_run.json").read_text())["status"] == "success"
    latest = pd.read_sql(
        "SELECT w.url, fp.price::float8 AS price FROM watch w JOIN dim_listing l ON l.url = w.url "
        "JOIN fact_price fp USING (listing_id)",
        engine,
    )
    statuses = pd.read_sql("SELECT status, count(*) AS n FROM watch GROUP BY status", engine)
    assert fetches == watches and prices == len(latest) >= watches - 1 > 0
    shown = cell_text(nb, "from priceintel.db import queries")
    assert f"{len(latest)} of {watches} watched pages have a stored price" in shown
    for price in latest["price"]:
        assert f"{price:.2f}" in shown
    health = cell_text(nb, "from priceintel.apps.onboarding import status_counts")
    assert dict(zip(statuses["status"], statuses["n"], strict=True)).get("ok") == len(latest)
    assert all(status in health for status in statuses["status"])
    assert "onboarding.ipynb" in cell_text(nb, "from priceintel.apps.landing import APPS")


# --- stage notebooks alone, after the small pipeline run -----------------------------------------------------------


@pytest.fixture()
def pipeline_copy(pipeline_env, tmp_path):
    """The small pipeline run's data folder copied (the notebooks run alone write their products there) and an
    empty reports folder."""
    data = tmp_path / "data"
    shutil.copytree(pipeline_env["data_dir"], data, ignore=shutil.ignore_patterns("*.lock"))
    return data, tmp_path / "reports"


@pytest.mark.slow
@pytest.mark.timeout(2 * NOTEBOOK_TIMEOUT)
def test_forecast_and_evaluate_notebooks_run_alone(pipeline_copy, pipeline_db, pipeline_env, tmp_path):
    data, reports = pipeline_copy
    env = kernel_env(pipeline_db, data, reports)
    engine = sa.create_engine(pipeline_db)
    try:
        before = pd.read_sql("SELECT max(run_id) AS run_id FROM forecast_run", engine)["run_id"].iloc[0]
        # env.yaml says horizon 14 and prophet_series 12 (14 days cannot be backtested on 28): papermill's values win
        nb = run_alone("05-forecast.py", tmp_path / "05.ipynb", env, horizon=7, prophet_series=1)
        run = pd.read_sql("SELECT run_id, horizon, name FROM forecast_run ORDER BY run_id DESC LIMIT 1", engine)
    finally:
        engine.dispose()
    assert int(run["run_id"].iloc[0]) > int(before) and int(run["horizon"].iloc[0]) == 7
    assert f"forecast run {int(run['run_id'].iloc[0])}" in cell_text(nb, 'print("forecast run"')
    metrics = pd.read_csv(data / "interim" / "forecast_metrics.csv")  # the declared product, under the env's data_dir
    assert set(metrics["scope"]) == {"all series", "prophet subset (1 series)"}

    run_alone("07-evaluate.py", tmp_path / "07.ipynb", env)
    summary = json.loads((reports / "summary.json").read_text())
    ran = json.loads((Path(pipeline_env["reports_dir"]) / "summary.json").read_text())
    assert summary["scrape"] == ran["scrape"] and summary["match"] == ran["match"] and summary["load"] == ran["load"]
    assert summary["forecast"]["best_model"] and summary["forecast"]["best_baseline_mae"] > 0
    assert "prophet subset (1 series)" in {row["scope"] for row in summary["forecast"]["overall"]}


@pytest.mark.slow
def test_missing_model_products_come_from_the_database(pipeline_env, on_pipeline_db, tmp_path, monkeypatch):
    """The receipt, forecast metrics and elasticities of a run, written from the database when their files are
    missing, say what the files said; a missing scrape product is an error naming it."""
    from priceintel.db.engine import get_engine
    from priceintel.pipeline import lab

    monkeypatch.setenv("PRICEINTEL_DATA_DIR", pipeline_env["data_dir"])
    monkeypatch.setenv("PRICEINTEL_REPORTS_DIR", pipeline_env["reports_dir"])
    upstream = lab.task_inputs("evaluate", {"product": None})["upstream"]
    interim = Path(pipeline_env["data_dir"]) / "interim"
    assert upstream["load"]["receipt"] == str(interim / "load_receipt.json")
    gone = dict(
        upstream,
        load={"receipt": str(tmp_path / "none.json")},
        forecast={"forecast_metrics": str(tmp_path / "none.csv")},
        elasticity={"elasticity": str(tmp_path / "none2.csv")},
    )
    filled = standalone.fill_from_database(gone, get_engine(), tmp_path / "db")
    assert filled["scrape"] == upstream["scrape"]  # on disk: left alone
    receipt = json.loads(Path(filled["load"]["receipt"]).read_text())
    file_receipt = json.loads((interim / "load_receipt.json").read_text())
    newest = pd.read_sql("SELECT max(run_id) AS r FROM pipeline_run WHERE task = 'load' AND status = 'success'",
                         get_engine())["r"].iloc[0]
    # the newest successful load's receipt: the run's own, unless another test reloaded the same day since
    assert receipt["run_id"] == newest >= file_receipt["run_id"]
    if receipt["run_id"] == file_receipt["run_id"]:
        assert receipt["loaded"] == file_receipt["loaded"]
    file_metrics = pd.read_csv(interim / "forecast_metrics.csv")
    db_metrics = pd.read_csv(filled["forecast"]["forecast_metrics"])
    overall = lambda m: m[(m["unique_id"] == "__all__") & (m["scope"] == "all series")].set_index("model")["mae"]  # noqa: E731
    pd.testing.assert_series_equal(
        overall(db_metrics).sort_index(), overall(file_metrics).sort_index(), check_exact=False, rtol=1e-9
    )
    db_el = pd.read_csv(filled["elasticity"]["elasticity"], dtype={"sku": str}).set_index("sku")
    file_el = pd.read_csv(interim / "elasticity.csv", dtype={"sku": str}).set_index("sku")
    pd.testing.assert_series_equal(db_el["elasticity"], file_el.loc[db_el.index, "elasticity"], rtol=1e-9)
    with pytest.raises(standalone.StandaloneError, match=r"upstream product scrape\.offers not found"):
        standalone.fill_from_database(dict(gone, scrape={"offers": str(tmp_path / "x.parquet")}), get_engine())


# --- the helpers (fast) ------------------------------------------------------------------------------------------


def test_papermill_parameters_are_read_back_from_the_input_history():
    ns = {
        "In": ["", "upstream = None\nhorizon = 14\n", '# Parameters\nhorizon = 7\nenv_file = "env.test.yaml"\n'],
        "horizon": 7,
        "env_file": "env.test.yaml",
        "upstream": None,
    }
    assert standalone.papermill_parameters(ns) == {"horizon": 7, "env_file": "env.test.yaml"}
    assert standalone.papermill_parameters({"In": ["horizon = 7"], "horizon": 7}) == {}
    assert standalone.papermill_parameters({}) == {}


def test_task_inputs_keeps_papermill_values_and_leaves_ploomber_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PRICEINTEL_REPORTS_DIR", str(tmp_path / "reports"))
    ns = {
        "In": ["# Parameters\nprophet_series = 0\n"],
        "upstream": ["load"],
        "product": None,
        "horizon": 14,
        "prophet_series": 0,
    }
    (tmp_path / "data" / "interim").mkdir(parents=True)
    (tmp_path / "data" / "interim" / "load_receipt.json").write_text('{"run_id": 1}')
    values = standalone.task_inputs("forecast", ns)
    assert ns["prophet_series"] == 0 and ns["horizon"] == 14  # papermill's value kept, the env's for the rest
    assert ns["product"]["forecasts"] == str(tmp_path / "data" / "interim" / "forecasts.parquet")
    assert ns["upstream"] == {
        "load": {
            "nb": str(tmp_path / "reports" / "04-load.html"),
            "receipt": str(tmp_path / "data" / "interim" / "load_receipt.json"),
        }
    }
    assert values["prophet_series"] == 0
    injected = {"product": {"nb": "x.html"}, "upstream": {"load": {}}, "horizon": 3}
    assert standalone.task_inputs("forecast", injected) is None and injected["horizon"] == 3
    env_file = {
        "In": ["# Parameters\nenv_file = 'env.test.yaml'\n"],
        "env_file": str(config.PROJ_ROOT / "env.test.yaml"),
        "product": None,
    }
    assert standalone.task_inputs("world", env_file)["n_products"] == 10  # env.test.yaml's, not env.yaml's 50


def test_example_inputs_without_saved_pages_use_the_demo_storefronts(tmp_path):
    import requests
    import yaml

    ex = standalone.example_inputs(tmp_path, n_pages=3, sales_days=5, pages_dir=tmp_path / "no-pages")
    try:
        shops = yaml.safe_load(ex.shops.read_text())["shops"]
        watch = pd.read_csv(ex.watch_list, dtype=str)
        assert set(shops) == {"amazon", "walmart", "target"}
        assert watch["url"].iloc[-1] == "htp:/not-a-url"  # the bad row
        assert requests.get(ex.preview, timeout=10).status_code == 200
        sales = pd.read_csv(ex.sales)
        assert sales["date"].nunique() == 5 and sales["sku"].iloc[-1] == "NOT-OURS"
        assert pd.read_csv(ex.catalogue)["sku"].iloc[-1] == "OUR-BAD"
    finally:
        ex.stop()
