"""The `priceintel` command: database, demo world, pipeline runs and apps."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from priceintel import PriceIntelError, config


def _print(msg: str = "") -> None:
    print(msg, flush=True)


# --- db ---------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    """start | stop | status | url | migrate the database."""
    from priceintel.db import engine, migrate, server

    if args.action == "start":
        url = server.start_embedded()
        _print(f"embedded PostgreSQL running; data in {config.pg_dir()}")
        _print(f"url: {url}")
    elif args.action == "stop":
        server.stop_embedded()
        _print("embedded PostgreSQL stopped")
    elif args.action == "status":
        _print(json.dumps(server.status(), indent=2, default=str))
    elif args.action == "url":
        _print(engine.get_url())
    elif args.action == "migrate":
        eng = engine.get_engine()
        engine.check_connection(eng)
        migrate.upgrade()
        _print(f"schema at revision {migrate.current()}")
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    """Start the database if embedded and apply every migration."""
    args.action = "migrate"
    return cmd_db(args)


# --- demo -------------------------------------------------------------------------------


def _env() -> dict:
    return yaml.safe_load((config.PROJ_ROOT / "env.yaml").read_text())


def _world_dir(env: dict) -> Path:
    return (config.PROJ_ROOT / env["data_dir"] / "demo" / "world").resolve()


def _registry() -> Path:
    return config.demo_dir() / "storefronts.json"


def cmd_demo(args: argparse.Namespace) -> int:
    """init | serve | up | down the demo world and its storefronts."""
    from datetime import date

    from priceintel import demo

    env = _env()
    world_dir = _world_dir(env)
    params = dict(n_products=args.products or int(env["n_products"]), n_days=args.days or int(env["days"]),
                  seed=int(env["seed"]), start=date.fromisoformat(str(env["world_start"])))
    if args.action in ("init", "up"):
        world = demo.ensure_world(world_dir, **params)
        _print(f"demo world: {len(world.products)} products, {world.params['n_days']} days -> {world_dir}")
    if args.action == "serve":
        demo.ensure_world(world_dir, **params)
        demo.serve(world_dir, registry=_registry())
        return 0
    if args.action == "up":
        urls = _start_background_storefronts(world_dir)
        for retailer, url in urls.items():
            _print(f"storefront {retailer:8s} {url}")
    if args.action == "down":
        reg = _registry()
        if reg.exists():
            pid = json.loads(reg.read_text()).get("pid")
            if pid:
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
            reg.unlink(missing_ok=True)
            _print("storefronts stopped")
        else:
            _print("no storefronts running")
    return 0


def _start_background_storefronts(world_dir: Path, timeout: float = 30.0) -> dict:
    """Start `priceintel demo serve` detached unless live storefronts already serve this world."""
    from priceintel import demo

    reg = _registry()
    if reg.exists():
        urls, handle = demo.ensure_storefronts(world_dir, registry=reg)
        if handle is None:
            return urls
        handle.stop()
    log = config.demo_dir() / "storefronts.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        subprocess.Popen([sys.executable, "-m", "priceintel.cli", "demo", "serve"], stdout=fh, stderr=fh,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if reg.exists():
            urls, handle = demo.ensure_storefronts(world_dir, registry=reg)
            if handle is None:
                return urls
            handle.stop()
        time.sleep(0.3)
    raise PriceIntelError(f"demo storefronts did not start within {timeout:.0f}s; see {log}")


# --- pipeline ---------------------------------------------------------------------------


def _parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise PriceIntelError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_env(env_file: str | None, sets: dict) -> dict:
    """Pipeline env: env.yaml (or env_file) plus overrides, with paths made absolute."""
    path = Path(env_file) if env_file else config.PROJ_ROOT / "env.yaml"
    if not path.exists():
        raise PriceIntelError(f"env file not found: {path}")
    env = yaml.safe_load(path.read_text()) or {}
    base = yaml.safe_load((config.PROJ_ROOT / "env.yaml").read_text())
    unknown = set(sets) - set(base)
    if unknown:
        raise PriceIntelError(f"unknown pipeline setting(s) {sorted(unknown)}; known: {sorted(base)}")
    env.update(sets)
    for key in ("data_dir", "reports_dir"):
        p = Path(str(env[key]))
        env[key] = str(p if p.is_absolute() else (path.parent / p).resolve())
    return env


def run_pipeline(env: dict, force: bool = False):
    """Build the Ploomber DAG with this env; raise PriceIntelError with the failing task's message."""
    from ploomber.exceptions import DAGBuildError
    from ploomber.spec import DAGSpec

    spec = DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=env)
    dag = spec.to_dag()
    try:
        return dag.build(force=force)
    except DAGBuildError as exc:
        raise PriceIntelError(f"pipeline failed: {_root_cause(exc)}") from None


def _root_cause(exc: BaseException) -> str:
    """The most specific message in an exception chain (the notebook's own error when present)."""
    text = str(exc)
    for line in text.splitlines():
        for marker in ("PriceIntelError", "ParameterError", "DatabaseError", "LoadError", "QualityError",
                       "ConfigError", "ExtractionError"):
            if marker in line and ":" in line:
                return line.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else repr(exc)


def record_outcome(env: dict, status: str, error: str | None) -> Path:
    """Write reports/last_run.json and, when the database answers, a pipeline_run row."""
    from datetime import datetime, timezone

    outcome = {"status": status, "error": error, "finished_at": datetime.now(timezone.utc).isoformat(),
               "env": env}
    path = Path(env["reports_dir"]) / "last_run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome, indent=2, default=str) + "\n")
    try:
        from priceintel.db import engine as db_engine
        from priceintel.db import load, migrate

        eng = db_engine.get_engine()
        db_engine.check_connection(eng)
        migrate.upgrade()
        with eng.begin() as conn:
            run_id = load.start_run(conn, "pipeline", env)
            load.finish_run(conn, run_id, status, {}, {"error": error} if error else {})
    except PriceIntelError as exc:  # the database itself may be what failed
        print(f"warning: run outcome not recorded in the database: {exc}", file=sys.stderr)
    return path


def cmd_run(args: argparse.Namespace) -> int:
    """Run the whole pipeline (incremental: up-to-date tasks are skipped)."""
    env = build_env(args.env_file, _parse_sets(args.set))
    try:
        report = run_pipeline(env, force=args.force)
    except PriceIntelError as exc:
        record_outcome(env, "failed", str(exc))
        raise
    record_outcome(env, "success", None)
    _print(str(report))
    _print(f"\nreports: {env['reports_dir']}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print where the results and apps are, and the headline figures."""
    env = build_env(args.env_file, {})
    reports = Path(env["reports_dir"])
    summary_path = reports / "summary.json"
    if not summary_path.exists():
        raise PriceIntelError(f"no summary at {summary_path}: run `priceintel run` first")
    s = json.loads(summary_path.read_text())
    _print("=" * 72)
    _print("Price Intelligence Workbench: demo run complete")
    _print("=" * 72)
    _print(f"executed notebooks (HTML): {reports}/0[1-6]-*.html")
    _print(f"summary:                   {summary_path}")
    try:
        from priceintel.db import engine as db_engine
        from priceintel.db import queries

        counts = queries.table_counts(db_engine.get_engine())
    except PriceIntelError:
        counts = s.get("load")
    _print(f"database rows:             {counts}")
    m = s.get("match", {})
    if m:
        _print(f"matching F1 vs truth:      {m.get('f1'):.3f} (precision {m.get('precision'):.3f}, recall {m.get('recall'):.3f})")
    f = s.get("forecast", {})
    if f:
        _print(f"forecast:                  best {f['best_model']} MAE {f['best_model_mae']:.3f} vs "
               f"{f['best_baseline']} {f['best_baseline_mae']:.3f}")
    e = s.get("elasticity", {})
    if "mae_vs_truth" in e:
        _print(f"elasticity MAE vs truth:   {e['mae_vs_truth']:.3f} (95% CI coverage {e['ci95_coverage']:.0%})")
    _print("apps:                      make apps  ->  http://127.0.0.1:8866/ (price_monitor)")
    _print("jupyterlab:                make lab")
    return 0


# --- apps -------------------------------------------------------------------------------


def voila_command(port: int, notebook_dir: Path | None = None) -> list[str]:
    """The voila command line that serves the apps folder on loopback."""
    apps = notebook_dir or config.PROJ_ROOT / "notebooks" / "apps"
    return [sys.executable, "-m", "voila", str(apps), f"--port={port}", "--no-browser",
            "--Voila.ip=127.0.0.1", "--show_tracebacks=False",
            "--VoilaConfiguration.file_allowlist=['.*\\.(png|jpg|gif|svg|css|js)']"]


def cmd_apps(args: argparse.Namespace) -> int:
    """Serve the Voila apps (blocks)."""
    from priceintel.db import engine

    os.environ.setdefault("DATABASE_URL", engine.get_url())
    _print(f"apps: http://127.0.0.1:{args.port}/  (Ctrl-C to stop)")
    return subprocess.call(voila_command(args.port))


# --- main -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="priceintel", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("db", help="embedded PostgreSQL and migrations")
    d.add_argument("action", choices=["start", "stop", "status", "url", "migrate"])
    d.set_defaults(func=cmd_db)
    i = sub.add_parser("init-db", help="start the database if embedded and migrate it")
    i.set_defaults(func=cmd_init_db)

    m = sub.add_parser("demo", help="demo world and loopback storefronts")
    m.add_argument("action", choices=["init", "serve", "up", "down"])
    m.add_argument("--products", type=int, default=None)
    m.add_argument("--days", type=int, default=None)
    m.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the pipeline (scrape, clean, match, load, model, evaluate)")
    r.add_argument("--env-file", default=None, help="pipeline settings (default env.yaml)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting")
    r.add_argument("--force", action="store_true", help="re-run every task")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("summary", help="where results are, and the headline figures")
    s.add_argument("--env-file", default=None)
    s.set_defaults(func=cmd_summary)

    a = sub.add_parser("apps", help="serve the Voila apps")
    a.add_argument("--port", type=int, default=8866)
    a.set_defaults(func=cmd_apps)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: a clear one-line error and exit code 2 for any PriceIntelError."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except PriceIntelError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
