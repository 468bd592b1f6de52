"""The exported DAG imported by Airflow itself: `make airflow-venv` puts Apache Airflow in .venv-airflow (never in
.venv), and a subprocess of its Python loads the DAG file with Airflow's DagBag, offline, in a scratch
AIRFLOW_HOME: no import error, the tasks and edges of pipeline.yaml plus one shard task per shop before the
merging `scrape`, the run key rendered from the run id. Skipped, with the reason, when Airflow cannot be
installed (no package index)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from priceintel import cli, config
from priceintel.pipeline import schedule

pytestmark = pytest.mark.slow

VENV = config.PROJ_ROOT / ".venv-airflow"
#: run in .venv-airflow: every DAG of the folder -> its tasks (upstream ids, command, environment rendered
#: for a run id) and the import errors
LOAD = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
import airflow

bag = DagBag(dag_folder=sys.argv[1])  # examples: off in the environment (AIRFLOW__CORE__LOAD_EXAMPLES)
out = {"version": airflow.__version__, "errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for task in dag.tasks:
        task.render_template_fields({"run_id": sys.argv[2]})
        tasks[task.task_id] = {"type": type(task).__name__, "upstream": sorted(task.upstream_task_ids),
                               "command": task.bash_command, "env": task.env, "append_env": task.append_env}
    schedule = str(getattr(dag, "schedule", None) or dag.timetable)
    out["dags"][dag_id] = {"tasks": tasks, "schedule": schedule, "max_active_runs": dag.max_active_runs}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_python():
    """.venv-airflow's python, built by `make airflow-venv` when missing (a no-op when it is up to date)."""
    # where Airflow cannot be installed (no package index) the test is skipped with pip's reason, unless
    # PRICEINTEL_REQUIRE_AIRFLOW=1 says it must run (then it fails)
    give_up = pytest.fail if os.environ.get("PRICEINTEL_REQUIRE_AIRFLOW") == "1" else pytest.skip
    try:
        res = subprocess.run(["make", "airflow-venv", f"AIRFLOW_VENV={VENV}"], cwd=config.PROJ_ROOT,
                             capture_output=True, text=True, timeout=1100)  # fmt: skip
    except (subprocess.TimeoutExpired, OSError) as exc:
        give_up(f"Apache Airflow could not be installed (make airflow-venv): {exc}")
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        give_up("Apache Airflow could not be installed (make airflow-venv): " + " | ".join(tail))
    return VENV / "bin" / "python"


@pytest.mark.timeout(1800)
def test_airflow_imports_the_exported_dag_with_a_shard_per_shop(airflow_python, tmp_path):
    dags, home = tmp_path / "dags", tmp_path / "airflow"
    home.mkdir()
    env_file = str(config.PROJ_ROOT / "env.test.yaml")
    assert cli.main(["schedule", "--export-airflow", str(dags / "priceintel_dag.py"), "--cron", "0 * * * *",
                     "--env-file", env_file, "--set", "retailers=amazon,walmart"]) == 0  # fmt: skip
    run_id = "manual__2026-07-01T06:00:00+00:00'\"$(touch pwned)"  # rendered as it is, never parsed by a shell
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               NO_PROXY="*", no_proxy="*", HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9")  # fmt: skip
    res = subprocess.run([str(airflow_python), "-c", LOAD, str(dags), run_id], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    bag = json.loads(res.stdout.strip().splitlines()[-1])
    assert bag["version"] == "3.3.2" and bag["errors"] == {}
    dag = bag["dags"]["priceintel"]
    tasks = dag["tasks"]
    deps = schedule.pipeline_tasks()
    shards = {"scrape_amazon": "amazon", "scrape_walmart": "walmart"}
    assert set(tasks) == set(deps) | set(shards)
    assert all(t["type"] == "BashOperator" for t in tasks.values())
    expected = {name: sorted(ups) for name, ups in deps.items()}
    expected["scrape"] = sorted([*deps["scrape"], *shards])
    expected |= {task_id: sorted(deps["scrape"]) for task_id in shards}
    assert {name: t["upstream"] for name, t in tasks.items()} == expected
    assert {"world", "scrape_amazon", "scrape_walmart"} <= set(tasks["scrape"]["upstream"])
    assert "scrape" in tasks["clean"]["upstream"] and "clean" in tasks["match"]["upstream"]
    assert dag["max_active_runs"] == 1 and "0 * * * *" in dag["schedule"]
    for task_id, shop in shards.items():
        t = tasks[task_id]
        assert t["env"] == {schedule.RUN_KEY_ENV: run_id} and t["append_env"] is True  # rendered from {{ run_id }}
        assert f'task scrape --shard {shop} --run-key="${schedule.RUN_KEY_ENV}" --env-file {env_file}' in t["command"]
    assert 'task scrape --shops amazon,walmart --run-key="$PRICEINTEL_RUN_KEY"' in tasks["scrape"]["command"]
    assert tasks["scrape"]["env"] == {schedule.RUN_KEY_ENV: run_id}
    assert tasks["clean"]["env"] is None and tasks["clean"]["command"].endswith(f"task clean --env-file {env_file}")
