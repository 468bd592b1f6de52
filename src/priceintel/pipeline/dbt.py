"""The dbt project beside the pipeline (`dbt/`, docs/dbt.md): staging models over the star schema and the marts
(`marts.fct_price_history`, `mart_price_index`, `mart_price_positioning`, `mart_promotions`) with their tests.

dbt runs in this process (`dbtRunner`) as the database owner of `DATABASE_URL` (or the embedded server): the
profile is written at run time from that URL (a unix-socket directory is the profile's `host`; the password
never touches the disk, it reaches dbt through an environment variable of this process), target/ and logs/ go
under `data/dbt/`, and nothing is fetched: the project has no packages, and anonymous usage statistics are off
(in `dbt_project.yml` and `DBT_SEND_ANONYMOUS_USAGE_STATS`). `build` returns a summary of every node and raises
`DbtError` with one line per failing model or test; `docs` renders the static documentation site into
`reports/dbt-docs/`. Used by the pipeline's `dbt` task (`notebooks/04b-dbt.py`) and `priceintel dbt`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from priceintel import PriceIntelError, config
from priceintel.db import tenancy
from priceintel.db.engine import app_role_name, get_engine, get_url, normalize_url, redact_url
from priceintel.db.roles import APP_URL_ENV

__all__ = [
    "DBT_DIR",
    "MARTS",
    "MARTS_SCHEMA",
    "DbtError",
    "add_parsers",
    "build",
    "dbt_stage",
    "docs",
    "mart_rows",
    "profile_for",
    "read_mart",
]

#: the dbt project
DBT_DIR = config.PROJ_ROOT / "dbt"
#: the schema of the marts (the apps and the API read `marts.<name>`)
MARTS_SCHEMA = "marts"
#: the marts, in the order the docs list them
MARTS = ("fct_price_history", "mart_price_index", "mart_price_positioning", "mart_promotions")
PROFILE = "priceintel"
TARGET = "default"
#: the environment variable the written profile reads the password from (set only while dbt runs)
PASSWORD_ENV = "PRICEINTEL_DBT_PASSWORD"
#: what dbt must never do here: report usage over the network
_DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DBT_USE_COLORS": "False"}
_FAILED = {"error", "fail", "runtime error"}


class DbtError(PriceIntelError):
    """dbt could not run, or a model or a data test failed: the message names each one."""


def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _query_value(query: Any, key: str) -> str | None:
    value = query.get(key)
    if isinstance(value, tuple):  # a key given twice (several hosts): the first
        value = value[0] if value else None
    return str(value) if value else None


def profile_for(url: str, threads: int = 2) -> tuple[dict, dict[str, str]]:
    """The profiles.yml mapping for the database at url and the environment it reads (the password).

    `postgresql+psycopg://postgres@/priceintel?host=/run/sock` becomes host `/run/sock` (libpq reads a host
    that starts with / as a unix-socket directory), port 5432 unless the URL names one, dbname `priceintel`."""
    parsed = make_url(normalize_url(url))
    if not parsed.drivername.startswith("postgresql"):
        raise DbtError(f"dbt: the database must be PostgreSQL, not {redact_url(parsed)}")
    if not parsed.database:
        raise DbtError(f"dbt: the database URL {redact_url(parsed)} names no database")
    query = parsed.query
    port = parsed.port or _query_value(query, "port") or 5432
    output: dict[str, Any] = {
        "type": "postgres",
        "host": parsed.host or _query_value(query, "host") or os.environ.get("PGHOST") or "localhost",
        "port": int(port),
        "user": parsed.username or os.environ.get("PGUSER") or getpass.getuser(),
        "password": "{{ env_var('" + PASSWORD_ENV + "', '') }}",
        "dbname": parsed.database,
        "schema": MARTS_SCHEMA,
        "threads": threads,
        "connect_timeout": int(_query_value(query, "connect_timeout") or 10),
        "application_name": "priceintel-dbt",
    }
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if _query_value(query, key):
            output[key] = _query_value(query, key)
    profiles = {PROFILE: {"target": TARGET, "outputs": {TARGET: output}}}
    return profiles, {PASSWORD_ENV: parsed.password or os.environ.get("PGPASSWORD", "")}


def _reader_roles(url: str) -> list[str]:
    """Roles granted the marts besides `<db>_app` and `<db>_worker`: the role of $PRICEINTEL_APP_DATABASE_URL."""
    given = os.environ.get(APP_URL_ENV)
    if not given:
        return []
    role = make_url(normalize_url(given)).username
    database = make_url(normalize_url(url)).database or ""
    return [role] if role and role != app_role_name(database) else []


def work_dir(path: str | Path | None = None) -> Path:
    """Where the profile, target/ and logs/ go: path, else `data/dbt/`."""
    out = Path(path) if path is not None else config.data_dir() / "dbt"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _invoke(command: list[str], url: str | None, work: Path, variables: dict | None, quiet: bool) -> Any:
    """Run `dbt <command>` in this process against url; the dbtRunnerResult."""
    url = url or get_url()
    profiles, secrets = profile_for(url)
    (work / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    merged = {"reader_roles": _reader_roles(url)} | (variables or {})
    args = [
        *command,
        "--project-dir", str(DBT_DIR),
        "--profiles-dir", str(work),
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(merged),
    ]  # fmt: skip
    if quiet:
        args.append("--quiet")
    with config.environment(_DBT_ENV | secrets):
        from dbt.cli.main import dbtRunner

        try:
            return dbtRunner().invoke(args)
        except Exception as err:  # noqa: BLE001 - dbt's own failures, said in one line
            raise DbtError(f"dbt {command[0]}: {type(err).__name__}: {_one_line(err)}") from None


def _status(result: Any) -> str:
    status = getattr(result, "status", "")
    return str(getattr(status, "value", status)).lower()


def _node(result: Any) -> dict:
    node = result.node
    status = _status(result)
    row = {
        "name": node.name,
        "type": str(getattr(node.resource_type, "value", node.resource_type)),
        "status": status,
        "seconds": round(float(result.execution_time or 0), 3),
    }
    if status in _FAILED or status == "warn":
        row["failures"] = result.failures
        row["message"] = _one_line(result.message)
    return row


def _problem(row: dict) -> str:
    """`test assert_no_negative_prices failed: 1 failing row` / `model mart_x errored: <reason>`."""
    if row["status"] == "fail":
        n = row.get("failures")
        return f"{row['type']} {row['name']} failed: {n} failing row{'s' if n != 1 else ''}"
    return f"{row['type']} {row['name']} errored: {row.get('message') or 'no message'}"


def summarise(result: Any, seconds: float) -> dict:
    """Every node's name, type, status and time; counts per type and status; the failures in one line each."""
    nodes = [_node(r) for r in getattr(getattr(result, "result", None), "results", None) or []]
    counts: dict[str, Counter] = {}
    for row in nodes:
        counts.setdefault(row["type"], Counter())[row["status"]] += 1
    problems = [_problem(row) for row in nodes if row["status"] in _FAILED]
    if not result.success and not problems and result.exception is not None:
        problems.append(f"{type(result.exception).__name__}: {_one_line(result.exception)}")
    return {
        "success": bool(result.success) and not problems,
        "seconds": round(seconds, 2),
        "counts": {k: dict(v) for k, v in counts.items()},
        "skipped": [row["name"] for row in nodes if row["status"] == "skipped"],
        "problems": problems,
        "nodes": nodes,
    }


#: pg_try_advisory_lock key: one dbt build at a time per database (they replace the same tables)
_LOCK_KEY = 7_365_120_017


@contextlib.contextmanager
def _one_build(url: str | None) -> Iterator[None]:
    """Hold the database's dbt build lock (DbtError at once when another build holds it)."""
    engine = get_engine(url)
    with tenancy.as_owner(), engine.connect() as conn:
        if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar():
            raise DbtError(f"another dbt build is running on {redact_url(engine.url)}: wait for it and run again")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()


def build(
    url: str | None = None,
    work: str | Path | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    variables: dict | None = None,
    quiet: bool = True,
    check: bool = True,
) -> dict:
    """`dbt build` (every model, then its tests, in dependency order): the summary (`summarise`); DbtError naming
    each failing model or test unless check=False."""
    command = ["build"] + (["--select", select] if select else []) + (["--full-refresh"] if full_refresh else [])
    start = time.perf_counter()
    url = url or get_url()
    with _one_build(url):
        result = _invoke(command, url, work_dir(work), variables, quiet)
    summary = summarise(result, time.perf_counter() - start)
    if check and not summary["success"]:
        shown = "; ".join(summary["problems"][:5]) + (" …" if len(summary["problems"]) > 5 else "")
        raise DbtError(f"dbt build failed: {shown or 'see ' + str(work_dir(work) / 'logs' / 'dbt.log')}")
    return summary


def docs(
    url: str | None = None, work: str | Path | None = None, out: str | Path | None = None, compile_sql: bool = True
) -> Path:
    """`dbt docs generate --static` rendered into out (default `reports/dbt-docs/`): index.html (one file that
    opens without a server), manifest.json and catalog.json. Returns the index. compile_sql=False right after a
    `build` in the same work dir: its manifest already holds every node's compiled SQL (3.5 s -> 0.5 s)."""
    target = work_dir(work) / "target"
    command = ["docs", "generate", "--static"] + ([] if compile_sql else ["--no-compile"])
    result = _invoke(command, url, work_dir(work), None, quiet=True)
    if not result.success:
        raise DbtError(f"dbt docs generate failed: {_one_line(result.exception) or 'see the dbt log'}")
    dest = Path(out) if out is not None else config.reports_dir() / "dbt-docs"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target / "static_index.html", dest / "index.html")
    for name in ("manifest.json", "catalog.json"):
        shutil.copyfile(target / name, dest / name)
    return dest / "index.html"


def _mart(name: str) -> str:
    if name not in MARTS:
        raise DbtError(f"no mart {name!r}: one of {', '.join(MARTS)}")
    return f"{MARTS_SCHEMA}.{name}"


def read_mart(engine: sa.Engine, name: str, limit: int | None = None) -> pd.DataFrame:
    """A mart's rows as the engine's role sees them: the current tenant's (row-level security)."""
    sql = f"SELECT * FROM {_mart(name)}" + (f" LIMIT {int(limit)}" if limit is not None else "")
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn)


def mart_rows(engine: sa.Engine) -> dict[str, int]:
    """Rows of each mart the current tenant sees (0 for a mart not built yet)."""
    counts = {}
    with engine.connect() as conn:
        for name in MARTS:
            if not conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _mart(name)}).scalar():
                counts[name] = 0
                continue
            counts[name] = int(conn.execute(sa.text(f"SELECT count(*) FROM {_mart(name)}")).scalar() or 0)
    return counts


def dbt_stage(data_dir: str | Path, docs_dir: str | Path | None = None, full_refresh: bool = False) -> dict:
    """The pipeline's dbt task: build the marts (every model and test), render the docs into docs_dir, count
    what the run's tenant sees in each mart. DbtError when a model or a test fails."""
    work = Path(data_dir) / "dbt"
    summary = build(work=work, full_refresh=full_refresh)
    if docs_dir is not None:
        summary["docs"] = str(docs(work=work, out=docs_dir, compile_sql=False))
    summary["tenant"] = tenancy.current()
    summary["marts"] = mart_rows(get_engine())
    return summary


# --- priceintel dbt -----------------------------------------------------------------------------


def cmd_dbt(args: argparse.Namespace) -> int:
    """`priceintel dbt build|docs`: print the summary (JSON) or where the docs are."""
    if args.action == "docs":
        index = docs(work=args.work_dir, out=args.out)
        print(f"dbt docs: {index} (open it in a browser; manifest.json and catalog.json beside it)", flush=True)
        return 0
    summary = build(work=args.work_dir, select=args.select, full_refresh=args.full_refresh, quiet=False)
    summary["marts"] = mart_rows(get_engine())
    print(json.dumps({k: v for k, v in summary.items() if k != "nodes"}, indent=2), flush=True)
    return 0


def add_parsers(sub: Any) -> None:
    """`priceintel dbt build|docs`."""
    p = sub.add_parser(
        "dbt",
        help="build the dbt marts (staging -> marts, with their tests) or render the dbt docs (docs/dbt.md)",
    )
    p.add_argument("action", choices=["build", "docs"], help="build: models and tests; docs: reports/dbt-docs/")
    p.add_argument("--select", default=None, help="dbt node selection (build only), e.g. 'mart_promotions+'")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the incremental fct_price_history whole")
    p.add_argument("--work-dir", default=None, help="profile, target/ and logs/ (default data/dbt/)")
    p.add_argument("--out", default=None, help="where docs go (default reports/dbt-docs/)")
    p.set_defaults(func=cmd_dbt)
