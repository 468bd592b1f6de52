"""GET /metrics over the session's demo pipeline run (`pipeline_env`, run once per test run and shared): the
fetches counted by the scrape task, the task durations and rows counted by the run, and the API's requests,
all in one exposition served by a real uvicorn server."""

import socket

import pandas as pd
import requests
from _obs_util import label_values, total

from _api_server import serve
from priceintel import config
from priceintel.api.app import create_app
from priceintel.obs import metrics
from priceintel.scrape.fetch import Fetcher
from priceintel.scrape.results import ERROR_KINDS

TASKS = {"world", "scrape", "clean", "match", "load", "dbt", "forecast", "elasticity", "evaluate"}


def test_metrics_of_a_demo_run(pipeline_env, pipeline_db, tmp_path):
    # the demo's shops answer without faults (env.test.yaml), so the run records no fetch error: one real failed
    # fetch (a closed port) is added here, so the exposition shows that series beside the run's
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with Fetcher(retries=0, obey_robots=False, allow=[closed]) as fetcher:
        assert fetcher.get(f"{closed}/p/1", meta={"retailer": "amazon"}).error_kind == "unreachable"

    app = create_app(pipeline_db, config.ApiSettings(secret="o" * 32))
    with serve(app) as base:
        assert requests.get(f"{base}/health", timeout=10).status_code == 200
        assert requests.get(f"{base}/v1/products", timeout=10).status_code == 401
        text = requests.get(f"{base}/metrics", timeout=30).text

    # fetching: pages by shop and outcome, errors by kind, exchange times. The fetches are counted where they
    # happen: the scrape task's notebook ran in this process (`pipeline.engine`), not in a kernel of its own
    assert {"amazon", "walmart", "target"} <= label_values(text, "priceintel_fetch_pages_total", "shop")
    assert total(text, "priceintel_fetch_pages_total", shop="amazon", outcome="ok") > 0
    assert total(text, "priceintel_fetch_duration_seconds_count", shop="target") > 0
    offers = pd.read_parquet(f"{pipeline_env['data_dir']}/interim/offers.parquet")
    answered = sum(total(text, "priceintel_fetch_pages_total", outcome=o) for o in ("ok", "not_modified"))
    assert answered >= len(offers) > 0  # later days' pages mostly come back 304 (conditional requests)
    errors = pd.read_csv(f"{pipeline_env['data_dir']}/interim/scrape_errors.csv", dtype=str)
    fetch_errors = errors[errors["kind"].isin(ERROR_KINDS)]
    assert total(text, "priceintel_fetch_errors_total") >= len(fetch_errors)
    assert label_values(text, "priceintel_fetch_errors_total", "kind") <= set(ERROR_KINDS)
    assert total(text, "priceintel_fetch_errors_total", shop="amazon", kind="unreachable") >= 1
    assert total(text, "priceintel_fetch_duration_seconds_count") >= len(offers)
    # the pipeline: every task's duration and status, the rows of its products, the run
    for task in TASKS:
        assert total(text, "priceintel_pipeline_task_duration_seconds_count", task=task) >= 1, task
        assert total(text, "priceintel_pipeline_tasks_total", task=task, status="executed") >= 1, task
    assert total(text, "priceintel_pipeline_task_rows", task="scrape", product="offers") > 0
    assert total(text, "priceintel_pipeline_task_rows", task="clean", product="observations") > 0
    # the load's rows per table (a later re-run of the load by another test stages nothing new: the watermark)
    assert "prices" in label_values(text, "priceintel_pipeline_task_rows", "product")
    assert total(text, "priceintel_pipeline_runs_total", status="success") >= 1
    # the API
    assert total(text, "priceintel_api_requests_total", method="GET", route="/health", status="200") >= 1
    assert total(text, "priceintel_api_requests_total", route="/v1/products", status="401") >= 1
