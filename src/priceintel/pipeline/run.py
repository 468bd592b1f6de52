"""Running the Ploomber pipeline: its settings (env.yaml + overrides), a build, and the recorded outcome."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import yaml

from priceintel import PriceIntelError, config
from priceintel.db import tenancy
from priceintel.obs import logs, metrics

log = logging.getLogger(__name__)


def build_env(env_file: str | None, sets: dict) -> dict:
    """Pipeline env: env.yaml (or env_file) plus overrides, with paths made absolute."""
    path = Path(env_file) if env_file else config.PROJ_ROOT / "env.yaml"
    if not path.exists():
        raise PriceIntelError(f"env file not found: {path}")
    try:
        env = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PriceIntelError(f"env file {path} is not valid YAML: {exc}") from None
    base = yaml.safe_load((config.PROJ_ROOT / "env.yaml").read_text())
    unknown = set(sets) - set(base)
    if unknown:
        raise PriceIntelError(f"unknown pipeline setting(s) {sorted(unknown)}; known: {sorted(base)}")
    missing = sorted(set(base) - set(env))
    if missing:
        raise PriceIntelError(f"env file {path} lacks setting(s) {missing}")
    if env_file is None:  # the default env honours the path variables read by config
        defaults = {
            "data_dir": ("PRICEINTEL_DATA_DIR", config.data_dir),
            "reports_dir": ("PRICEINTEL_REPORTS_DIR", config.reports_dir),
        }
        for key, (var, where) in defaults.items():
            if os.environ.get(var) and key not in sets:
                env[key] = str(where())
    env.update(sets)
    for key in ("data_dir", "reports_dir"):
        p = Path(str(env[key]))
        env[key] = str(p if p.is_absolute() else (path.parent / p).resolve())
    return env


def builds_everything(env: dict) -> bool:
    """A live run (`source: live`) builds every task: today's pages are new even when nothing in the code or the
    parameters changed, which is all Ploomber's up-to-date check looks at."""
    return env.get("source") == "live"


def pipeline_tenant(env: dict) -> str | None:
    """The tenant a run loads into: $PRICEINTEL_TENANT (`priceintel --tenant T run`), else `demo` for the demo
    world, else None (the database's default tenant)."""
    chosen = tenancy.current()
    if chosen is not None:
        return chosen
    return tenancy.DEMO if env.get("source", "demo") == "demo" else None


@contextmanager
def in_tenant(env: dict) -> Iterator[str | None]:
    """Run the block, and the notebooks it starts, in the run's tenant (`pipeline_tenant`); the demo's tenant
    is added when missing, and becomes the database's default on a database whose default tenant is unused."""
    name = pipeline_tenant(env)
    if name is None:
        yield None
        return
    if name == tenancy.DEMO:
        from priceintel.db import engine as db_engine
        from priceintel.db import migrate

        migrate.upgrade()
        if tenancy.current() is None and not tenancy.isolated(db_engine.get_engine()):
            print("warning: no worker role (the owner may not create roles): the demo loads into the default tenant",
                  file=sys.stderr)  # fmt: skip
            yield None
            return
        # the demo world is a showcase: no plan limits (`db.usage`)
        tenancy.ensure_tenant(db_engine.get_engine(), name, plan="enterprise", default_if_unused=True)
    # the task notebooks (in this process, or a kernel started from it) read the tenant from the environment
    with config.environment({tenancy.TENANT_ENV: name}), tenancy.scope(name):
        yield name


def run_pipeline(env: dict, force: bool = False, until: str | None = None):
    """Build the Ploomber DAG with this env, in its tenant (`in_tenant`); raise PriceIntelError with the
    failing task's message. `until`: build only that task and the tasks it needs (`priceintel run --until
    load`: today's prices fetched, checked and stored, no models).

    A live run (`source: live`) always builds every task: today's pages are new even when nothing in the
    code or the parameters changed, which is all Ploomber's up-to-date check looks at. The run has an id (the
    one bound in the logs' context, else a new `run-…`), bound with each task's name while it
    builds (`instrument`); the run's outcome is counted in the metrics."""
    from ploomber.exceptions import DAGBuildError

    dag = pipeline_dag(env, until)
    run_id = logs.current().get("run_id") or logs.new_run_id()
    with logs.context(export=True, run_id=run_id):
        log.info("pipeline run started", extra={"source": env.get("source"), "force": bool(force), "until": until})
        try:
            with in_tenant(env):
                report = dag.build(force=force or builds_everything(env))
        except DAGBuildError as exc:
            metrics.run_finished("failed")
            message = config.redact(build_error(dag, exc))
            log.error("pipeline run failed: %s", message)
            raise PriceIntelError(f"pipeline failed: {message}") from None
        metrics.run_finished("success")
        log.info("pipeline run finished")
        return report


def pipeline_dag(env: dict, until: str | None = None) -> Any:
    """pipeline.yaml's DAG with this env, cut down to `until` (`until_task`) and instrumented (`instrument`)."""
    from ploomber.spec import DAGSpec

    from priceintel.pipeline import engine

    engine.prepare()
    return instrument(until_task(DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=env).to_dag(), until))


def task_names() -> list[str]:
    """The pipeline's tasks, in pipeline.yaml's order."""
    spec = yaml.safe_load((config.PROJ_ROOT / "pipeline.yaml").read_text())
    return [str(task["name"]) for task in spec["tasks"]]


def check_until(until: str | None) -> None:
    """PriceIntelError naming the tasks when `until` is not one of them (None: the whole pipeline)."""
    if until is not None and until not in task_names():
        raise PriceIntelError(f"--until {until}: no such task in pipeline.yaml; the tasks: {', '.join(task_names())}")


def until_task(dag: Any, until: str | None) -> Any:
    """The DAG (in place) cut down to task `until` and its upstream tasks (None: all of it)."""
    check_until(until)
    if until is None:
        return dag
    keep = {until} | set(dag[until]._lineage or ())
    for name in [n for n in dag if n not in keep]:
        dag.pop(name)
    return dag


def instrument(dag: Any) -> Any:
    """Time and count every task of a Ploomber DAG (in place; returns it): while a task builds, its name is
    bound in the logs' context and exported as PRICEINTEL_TASK (which a kernel started from here inherits); when
    it ends, its duration, status and the rows of its tabular products go to the metrics. The scheduler calls
    this on the DAG it builds too."""
    for name in dag:
        task = dag[name]
        build = getattr(task, "_build", None)
        if build is None or getattr(build, "_priceintel_instrumented", False):
            continue

        def timed(*args: Any, _build: Any = build, _task: Any = task, **kwargs: Any) -> Any:
            name = str(_task.name)
            with logs.context(export=True, task=name):
                start = time.perf_counter()
                try:
                    out = _build(*args, **kwargs)
                except BaseException as exc:
                    _task._priceintel_error = root_cause(exc)  # Ploomber's DAGBuildError drops the chain
                    metrics.task_finished(name, "failed", time.perf_counter() - start)
                    log.error("task %s failed after %.1f s", name, time.perf_counter() - start,
                              exc_info=isinstance(exc, Exception))  # fmt: skip
                    raise
                seconds = time.perf_counter() - start
                rows = product_rows(_task.product)
                metrics.task_finished(name, "executed", seconds, rows)
                log.info("task %s executed in %.1f s", name, seconds, extra={"seconds": round(seconds, 3),
                                                                               "rows": rows})  # fmt: skip
                return out

        timed._priceintel_instrumented = True  # type: ignore[attr-defined]
        task._build = timed
    return dag


def product_rows(product: Any) -> dict[str, int]:
    """Rows of a task's tabular products (parquet from its footer, CSV by records) by product name; for the load
    task's receipt, the rows it staged per table. Missing or unreadable files are left out."""
    data = product.to_json_serializable() if hasattr(product, "to_json_serializable") else {}
    items = data.items() if isinstance(data, dict) else []
    out: dict[str, int] = {}
    for key, value in items:
        path = Path(str(value))
        try:
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                out[key] = int(pq.read_metadata(path).num_rows)
            elif path.suffix == ".csv":
                with path.open(newline="", encoding="utf-8", errors="replace") as fh:
                    out[key] = max(sum(1 for _ in csv.reader(fh)) - 1, 0)
            elif key == "receipt" and path.suffix == ".json":
                for table, n in (json.loads(path.read_text()).get("loaded") or {}).items():
                    n = n.get("staged") if isinstance(n, dict) else n  # {staged, inserted, updated, …}
                    if isinstance(n, int | float):
                        out[str(table)] = int(n)
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return out


def build_error(dag: Any, exc: BaseException) -> str:
    """What failed in a DAG's build: the first failed task's error as `instrument` caught it (a DAGBuildError
    keeps only the formatted tracebacks, not the exceptions), else `root_cause(exc)`."""
    for name in dag:
        message = getattr(dag[name], "_priceintel_error", None)
        if message:
            return str(message)
    return root_cause(exc)


def root_cause(exc: BaseException) -> str:
    """The most specific message in an exception chain: the notebook's own error (`Name: message`), raised in
    this process or quoted from a kernel's traceback (papermill) in a DAG's build error or a task's
    (`schedule.run_task`)."""
    import re

    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    # a notebook run in this process (`engine`) raised its own error: the first in the chain that is not
    # Ploomber's wrapping of it (its causes, further down, are less specific)
    for err in chain:
        if type(err).__module__.split(".")[0] not in ("ploomber", "ploomber_engine", "papermill"):
            text = " ".join(ln.strip() for ln in str(err).splitlines() if ln.strip())
            return f"{type(err).__name__}: {text}" if text else type(err).__name__
    for line in (ln for err in chain for ln in str(err).splitlines()):
        # a traceback's last line, `module.Name: message` (the module dropped); errors all end in "Error"
        found = re.match(r"^\s*(?:[A-Za-z_]\w*\.)*(\w+Error: \S.*)$", line)
        if found and "DAGBuildError" not in line and not line.strip().startswith("ploomber."):
            return found.group(1).strip()
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Need help?")]
    return lines[-1] if lines else repr(exc)  # (Ploomber's errors end in a "Need help? <url>" line)


def record_outcome(env: dict, status: str, error: str | None, until: str | None = None) -> Path:
    """Write reports/last_run.json and, when the database answers, a pipeline_run row; the error and the env
    are `config.redact`ed first (the landing page shows both). `until`: the last task of a partial run."""
    from datetime import datetime

    error = config.redact(error) if error else error
    env = {k: config.redact(v) if isinstance(v, str) else v for k, v in env.items()}
    outcome = {"status": status, "error": error, "finished_at": datetime.now(UTC).isoformat(), "env": env}
    if until is not None:
        outcome["until"] = until
    if logs.current().get("run_id"):
        outcome["run_id"] = logs.current()["run_id"]
    path = Path(env["reports_dir"]) / "last_run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome, indent=2, default=str) + "\n")
    try:
        from priceintel.db import engine as db_engine
        from priceintel.db import load, migrate

        eng = db_engine.get_engine()
        db_engine.check_connection(eng)
        migrate.upgrade()
        with in_tenant(env), eng.begin() as conn:
            run_id = load.start_run(conn, "pipeline", env if until is None else {**env, "until": until})
            load.finish_run(conn, run_id, status, {}, {"error": error} if error else {})
    except PriceIntelError as exc:  # the database itself may be what failed
        print(f"warning: run outcome not recorded in the database: {config.redact(str(exc))}", file=sys.stderr)
    return path
