"""Scheduled runs: cron, lock, retries with backoff, run history, kill-and-resume, Airflow export."""

import ast
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from _receivers import HTTPSink

from priceintel import cli, config
from priceintel.pipeline import run
from priceintel.alerts import notify
from priceintel.pipeline import schedule
from priceintel.db import tenancy


def test_cron_expressions():
    start = datetime(2026, 7, 1, 5, 30, tzinfo=timezone.utc)
    assert schedule.next_runs("0 6 * * *", start, 2) == [datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc),
                                                         datetime(2026, 7, 2, 6, 0, tzinfo=timezone.utc)]
    assert schedule.next_runs("0 * * * *", start)[0].hour == 6
    for bad in ("0 6 * *", "61 * * * *", "daily", "0 6 * * * *"):
        with pytest.raises(schedule.ScheduleError, match="not a 5-field cron expression"):
            schedule.next_runs(bad)


def test_lock_prevents_overlapping_runs(tmp_path):
    env = {"data_dir": str(tmp_path), "reports_dir": str(tmp_path / "r")}
    with schedule.RunLock(tmp_path / "schedule.lock"):
        with pytest.raises(schedule.ScheduleError, match=rf"holds the lock .* \(pid {os.getpid()}\)"):
            schedule.run_once(env)
        logs, clock = [], [datetime(2026, 7, 1, 5, 59, 30, tzinfo=timezone.utc)]
        waits = []

        def sleep(s):
            waits.append(s)
            clock[0] = clock[0].replace(hour=6, minute=0, second=1)

        n = schedule.serve("0 6 * * *", env, max_runs=1, log=logs.append, now=lambda: clock[0], sleep=sleep)
        assert n == 1 and waits == [30.0]
        assert logs[0].startswith("next run at 2026-07-01T06:00:00") and "holds the lock" in logs[1]
    with schedule.RunLock(tmp_path / "schedule.lock"):  # released: can be taken again
        pass


def test_the_database_lock_keeps_apart_runs_of_machines_sharing_the_database(pg_engine, tmp_path):
    """Two containers have two lock files but one database: a run elsewhere holds its advisory lock, so this
    one does not start (and marks nothing of the other run interrupted)."""
    env = {"data_dir": str(tmp_path), "reports_dir": str(tmp_path / "r")}
    elsewhere = schedule.DatabaseRunLock(pg_engine).acquire()
    try:
        with tenancy.as_owner(), pg_engine.begin() as conn:
            running = conn.execute(sa.text("INSERT INTO schedule_run (status, pid, host) VALUES ('running', 1, "
                                           "'another-host') RETURNING run_id")).scalar()
        with pytest.raises(schedule.ScheduleError, match="another run holds the database's run lock"):
            schedule.run_once(env)
        with tenancy.as_owner(), pg_engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM schedule_run WHERE run_id = :r"), {"r": running})
            assert status.scalar() == "running"  # the other machine's run is left alone
    finally:
        elsewhere.release()
        with tenancy.as_owner(), pg_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM schedule_run WHERE host = 'another-host'"))
    schedule.DatabaseRunLock(pg_engine).acquire().release()  # released: can be taken again
    with schedule.RunLock(tmp_path / "schedule.lock"):  # and the refused run let go of its file lock
        pass


@pytest.mark.slow
def test_failed_run_is_retried_with_backoff_recorded_and_summarised(pg_engine, tmp_path):
    env = run.build_env(str(config.PROJ_ROOT / "env.test.yaml"),
                        {"data_dir": str(tmp_path / "data"), "reports_dir": str(tmp_path / "reports"), "days": 0})
    waits = []
    with HTTPSink() as hook:
        with pytest.raises(schedule.ScheduleError, match=r"failed after 2 attempt\(s\).*days=0"):
            schedule.run_once(env, retries=1, backoff=7, sleep=waits.append,
                              notifiers={"webhook": notify.WebhookNotifier(hook.url)})
        summary = hook.bodies[-1]
    assert waits == [7]
    assert summary["kind"] == "run" and "FAILED" in summary["title"]
    assert "world: errored (2 attempt(s))" in summary["lines"]  # the first task: it makes the demo world
    with tenancy.scope(run.pipeline_tenant(env)):  # the demo world's tenant
        hist = schedule.history(pg_engine, 1).iloc[0]
    assert hist["status"] == "failed" and "days=0" in hist["error"]
    assert hist["tasks"]["world"] == {"attempts": 2, "status": "errored"}
    assert hist["tasks"]["scrape"]["attempts"] == 0


def _snapshot(url: str) -> dict:
    """Everything the pipeline stores, minus timestamps, run ids and what embeds the shops' ephemeral ports
    (listing URL hosts, page hashes)."""
    queries = {
        "dim_product": "SELECT sku, name, brand, category, gtin, mpn, size, unit_cost, map_price, msrp FROM dim_product",
        "dim_listing": """SELECT r.retailer, l.item_id, regexp_replace(l.url, '^https?://[^/]+', ''), l.title, l.brand, l.gtin, l.mpn, l.first_seen,
                                 l.last_seen FROM dim_listing l JOIN dim_retailer r USING (retailer_id)""",
        "product_match": """SELECT r.retailer, l.item_id, p.sku, m.method, round(m.score::numeric, 4), m.status
                            FROM product_match m JOIN dim_listing l USING (listing_id)
                            JOIN dim_retailer r USING (retailer_id) JOIN dim_product p USING (product_id)""",
        "fact_price": """SELECT r.retailer, l.item_id, f.date_key, f.price, f.list_price, f.currency, f.in_stock,
                                f.promo FROM fact_price f JOIN dim_listing l USING (listing_id)
                         JOIN dim_retailer r USING (retailer_id)""",
        "fact_sales": """SELECT p.sku, s.date_key, s.units, s.revenue, s.price, s.promo FROM fact_sales s
                         JOIN dim_product p USING (product_id)""",
        "alert": "SELECT dedup_key, kind, severity, reason FROM alert",
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return {k: sorted(tuple(r) for r in c.execute(sa.text(q)).all()) for k, q in queries.items()}
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.e2e
def test_killed_run_resumes_to_the_same_database(pipeline_env, pipeline_db, pg_server_url, tmp_path, monkeypatch):
    from priceintel.db.engine import create_database, dispose_engines, drop_database

    name = f"priceintel_sched_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    env_file = str(config.PROJ_ROOT / "env.test.yaml")
    data, reports = tmp_path / "data", tmp_path / "reports"
    cmd = [sys.executable, "-m", "priceintel.cli", "schedule", "--once", "--retries", "0", "--env-file", env_file,
           "--set", f"data_dir={data}", "--set", f"reports_dir={reports}", "--set", "prophet_series=0"]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICEINTEL_SMTP", "PRICEINTEL_ALERT",
                                                                          "PRICEINTEL_SLACK", "COV_"))}
    child_env["DATABASE_URL"] = url
    try:
        proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, cwd=config.PROJ_ROOT)
        receipt = data / "interim" / "load_receipt.json"
        deadline = time.time() + 300
        while not receipt.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # mid-pipeline: load just written, model not yet done
        proc.wait(30)
        assert not (reports / "summary.json").exists()

        monkeypatch.setenv("DATABASE_URL", url)
        env = run.build_env(env_file, {"data_dir": str(data), "reports_dir": str(reports), "prophet_series": 0})
        res = schedule.run_once(env, retries=0, notifiers={})
        assert res["status"] == "success" and res["interrupted_before"] == 1
        assert {res["tasks"][t]["status"] for t in ("scrape", "clean", "match")} == {"skipped"}  # resumed
        assert res["tasks"]["forecast"]["status"] == "executed" and (reports / "summary.json").exists()
        assert res["tasks"]["elasticity"]["status"] == "executed"
        eng = sa.create_engine(url)
        with eng.connect() as c:
            runs = [r[0] for r in c.execute(sa.text("SELECT status FROM schedule_run ORDER BY run_id")).all()]
        eng.dispose()
        assert runs == ["interrupted", "success"]

        killed, reference = _snapshot(url), _snapshot(pipeline_db)
        assert killed["fact_price"] and killed["alert"]
        for table in reference:
            assert killed[table] == reference[table], table
    finally:
        dispose_engines()
        drop_database(pg_server_url, name)


def test_airflow_dag_mirrors_pipeline_yaml(tmp_path):
    out = tmp_path / "dags" / "priceintel_dag.py"
    assert cli.main(["schedule", "--export-airflow", str(out), "--cron", "0 * * * *", "--no-shards",
                     "--env-file", str(config.PROJ_ROOT / "env.test.yaml")]) == 0  # shards: test_shards.py
    tree = ast.parse(out.read_text())
    tasks, edges, dag_kw = {}, set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator":
            kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            tasks[kw["task_id"]] = kw["bash_command"]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG":
            dag_kw = {k.arg: k.value for k in node.keywords}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            edges.add((node.left.id, node.right.id))
    assert list(tasks) == ["world", "scrape", "clean", "match", "load", "dbt", "forecast", "elasticity", "evaluate"]
    assert ast.literal_eval(dag_kw["schedule"]) == "0 * * * *" and ast.literal_eval(dag_kw["max_active_runs"]) == 1
    assert all(f"task {t} --env-file" in cmd and "env.test.yaml" in cmd for t, cmd in tasks.items())
    deps = schedule.pipeline_tasks()
    assert edges == {(u, t) for t, ups in deps.items() for u in ups}
    assert {("world", "scrape"), ("scrape", "clean"), ("clean", "match"), ("match", "load"), ("load", "forecast"),
            ("load", "elasticity"), ("forecast", "evaluate"), ("elasticity", "evaluate"), ("load", "dbt")} <= edges
    with pytest.raises(schedule.ScheduleError, match="unknown task 'nope'"):
        schedule.run_task(run.build_env(None, {}), "nope")
    assert cli.main(["schedule", "--cron", "every day", "--once"]) == 2
