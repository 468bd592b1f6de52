"""Running the Ploomber pipeline: its settings (env.yaml + overrides), a build, and the recorded outcome."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import yaml

from priceintel import PriceIntelError, config
from priceintel.db import tenancy


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
    old = os.environ.get(tenancy.TENANT_ENV)
    os.environ[tenancy.TENANT_ENV] = name  # the task kernels inherit it
    try:
        with tenancy.scope(name):
            yield name
    finally:
        if old is None:
            os.environ.pop(tenancy.TENANT_ENV, None)
        else:
            os.environ[tenancy.TENANT_ENV] = old


def run_pipeline(env: dict, force: bool = False):
    """Build the Ploomber DAG with this env, in its tenant (`in_tenant`); raise PriceIntelError with the
    failing task's message.

    A live run (`source: live`) always builds every task: today's pages are new even when nothing in the
    code or the parameters changed, which is all Ploomber's up-to-date check looks at."""
    from ploomber.exceptions import DAGBuildError
    from ploomber.spec import DAGSpec

    spec = DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=env)
    dag = spec.to_dag()
    try:
        with in_tenant(env):
            return dag.build(force=force or builds_everything(env))
    except DAGBuildError as exc:
        raise PriceIntelError(f"pipeline failed: {config.redact(root_cause(exc))}") from None


def root_cause(exc: BaseException) -> str:
    """The most specific message in an exception chain (the notebook's own error when present)."""
    import re

    text = str(exc)
    for line in text.splitlines():
        # our own errors all end in "Error" and carry a message after the colon
        if re.match(r"^\s*(priceintel\.[\w.]+\.)?\w+Error: \S", line) and "DAGBuildError" not in line:
            return line.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else repr(exc)


def record_outcome(env: dict, status: str, error: str | None) -> Path:
    """Write reports/last_run.json and, when the database answers, a pipeline_run row; the error and the env
    are `config.redact`ed first (the landing page shows both)."""
    from datetime import datetime

    error = config.redact(error) if error else error
    env = {k: config.redact(v) if isinstance(v, str) else v for k, v in env.items()}
    outcome = {"status": status, "error": error, "finished_at": datetime.now(UTC).isoformat(), "env": env}
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
            run_id = load.start_run(conn, "pipeline", env)
            load.finish_run(conn, run_id, status, {}, {"error": error} if error else {})
    except PriceIntelError as exc:  # the database itself may be what failed
        print(f"warning: run outcome not recorded in the database: {config.redact(str(exc))}", file=sys.stderr)
    return path
