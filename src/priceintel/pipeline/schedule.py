"""Unattended runs: cron schedule, a lock so runs never overlap, retries with backoff, run history, summary.

`run_once` is what cron, a systemd timer or `priceintel schedule` calls: it takes the lock
(`<data_dir>/schedule.lock`, an flock the kernel releases when a process dies), records a
`schedule_run` row, builds the Ploomber DAG (up-to-date tasks are skipped, so a run killed midway
resumes where it stopped; loads are idempotent upserts) and retries failed tasks with exponential
backoff (a retry re-runs only the failed task and what depends on it), then sends a summary.
`airflow_dag` writes the same pipeline as an Airflow DAG file (one BashOperator per task; the scrape task
split into one task per shop, merged by `scrape`: `pipeline.shards`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from priceintel import PriceIntelError, config
from priceintel.obs import logs, metrics


class ScheduleError(PriceIntelError):
    """A schedule problem: bad cron expression, a run already in progress, a failed run."""


# ------------------------------------------------------------------------------------ cron


def next_runs(cron: str, start: datetime | None = None, n: int = 1) -> list[datetime]:
    """The next n fire times of a 5-field cron expression after start (UTC)."""
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ScheduleError(
            f"--cron {cron!r} is not a 5-field cron expression (e.g. '0 6 * * *' daily at 06:00, '0 * * * *' hourly)"
        )
    it = croniter(cron, start or datetime.now(UTC))
    return [it.get_next(datetime) for _ in range(n)]


# ------------------------------------------------------------------------------------ lock


class RunLock:
    """Exclusive, non-blocking flock on a file; released on exit or when the process dies."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise ScheduleError naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise ScheduleError(f"another run holds the lock {self.path} (pid {holder}); not starting") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Drop the lock."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class DatabaseRunLock:
    """A session-level PostgreSQL advisory lock held on a connection of its own for the whole run: the file
    lock keeps runs on one machine apart, this one keeps apart runs on machines that share the database (two
    container tasks, a manual run beside the scheduled one). It ends with the connection if the process dies."""

    #: the lock's key (any constant 64-bit number; "priceintel schedule" as one)
    KEY = 0x7072_6963_6573_6368

    def __init__(self, engine: Any):
        self.engine = engine
        self._conn: Any = None

    def acquire(self) -> DatabaseRunLock:
        """Take the lock or raise ScheduleError."""
        import sqlalchemy as sa

        conn = self.engine.connect()
        try:
            held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.KEY}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            raise ScheduleError(
                "another run holds the database's run lock (a run on another machine or container sharing this "
                "database); not starting"
            )
        self._conn = conn
        return self

    def release(self) -> None:
        """Drop the lock (closing the connection drops it too)."""
        import sqlalchemy as sa

        if self._conn is None:
            return
        try:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.KEY})
            self._conn.commit()
        finally:
            self._conn.close()
            self._conn = None


# ------------------------------------------------------------------------------- history


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _engine():
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    eng = db_engine.get_engine()
    migrate.upgrade()
    return eng


def mark_interrupted(engine) -> int:
    """Runs recorded as running on this host whose process is gone become 'interrupted'."""
    import sqlalchemy as sa

    host = socket.gethostname()
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text("SELECT run_id, pid FROM schedule_run WHERE status = 'running' AND host = :h"), {"h": host}
        ).all()
        dead = [r.run_id for r in rows if not _pid_alive(r.pid)]
        if dead:
            conn.execute(
                sa.text("""UPDATE schedule_run SET status = 'interrupted', finished_at = now(),
                                    error = 'process ended without finishing (killed?)' WHERE run_id = ANY(:ids)"""),
                {"ids": dead},
            )
    return len(dead)


def _start_row(engine, trigger: str, cron: str | None, env_file: str | None) -> int:
    import sqlalchemy as sa

    with engine.begin() as conn:
        return conn.execute(
            sa.text("""
            INSERT INTO schedule_run (trigger, cron, pid, host, env_file) VALUES (:t, :c, :p, :h, :e)
            RETURNING run_id"""),
            {"t": trigger, "c": cron, "p": os.getpid(), "h": socket.gethostname(), "e": env_file},
        ).scalar()


def _finish_row(engine, run_id: int, status: str, tasks: dict, error: str | None) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(
            sa.text("""UPDATE schedule_run SET status = :s, finished_at = now(), tasks = CAST(:t AS jsonb),
                                error = :e WHERE run_id = :r"""),
            {"s": status, "t": json.dumps(tasks, default=str), "e": error, "r": run_id},
        )


def history(engine, limit: int = 20):
    """The latest scheduled runs, newest first."""
    import pandas as pd
    import sqlalchemy as sa

    with engine.connect() as conn:
        return pd.read_sql(
            sa.text("""
            SELECT run_id, started_at, finished_at, status, trigger, cron, pid, error, tasks
            FROM schedule_run ORDER BY run_id DESC LIMIT :n"""),
            conn,
            params={"n": limit},
        )


# ----------------------------------------------------------------------------------- runs


def _build(env: dict, force: bool, until: str | None = None) -> dict[str, dict]:
    """Build the DAG once (`until`: that task and the tasks it needs); per-task status ('executed', 'skipped',
    'errored', 'aborted') and seconds."""
    from ploomber.exceptions import DAGBuildError

    from priceintel.pipeline.run import build_error, pipeline_dag

    dag = pipeline_dag(env, until)
    error = None
    try:
        dag.build(force=force)  # in the run's tenant: run_once holds it around every attempt
    except DAGBuildError as exc:
        error = build_error(dag, exc)
    status = {}
    for name in dag:
        task = dag[name]
        state = str(task.exec_status.name).lower()
        status[name] = {
            "status": {"executed": "executed", "skipped": "skipped", "errored": "errored"}.get(state, state)
        }
    if error is not None:
        raise _BuildFailed(error, status)
    return status


class _BuildFailed(Exception):
    def __init__(self, message: str, status: dict):
        super().__init__(message)
        self.status = status


def run_once(
    env: dict,
    *,
    retries: int = 2,
    backoff: float = 30.0,
    force: bool = False,
    trigger: str = "manual",
    cron: str | None = None,
    env_file: str | None = None,
    notifiers: dict | None = None,
    sleep: Callable[[float], None] = time.sleep,
    until: str | None = None,
) -> dict:
    """One locked, recorded run with retries, in the run's tenant (`run.in_tenant`); returns {run_id, status,
    tasks, error}; raises on failure. `until`: only that task and the tasks it needs (`run --until`)."""
    from priceintel.pipeline.run import in_tenant

    with in_tenant(env):
        return _run_once(
            env, retries=retries, backoff=backoff, force=force, trigger=trigger, cron=cron, env_file=env_file,
            notifiers=notifiers, sleep=sleep, until=until,
        )  # fmt: skip


def _attempts(
    env: dict,
    force: bool,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
    engine,
    run_id: int,
    until: str | None = None,
) -> tuple[str, dict[str, dict], str | None]:
    """Build the pipeline, retrying failed tasks with exponential backoff; record the outcome (schedule_run,
    last_run.json, the runs metric). Returns (state, per-task attempts and status, error or None)."""
    from priceintel.pipeline import run

    tasks: dict[str, dict] = {}
    error = None
    for attempt in range(int(retries) + 1):
        try:
            # a live run fetches today's pages on its first attempt; a retry re-runs only what failed
            status = _build(env, force=(force or run.builds_everything(env)) and attempt == 0, until=until)
            error = None
        except _BuildFailed as exc:
            status, error = exc.status, config.redact(str(exc))
        for name, st in status.items():
            entry = tasks.setdefault(name, {"attempts": 0, "status": "skipped"})
            if st["status"] in ("executed", "errored"):
                entry["attempts"] += 1
                entry["status"] = st["status"]
            elif st["status"] != "skipped":
                entry["status"] = st["status"]
        if error is None:
            break
        if attempt < retries:
            sleep(backoff * 2**attempt)
    state = "success" if error is None else "failed"
    _finish_row(engine, run_id, state, tasks, error)
    run.record_outcome(env, state, error, until=until)
    metrics.run_finished(state)
    return state, tasks, error


def _run_once(
    env: dict,
    *,
    retries: int,
    backoff: float,
    force: bool,
    trigger: str,
    cron: str | None,
    env_file: str | None,
    notifiers: dict | None,
    sleep: Callable[[float], None],
    until: str | None = None,
) -> dict:
    from priceintel.alerts import notify

    lock = RunLock(Path(env["data_dir"]) / "schedule.lock").acquire()
    dblock: DatabaseRunLock | None = None
    started = datetime.now(UTC)
    try:
        engine = _engine()
        dblock = DatabaseRunLock(engine).acquire()  # before marking running rows interrupted: none is running
        interrupted = mark_interrupted(engine)
        run_id = _start_row(engine, trigger, cron, env_file)
        with logs.context(export=True, run_id=f"schedule-{run_id}"):  # every log line of the run names it
            state, tasks, error = _attempts(env, force, retries, backoff, sleep, engine, run_id, until)
        notifiers = notifiers if notifiers is not None else notify.from_settings()
        lines = [f"{name}: {t['status']} ({t['attempts']} attempt(s))" for name, t in tasks.items()]
        if interrupted:
            lines.append(f"{interrupted} earlier run(s) had been interrupted; this run resumed their work")
        lines.extend(storage_upkeep(Path(env["data_dir"]), started))
        if error:
            lines.append(f"error: {error}")
        notify.broadcast(
            engine,
            notifiers,
            notify.Notification(
                title=f"priceintel run #{run_id} {'succeeded' if state == 'success' else 'FAILED'}",
                kind="run",
                lines=lines,
            ),
        )
    finally:
        if dblock is not None:
            dblock.release()
        lock.release()
    result = {"run_id": run_id, "status": state, "tasks": tasks, "error": error, "interrupted_before": interrupted}
    if error is not None:
        raise ScheduleError(f"run #{run_id} failed after {int(retries) + 1} attempt(s): {error}")
    return result


def storage_upkeep(data_dir: Path, since: datetime) -> list[str]:
    """With object storage ($PRICEINTEL_ARCHIVE_URL): upload what the archive spooled while the store was
    unavailable and ship the logs (today's file too, as it stands: a container task's disk ends with it); the
    run summary's lines about it (never an error: what is not uploaded stays in the spool for the next run)."""
    from priceintel import storage
    from priceintel.scrape.archive import RawArchive

    try:
        if storage.archive_store() is None:
            return []
        arc = RawArchive(data_dir / "raw")
        spooled = len(arc.spooled_since(since.isoformat()))
        done, shipped = arc.flush(), storage.ship_logs(logs.log_dir(), include_open=True)
    except PriceIntelError as exc:
        return [f"object storage: {config.redact(str(exc))}"]
    lines = []
    if spooled or done["uploaded"] or done["pending_objects"]:
        lines.append(
            f"archive: {spooled} page body(ies) kept in the local spool during this run ({arc.location} "
            f"unavailable); {done['uploaded']} uploaded now, {done['pending_objects']} still waiting"
        )
    if done["error"] or shipped["error"]:
        lines.append(f"object storage: {config.redact(str(done['error'] or shipped['error']))}")
    return lines


def serve(
    cron: str,
    env: dict,
    *,
    max_runs: int | None = None,
    log: Callable[[str], None] = print,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    **run_kwargs,
) -> int:
    """Run the pipeline at every fire time of cron (forever, or max_runs times); returns runs attempted."""
    next_runs(cron)  # validate before waiting
    done = 0
    while max_runs is None or done < max_runs:
        fire = next_runs(cron, now())[0]
        wait = (fire - now()).total_seconds()
        log(f"next run at {fire.isoformat()} (in {max(wait, 0):.0f}s)")
        if wait > 0:
            sleep(wait)
        try:
            res = run_once(env, trigger="cron", cron=cron, **run_kwargs)
            log(f"run #{res['run_id']} {res['status']}")
        except ScheduleError as exc:
            log(f"error: {exc}")
        done += 1
    return done


# -------------------------------------------------------------------------------- airflow


def pipeline_tasks(env: dict | None = None) -> dict[str, list[str]]:
    """Task name → upstream task names, from pipeline.yaml (as Ploomber resolves them)."""
    from ploomber.spec import DAGSpec

    if env is None:
        from priceintel.pipeline.run import build_env

        env = build_env(None, {})
    dag = DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=env).to_dag()
    return {name: sorted(dag[name].upstream) for name in dag}


#: the environment variable through which the DAG hands Airflow's run_id to the scrape shards and their merge
RUN_KEY_ENV = "PRICEINTEL_RUN_KEY"


def shard_task_ids(shops: Sequence[str]) -> dict[str, str]:
    """Shop -> its shard's task id and variable name in the DAG file: `scrape_<shop>`, other characters than
    letters, digits and `_` made `_` (a suffix keeps two shops apart that would read the same)."""
    from priceintel.pipeline import shards

    ids: dict[str, str] = {}
    for shop in shops:
        base = "scrape_" + re.sub(r"[^0-9A-Za-z_]", "_", shards.check_shop(shop))
        task_id, n = base, 2
        while task_id in ids.values():
            task_id, n = f"{base}_{n}", n + 1
        ids[shop] = task_id
    return ids


def _shard_shops(shards: bool | Sequence[str] | None, env: dict) -> list[str]:
    """The shops that get a shard task: none (False); the run's shops (True; None: when there are two or more);
    or the shops given."""
    from priceintel.pipeline import shards as sharding

    if shards is False:
        return []
    if shards is None or shards is True:
        shops = sharding.export_shops(env)
        return shops if shards is True or len(shops) > 1 else []
    return list(dict.fromkeys(shards))


def airflow_dag(
    env_file: str | None = None,
    cron: str = "0 6 * * *",
    dag_id: str = "priceintel",
    retries: int = 2,
    retry_delay: int = 60,
    env: dict | None = None,
    shards: bool | Sequence[str] | None = None,
    cluster: str | None = None,
) -> str:
    """Source of an Airflow DAG file: one BashOperator per pipeline task (`priceintel task NAME`), same edges.
    With shards (default: when the run has two or more shops, `_shard_shops`), the scrape task is split: one
    task per shop (`scrape_<shop>`: `priceintel task scrape --shard SHOP --run-key KEY`) after the scrape task's
    upstream, all before `scrape`, which merges them (`pipeline.shards`); the run key is Airflow's run_id."""
    next_runs(cron)
    if env is None:
        from priceintel.pipeline.run import build_env

        env = build_env(env_file, {})
    deps = pipeline_tasks(env)
    shops = _shard_shops(shards, env)
    ids = shard_task_ids(shops)
    exe = shlex.quote(str(Path(sys.executable).parent / "priceintel"))
    root = shlex.quote(str(config.PROJ_ROOT))
    env_arg = f" --env-file {shlex.quote(str(Path(env_file).resolve()))}" if env_file else ""
    run_key = f' --run-key="${RUN_KEY_ENV}"'  # the shell expands the variable, never parses the run id (one
    # argument even when it starts with "-")
    if cluster:  # every task sends its forecast backtests to this Dask scheduler
        env_arg += f" --cluster {shlex.quote(cluster)}"

    def operator(task_id: str, args: str, keyed: bool = False) -> str:
        cmd = f"cd {root} && {exe} task {args}{run_key if keyed else ''}{env_arg}"
        extra = ", env=run_env, append_env=True" if keyed else ""
        return f"    {task_id} = BashOperator(task_id={task_id!r}, bash_command={cmd!r}{extra})"

    lines = [
        '"""Airflow DAG for the priceintel pipeline, generated from pipeline.yaml by `priceintel schedule',
        '--export-airflow`. Regenerate instead of editing. Each task runs `priceintel task NAME`."""',
        "",
        "from datetime import datetime, timedelta",
        "",
        "try:  # Airflow 3",
        "    from airflow.providers.standard.operators.bash import BashOperator",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "    from airflow.operators.bash import BashOperator",
        "",
        f"default_args = {{'retries': {int(retries)}, 'retry_delay': timedelta(seconds={int(retry_delay)}),",
        "                'retry_exponential_backoff': True}",
    ]
    if shops:
        lines += [
            f"# scrape: one shard per shop ({', '.join(shops)}), merged by the scrape task. The run key is",
            "# Airflow's run_id, rendered into the environment: the commands read it quoted, never parsed by the shell",
            f"run_env = {{{RUN_KEY_ENV!r}: '{{{{ run_id }}}}'}}",
        ]
    lines += [
        "",
        f"with DAG(dag_id={dag_id!r}, schedule={cron!r}, start_date=datetime(2026, 1, 1), catchup=False,",
        "         max_active_runs=1, default_args=default_args) as dag:",
    ]
    for name in deps:
        if name == "scrape" and shops:
            lines += [operator(ids[s], f"scrape --shard {shlex.quote(s)}", keyed=True) for s in shops]
            lines.append(operator(name, f"scrape --shops {shlex.quote(','.join(shops))}", keyed=True))
        else:
            lines.append(operator(name, shlex.quote(name)))
    lines.append("")
    for name, ups in deps.items():
        for up in ups:
            lines.append(f"    {up} >> {name}")
        if name == "scrape":
            lines += [f"    {up} >> {ids[s]}" for s in shops for up in ups]
            lines += [f"    {ids[s]} >> {name}" for s in shops]
    return "\n".join(lines) + "\n"


def export_airflow(
    path: str | Path,
    env_file: str | None,
    cron: str | None,
    env: dict,
    retries: int,
    backoff: float,
    shards: bool | None = None,
    cluster: str | None = None,
) -> Path:
    """Write `airflow_dag` (daily at 06:00 UTC without a cron) to path; returns the path."""
    path = Path(path)
    source = airflow_dag(
        env_file,
        cron=cron or "0 6 * * *",
        env=env,
        retries=retries,
        retry_delay=int(backoff),
        shards=shards,
        cluster=cluster,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


def run_line(result: dict) -> str:
    """'run #N success: scrape executed, clean skipped, …' of a run_once result."""
    tasks = ", ".join(f"{k} {v['status']}" for k, v in result["tasks"].items())
    return f"run #{result['run_id']} {result['status']}: " + tasks


def run_task(env: dict, name: str, force: bool = True) -> None:
    """Build one pipeline task (its upstream products must exist), hooks included: what Airflow calls."""
    from priceintel.pipeline.run import in_tenant, pipeline_dag, root_cause

    dag = pipeline_dag(env)
    if name not in dag:
        raise ScheduleError(f"unknown task {name!r}; pipeline.yaml has {', '.join(dag)}")
    dag.render()  # upstream tasks whose products are up to date are skipped (a forced render would make every
    # upstream of this task "missing": Ploomber builds a lone task only on top of finished ones)
    try:
        with in_tenant(env):
            dag[name].build(force=force)
    except Exception as exc:  # noqa: BLE001 - report the notebook's own error on one line
        raise ScheduleError(f"task {name} failed: {root_cause(exc)}") from None
