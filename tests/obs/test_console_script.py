"""The `priceintel` console script of an unattended command (`priceintel task`, as each Airflow task and the
container's scheduler run it): JSON logs on stderr and in the day's file with the service and the task, and the
task counted in the installation's metrics directory, in a real child process."""

import json
import os
import subprocess
import sys
from pathlib import Path

from _obs_util import total
from priceintel import config
from priceintel.obs import metrics

BIN = Path(sys.executable).parent


def test_an_unattended_command_logs_json_with_its_ids_and_counts_its_task(pg_url, tmp_path):
    env = {**os.environ, "PRICEINTEL_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": pg_url,
           "PRICEINTEL_REPORTS_DIR": str(tmp_path / "reports"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    for name in ("PRICEINTEL_LOG_FORMAT", "PRICEINTEL_LOG_LEVEL", "PRICEINTEL_LOG_PARENT", "PRICEINTEL_TASK"):
        env.pop(name, None)
    res = subprocess.run([str(BIN / "priceintel"), "task", "world", "--env-file", str(config.PROJ_ROOT / "env.test.yaml")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "task world done" in res.stdout
    stderr = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert stderr and all(rec["service"] == "pipeline" for rec in stderr)  # not a terminal: JSON lines
    (daily,) = (tmp_path / "data" / "logs").glob("*.jsonl")
    lines = [json.loads(line) for line in daily.read_text().splitlines()]
    done = [rec for rec in lines if rec["message"].startswith("task world executed")]
    assert len(done) == 1 and done[0]["task"] == "world" and done[0]["rows"]["catalogue"] > 0
    text = metrics.render(tmp_path / "metrics")[0].decode()
    assert total(text, "priceintel_pipeline_tasks_total", task="world", status="executed") == 1
    assert total(text, "priceintel_pipeline_task_rows", task="world", product="catalogue") == done[0]["rows"]["catalogue"]
