"""The `priceintel` console script of unattended commands (`priceintel task`, as each task of the exported Airflow
DAG runs: world, then scrape on top of it), in real child processes: JSON logs on stderr and in the day's file with the
service and the task, and GET /metrics of a real API server showing the scrape task's fetches WHILE the task runs
(the task process's samples reach the API through the shared metrics directory), then its duration and rows."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from _obs_util import total

from _api_server import serve
from priceintel import config
from priceintel.api.app import create_app

BIN = Path(sys.executable).parent
ENV_FILE = str(config.PROJ_ROOT / "env.test.yaml")


def _task(name: str, tmp_path: Path) -> list[str]:
    """`priceintel task NAME` on the small test world, its products under tmp_path."""
    return [str(BIN / "priceintel"), "task", name, "--env-file", ENV_FILE, "--set", f"data_dir={tmp_path / 'data'}",
            "--set", f"reports_dir={tmp_path / 'reports'}"]


def _env(tmp_path: Path, pg_url: str, metrics_dir: Path) -> dict:
    env = {**os.environ, "PRICEINTEL_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": pg_url,
           "PRICEINTEL_REPORTS_DIR": str(tmp_path / "reports"), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    for name in ("PRICEINTEL_LOG_FORMAT", "PRICEINTEL_LOG_LEVEL", "PRICEINTEL_LOG_PARENT", "PRICEINTEL_TASK"):
        env.pop(name, None)
    return env


def test_unattended_commands_log_json_with_their_ids_and_metrics_show_a_task_while_it_runs(
    pg_url, tmp_path, metrics_dir
):
    env = _env(tmp_path, pg_url, metrics_dir)
    res = subprocess.run(_task("world", tmp_path), env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "task world done" in res.stdout
    stderr = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert stderr and all(rec["service"] == "pipeline" for rec in stderr)  # not a terminal: JSON lines
    (daily,) = (tmp_path / "data" / "logs").glob("*.jsonl")
    lines = [json.loads(line) for line in daily.read_text().splitlines()]
    done = [rec for rec in lines if rec["message"].startswith("task world executed")]
    assert len(done) == 1 and done[0]["task"] == "world" and done[0]["rows"]["catalogue"] > 0

    app = create_app(pg_url, config.ApiSettings(secret="c" * 32))
    with serve(app) as base:
        text = requests.get(f"{base}/metrics", timeout=30).text
        assert total(text, "priceintel_pipeline_tasks_total", task="world", status="executed") == 1
        assert total(text, "priceintel_pipeline_task_rows", task="world", product="catalogue") == done[0]["rows"][
            "catalogue"]
        scrape = subprocess.Popen(_task("scrape", tmp_path), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        seen_during = 0.0
        try:
            while scrape.poll() is None:  # scraped while the task's process fetches
                text = requests.get(f"{base}/metrics", timeout=30).text
                pages = total(text, "priceintel_fetch_pages_total")
                if pages and scrape.poll() is None:
                    seen_during = pages
                    break
                time.sleep(0.2)
            out, err = scrape.communicate(timeout=300)
        finally:
            scrape.kill()
        assert scrape.returncode == 0, err[-2000:]
        assert seen_during > 0, "GET /metrics showed no fetch while the scrape task ran"
        text = requests.get(f"{base}/metrics", timeout=30).text
    assert total(text, "priceintel_fetch_pages_total") >= seen_during
    assert {"amazon", "walmart", "target"} <= {s for s in ("amazon", "walmart", "target")
                                               if total(text, "priceintel_fetch_pages_total", shop=s) > 0}
    assert total(text, "priceintel_pipeline_task_duration_seconds_count", task="scrape") == 1
    assert total(text, "priceintel_pipeline_task_rows", task="scrape", product="offers") > 0
    assert total(text, "priceintel_api_requests_total", route="/metrics", status="200") >= 2
