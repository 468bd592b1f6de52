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
from priceintel.pipeline import run


def _print(msg: str = "") -> None:
    print(msg, flush=True)


# --- db ---------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    """start | stop | status | url | migrate the database | refresh the apps' views."""
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
    elif args.action == "refresh":  # the apps' materialized views, after data loaded outside the pipeline
        from priceintel.apps import views as dashboard

        timings = dashboard.refresh(engine.get_engine())
        _print(
            f"app views refreshed in {sum(timings.values()):.1f} s: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    """Start the database if embedded and apply every migration."""
    args.action = "migrate"
    return cmd_db(args)


# --- demo -------------------------------------------------------------------------------


def _env() -> dict:
    return yaml.safe_load((config.PROJ_ROOT / "env.yaml").read_text())


def _world_dir(env: dict) -> Path:
    """The default demo world: under config.data_dir(), where the storefront registry lives too."""
    return config.demo_dir() / "world"


def _registry() -> Path:
    return config.demo_dir() / "storefronts.json"


def cmd_demo(args: argparse.Namespace) -> int:
    """init | serve | up | down the demo world and its storefronts."""
    from datetime import date

    from priceintel.demo import world as demo

    env = _env()
    world_dir = _world_dir(env)
    params = dict(
        n_products=args.products or int(env["n_products"]),
        n_days=args.days or int(env["days"]),
        seed=int(env["seed"]),
        start=date.fromisoformat(str(env["world_start"])),
    )
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
    from priceintel.demo import world as demo

    reg = _registry()
    if reg.exists():
        urls, handle = demo.ensure_storefronts(world_dir, registry=reg)
        if handle is None:
            return urls
        handle.stop()
    log = config.demo_dir() / "storefronts.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "priceintel.cli", "demo", "serve"],
            stdout=fh,
            stderr=fh,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:  # the server gave up (e.g. a port held by another checkout's shops)
            with open(log, "rb") as fh:
                fh.seek(start)
                lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
            last = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
            raise PriceIntelError(
                f"demo storefronts exited at start: {last.removeprefix('error: ')} "
                f"(ports {demo.DEFAULT_PORTS}; `priceintel demo down` stops this checkout's "
                f"shops; see {log})"
            )
        if reg.exists():
            urls, handle = demo.ensure_storefronts(world_dir, registry=reg)
            if handle is None:
                return urls
            handle.stop()
        time.sleep(0.3)
    raise PriceIntelError(f"demo storefronts did not start within {timeout:.0f}s; see {log}")


# --- scrape -----------------------------------------------------------------------------


def cmd_scrape(args: argparse.Namespace) -> int:
    """Scrape shops once (the demo storefronts by default) with a progress bar and a closing summary."""
    from datetime import date

    from priceintel.demo import world as demo
    from priceintel.scrape import Fetcher, RawArchive
    from priceintel.scrape.crawl import scrape_shops, set_demo_date, summarise

    handle = None
    if args.url:
        urls = {}
        for spec in args.url:
            name, sep, base = spec.partition("=")
            if not sep or not base.startswith(("http://", "https://")):
                raise PriceIntelError(f"--url wants RETAILER=http(s)://base, got {spec!r}")
            urls[name] = base
    else:
        env = _env()
        world_dir = _world_dir(env)
        demo.ensure_world(
            world_dir,
            n_products=int(env["n_products"]),
            n_days=int(env["days"]),
            seed=int(env["seed"]),
            start=date.fromisoformat(str(env["world_start"])),
        )
        urls, handle = demo.ensure_storefronts(world_dir, registry=_registry())
    retailers = args.retailer or list(urls)
    out = Path(args.out) if args.out else config.interim_dir() / "scrape"
    try:
        with Fetcher(archive=RawArchive(config.raw_dir()), render=args.render) as fetcher:
            if args.date and not args.url:
                for r in retailers:
                    if r in urls:
                        set_demo_date(urls[r], date.fromisoformat(args.date), fetcher)
            offers, errors = scrape_shops(
                urls,
                fetcher,
                retailers=retailers,
                item_ids=args.product,
                limit=args.limit,
                progress=not args.no_progress,
            )
    finally:
        if handle is not None:
            handle.stop()
    out.mkdir(parents=True, exist_ok=True)
    offers.to_parquet(out / "offers.parquet", index=False)
    errors.to_csv(out / "errors.csv", index=False)
    summary = summarise(offers, errors)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    kinds = ", ".join(f"{k} {v}" for k, v in summary["errors_by_kind"].items()) or "none"
    _print(
        f"pages {summary['pages']}  products {summary['products']}  prices {summary['prices']}  "
        f"errors {summary['errors']} ({kinds})"
    )
    _print(f"offers -> {out / 'offers.parquet'}; errors -> {out / 'errors.csv'}")
    return 0


# --- pipeline ---------------------------------------------------------------------------


def _parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise PriceIntelError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Run the whole pipeline (incremental: up-to-date tasks are skipped)."""
    env = run.build_env(args.env_file, _parse_sets(args.set))
    try:
        report = run.run_pipeline(env, force=args.force)
    except PriceIntelError as exc:
        run.record_outcome(env, "failed", str(exc))
        raise
    run.record_outcome(env, "success", None)
    _print(str(report))
    _print(f"\nreports: {env['reports_dir']}")
    return 0


def _fmt(value, spec: str = ".3f") -> str:
    """A figure for the summary, or n/a when it is missing (NaN is stored as null)."""
    return "n/a" if value is None else format(value, spec)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print where the results and apps are, and the headline figures."""
    env = run.build_env(args.env_file, {})
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
        _print(
            f"matching F1 vs truth:      {_fmt(m.get('f1'))} (precision {_fmt(m.get('precision'))}, "
            f"recall {_fmt(m.get('recall'))})"
        )
    f = s.get("forecast", {})
    if f:
        _print(
            f"forecast:                  {f.get('best_model')} MAE {_fmt(f.get('best_model_mae'))} vs "
            f"{f.get('best_baseline')} {_fmt(f.get('best_baseline_mae'))}"
        )
    e = s.get("elasticity", {})
    if "mae_vs_truth" in e:
        _print(
            f"elasticity MAE vs truth:   {_fmt(e.get('mae_vs_truth'))} "
            f"(95% CI coverage {_fmt(e.get('ci95_coverage'), '.0%')})"
        )
    apps = sorted(p.stem for p in (config.PROJ_ROOT / "notebooks" / "apps").glob("*.ipynb"))
    _print(f"quality report:            {reports / 'quality.html'}")
    _print(
        f"apps:                      make apps  ->  http://127.0.0.1:8866/ ({', '.join(apps)}); "
        "sign in (add a user once: priceintel users add NAME)"
    )
    _print("jupyterlab:                make lab")
    return 0


# --- apps -------------------------------------------------------------------------------


def voila_command(port: int, notebook_dir: Path | None = None) -> list[str]:
    """The voila command line that serves the apps folder on loopback."""
    apps = notebook_dir or config.PROJ_ROOT / "notebooks" / "apps"
    return [
        sys.executable,
        "-m",
        "voila",
        str(apps),
        f"--port={port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--show_tracebacks=False",
        "--VoilaConfiguration.file_allowlist=['.*\\.(png|jpg|gif|svg|css|js)']",
        "--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider",
    ]


def cmd_apps(args: argparse.Namespace) -> int:
    """Serve the Voila apps (blocks)."""
    from priceintel.db import engine

    os.environ.setdefault("DATABASE_URL", engine.get_url())
    from priceintel.apps import auth
    from priceintel.db import migrate

    migrate.upgrade()
    if not auth.count_users(engine.get_engine()):
        raise PriceIntelError(
            "apps: no app users yet: add one with `priceintel users add NAME`, then run `priceintel apps` again"
        )
    _print(f"apps: http://127.0.0.1:{args.port}/  (sign in; Ctrl-C to stop)")
    engine.dispose_engines()
    cmd = voila_command(args.port)
    # become the server: a stop signal (systemd, docker stop, kill) then stops Voila, never orphans it
    os.execv(cmd[0], cmd)
    return 0  # not reached


def cmd_lab(args: argparse.Namespace) -> int:
    """JupyterLab on notebooks/ (blocks): loopback, token, DATABASE_URL set to the workbench database."""
    import secrets

    from priceintel.db import engine
    from priceintel.pipeline import lab

    os.environ["DATABASE_URL"] = engine.get_url()
    token = os.environ.setdefault("JUPYTER_TOKEN", secrets.token_hex(24))
    engine.dispose_engines()
    _print(f"jupyterlab: http://127.0.0.1:{args.port}/lab?token={token}  (notebooks/; Ctrl-C to stop)")
    _print(f"database:   {engine.redact_url(os.environ['DATABASE_URL'])}")
    cmd = lab.lab_command(args.port, open_browser=args.browser)
    os.execv(cmd[0], cmd)
    return 0  # not reached


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line on stdin with --password-stdin, else typed twice at a prompt."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise PriceIntelError("users add: the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    """add | list | remove users of the apps (argon2 hashes in app_user)."""
    from priceintel.apps import auth
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    migrate.upgrade()
    eng = db_engine.get_engine()
    if args.action in ("add", "remove") and not args.name:
        raise PriceIntelError(f"users {args.action} needs a NAME")
    if args.action == "add":
        auth.check_username(args.name)
        created = auth.add_user(eng, args.name, _read_password(args), replace=args.replace)
        _print(f"user {args.name} {'added' if created else 'password replaced'}")
    elif args.action == "remove":
        auth.remove_user(eng, args.name)
        _print(f"user {args.name} removed")
    else:
        df = auth.list_users(eng)
        _print(df.to_string(index=False) if len(df) else "no users: add one with `priceintel users add NAME`")
    return 0


# --- eval -------------------------------------------------------------------------------


def cmd_eval_matching(args: argparse.Namespace) -> int:
    """Print one JSON line {precision, recall, f1, seconds} for a Magellan-layout benchmark."""
    from priceintel.match.benchmark import evaluate_dir

    res = evaluate_dir(args.dir)
    keys = list(res) if args.details else ["precision", "recall", "f1", "seconds"]
    _print(json.dumps({k: res[k] for k in keys}))
    return 0


def cmd_eval_pages(args: argparse.Namespace) -> int:
    """Print one JSON line {n, price, sku, availability} (precision/recall/f1 each) for a pages DIR."""
    from priceintel.scrape.evaluate import evaluate_pages

    res = evaluate_pages(args.dir)
    out = {"n": res["n"]}
    for field in ("price", "sku", "availability"):
        out[field] = {m: res[field][m] for m in ("precision", "recall", "f1")}
    _print(json.dumps(out))
    return 0


def cmd_eval_prices(args: argparse.Namespace) -> int:
    """Print one JSON line {n, accuracy, amount_accuracy} for a price-string cases CSV."""
    from priceintel.scrape.evaluate import evaluate_prices

    _print(json.dumps(evaluate_prices(args.cases)))
    return 0


def cmd_eval_forecast(args: argparse.Namespace) -> int:
    """Print one JSON line: the tournament's goals per lead time on a long CSV of price series."""
    from priceintel.forecast.evaluate import evaluate_csv

    regs = [r for r in (args.regressors or "").split(",") if r]
    res = evaluate_csv(
        args.file,
        id_col=args.id_col,
        ds_col=args.ds_col,
        y_col=args.y_col,
        regressors=regs,
        freq=args.freq,
        h=args.h,
        n_windows=args.windows,
        step=args.step,
        models=args.models,
        interval_shape=args.interval_shape,
        progress=args.progress,
        details=args.details,
    )
    _print(json.dumps(res))
    return 0


# --- alerts and schedule ----------------------------------------------------------------


def cmd_schedule(args: argparse.Namespace) -> int:
    """Run the pipeline on a cron schedule (or once now), or export it as an Airflow DAG."""
    from priceintel.pipeline import schedule

    if args.cron:
        schedule.next_runs(args.cron)  # a bad expression fails before anything runs
    env = run.build_env(args.env_file, _parse_sets(args.set))
    if args.export_airflow:
        path = Path(args.export_airflow)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            schedule.airflow_dag(
                args.env_file,
                cron=args.cron or "0 6 * * *",
                env=env,
                retries=args.retries,
                retry_delay=int(args.backoff),
            )
        )
        _print(f"Airflow DAG written to {path}")
        return 0
    opts = dict(retries=args.retries, backoff=args.backoff, env_file=args.env_file)
    if args.once or not args.cron:
        res = schedule.run_once(env, trigger="cron" if args.cron else "manual", cron=args.cron, **opts)
        _print(
            f"run #{res['run_id']} {res['status']}: " + ", ".join(f"{k} {v['status']}" for k, v in res["tasks"].items())
        )
        return 0
    schedule.serve(args.cron, env, max_runs=args.max_runs, log=_print, **opts)
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    """Build one pipeline task (what each Airflow task runs)."""
    from priceintel.pipeline import schedule

    schedule.run_task(run.build_env(args.env_file, _parse_sets(args.set)), args.name)
    _print(f"task {args.name} done")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """list | ack | resolve | check-rules | run alerts."""
    from priceintel.alerts import rules as alerts

    if args.action == "check-rules":
        rules = alerts.load_rules(args.rules)
        _print(
            f"{len(rules.rules)} rule(s) valid: "
            + ", ".join(f"{r.name}{'' if r.enabled else ' (disabled)'}" for r in rules.rules)
        )
        return 0
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    eng = db_engine.get_engine()
    migrate.upgrade()
    if args.action == "list":
        df = alerts.list_alerts(eng, state=args.state, limit=args.limit)
        _print(df.drop(columns=["dedup_key", "created_at"]).to_string(index=False) if len(df) else "no alerts")
    elif args.action in ("ack", "resolve"):
        if not args.ids:
            raise PriceIntelError(f"alerts {args.action} needs alert ids")
        n = alerts.set_state(eng, args.ids, "acknowledged" if args.action == "ack" else "resolved")
        _print(f"{n} alert(s) updated")
    elif args.action == "run":
        rules = alerts.load_rules(args.rules) if args.rules else None
        _print(json.dumps(alerts.run_alerts(eng, rules), default=str, indent=2))
    return 0


# --- main -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="priceintel", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("db", help="embedded PostgreSQL and migrations")
    d.add_argument("action", choices=["start", "stop", "status", "url", "migrate", "refresh"])
    d.set_defaults(func=cmd_db)
    i = sub.add_parser("init-db", help="start the database if embedded and migrate it")
    i.set_defaults(func=cmd_init_db)

    m = sub.add_parser("demo", help="demo world and loopback storefronts")
    m.add_argument("action", choices=["init", "serve", "up", "down"])
    m.add_argument("--products", type=int, default=None)
    m.add_argument("--days", type=int, default=None)
    m.set_defaults(func=cmd_demo)

    sc = sub.add_parser("scrape", help="scrape shops once (demo storefronts by default), with a summary")
    sc.add_argument("--retailer", action="append", help="only this retailer (repeatable)")
    sc.add_argument("--product", action="append", metavar="ITEM_ID", help="only this item id (repeatable)")
    sc.add_argument("--limit", type=int, default=None, help="at most N products per retailer")
    sc.add_argument("--date", default=None, help="demo day to show (YYYY-MM-DD)")
    sc.add_argument("--url", action="append", metavar="RETAILER=BASE_URL", help="scrape this shop instead")
    sc.add_argument("--out", default=None, help="folder for offers.parquet, errors.csv, summary.json")
    sc.add_argument("--render", action="store_true", help="render pages with headless Chromium")
    sc.add_argument("--no-progress", action="store_true", help="no progress bar")
    sc.set_defaults(func=cmd_scrape)

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

    lb = sub.add_parser("lab", help="JupyterLab on the notebooks (loopback, token; DATABASE_URL set)")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--browser", action="store_true", help="also open a web browser")
    lb.set_defaults(func=cmd_lab)

    u = sub.add_parser("users", help="who may open the apps: add NAME | list | remove NAME")
    u.add_argument("action", choices=["add", "list", "remove"])
    u.add_argument("name", nargs="?", default=None)
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    u.add_argument("--replace", action="store_true", help="add: set a new password for an existing user")
    u.set_defaults(func=cmd_users)

    e = sub.add_parser("eval", help="evaluate a component on a benchmark")
    esub = e.add_subparsers(dest="eval_kind", required=True)
    em = esub.add_parser("matching", help="Magellan-layout DIR: fit on train, threshold on valid, score test")
    em.add_argument("dir", help="folder with tableA.csv, tableB.csv, train.csv, valid.csv, test.csv")
    em.add_argument("--details", action="store_true", help="also print threshold, columns and pair counts")
    em.set_defaults(func=cmd_eval_matching)
    ep = esub.add_parser("pages", help="extract saved product pages offline and score price/sku/availability")
    ep.add_argument("dir", help="folder with html/<page_id>.html.gz and truth.csv")
    ep.set_defaults(func=cmd_eval_pages)
    epr = esub.add_parser("prices", help="parse price strings and score amount + currency")
    epr.add_argument(
        "cases", help="CSV with raw_string, currency_hint, decimal_separator, expected_amount, expected_currency"
    )
    epr.set_defaults(func=cmd_eval_prices)
    ef = esub.add_parser(
        "forecast", help="forecast tournament on a long CSV of price series: chosen vs naive, coverage, per lead time"
    )
    ef.add_argument("file", help="CSV with one row per series and date (columns unique_id, ds, y by default)")
    ef.add_argument("--id-col", default="unique_id", help="series id column (default unique_id)")
    ef.add_argument("--ds-col", default="ds", help="date column (default ds)")
    ef.add_argument("--y-col", default="y", help="price column (default y)")
    ef.add_argument("--freq", default=None, help="D, W, M, Q or Y (default: inferred from the dates)")
    ef.add_argument("--h", type=int, default=None, help="horizon in steps (default 28 D, 13 W, 3 M, 2 Q, 1 Y)")
    ef.add_argument(
        "--windows", type=int, default=None, help="rolling origins (default: as many as the history allows, at most 8)"
    )
    ef.add_argument("--step", type=int, default=None, help="steps between origins (default max(1, h // 3))")
    ef.add_argument(
        "--models",
        choices=["fast", "full"],
        default="full",
        help="full adds AutoARIMA (default); fast is for many long series",
    )
    ef.add_argument("--regressors", default="", help="comma-separated columns known ahead, e.g. planned promo flags")
    ef.add_argument(
        "--interval-shape",
        default=None,
        choices=["symmetric", "equal", "shortest", "auto"],
        help="conformal interval shape (default symmetric)",
    )
    ef.add_argument("--progress", action="store_true", help="progress bars on stderr")
    ef.add_argument("--details", action="store_true", help="also print every model's MAE/MASE/coverage")
    ef.set_defaults(func=cmd_eval_forecast)

    sc = sub.add_parser("schedule", help="run the pipeline on a cron schedule with retries, lock and history")
    sc.add_argument("--cron", default=None, help="5-field cron expression, e.g. '0 6 * * *' (daily 06:00 UTC)")
    sc.add_argument("--once", action="store_true", help="one run now (what cron/systemd call), then exit")
    sc.add_argument("--max-runs", type=int, default=None, help="stop after this many scheduled runs")
    sc.add_argument("--retries", type=int, default=2, help="retries of a failed task (default 2)")
    sc.add_argument("--backoff", type=float, default=60.0, help="seconds before the first retry; doubles")
    sc.add_argument("--env-file", default=None)
    sc.add_argument("--set", action="append", metavar="KEY=VALUE")
    sc.add_argument("--export-airflow", metavar="PATH", help="write an Airflow DAG file and exit")
    sc.set_defaults(func=cmd_schedule)

    tk = sub.add_parser("task", help="build one pipeline task (used by the Airflow DAG)")
    tk.add_argument("name")
    tk.add_argument("--env-file", default=None)
    tk.add_argument("--set", action="append", metavar="KEY=VALUE")
    tk.set_defaults(func=cmd_task)

    al = sub.add_parser("alerts", help="list, acknowledge or resolve alerts; check the rule file")
    al.add_argument("action", choices=["list", "ack", "resolve", "check-rules", "run"])
    al.add_argument("ids", nargs="*", type=int)
    al.add_argument("--state", default=None, choices=["new", "acknowledged", "resolved"])
    al.add_argument("--limit", type=int, default=50)
    al.add_argument(
        "--rules", default=None, help="rule file (default PRICEINTEL_ALERT_RULES or config/alert_rules.yaml)"
    )
    al.set_defaults(func=cmd_alerts)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: a clear one-line error and exit code 2 for any PriceIntelError."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except PriceIntelError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (OSError, ValueError, yaml.YAMLError) as exc:  # files, dates, YAML: say what, not a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
