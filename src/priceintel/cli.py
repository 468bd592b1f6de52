"""The `priceintel` command: database, demo world, pipeline runs and apps."""

# Argument parsing only (the docstring above is the --help description): each `cmd_*` hands its arguments to the
# package that does the work and prints what it returns (pipeline.shops, pipeline.run, pipeline.summary,
# pipeline.schedule, apps.serve, apps.auth, alerts, the evaluators).

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from priceintel import PriceIntelError, compute, config
from priceintel.api.commands import add_parsers as _add_identity
from priceintel.db.history import add_parsers as _add_listing_history
from priceintel.ingest.commands import add_parsers as _add_ingest
from priceintel.ingest.discover import add_parsers as _add_discover
from priceintel.ingest.provenance import add_parsers as _add_lineage
from priceintel.ops.backup import add_parsers as _add_backup
from priceintel.ops.probe import add_parsers as _add_probe
from priceintel.pipeline import run
from priceintel.pipeline.dbt import add_parsers as _add_dbt
from priceintel.scrape.commands import add_parsers as _add_preview


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
    elif args.action == "refresh":  # the apps' views (loads keep them; --full rebuilds the price rollups)
        from priceintel.apps import views as dashboard

        timings = dashboard.refresh(engine.get_engine(), full=args.full)
        _print(
            f"app views refreshed in {sum(timings.values()):.1f} s: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    """Start the database if embedded and apply every migration."""
    args.action = "migrate"
    return cmd_db(args)


# --- demo and scrape ----------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """init | serve | up | down the demo world and its storefronts."""
    from priceintel.pipeline import shops

    shops.demo(args.action, args.products, args.days, log=_print)
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    """Scrape shops once (the demo storefronts by default) with a progress bar and a closing summary."""
    from priceintel.pipeline import shops

    shops.scrape(
        args.url,
        retailers=args.retailer,
        item_ids=args.product,
        limit=args.limit,
        day=args.date,
        out=args.out,
        render=args.render,
        progress=not args.no_progress,
        log=_print,
    )
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
    from priceintel.obs import logs

    env = run.build_env(args.env_file, _parse_sets(args.set))
    run.check_until(args.until)  # a misspelt task is no failed run
    with logs.context(run_id=logs.new_run_id()):  # the run's id in its log lines, tasks and last_run.json
        try:
            report = run.run_pipeline(env, force=args.force, until=args.until)
        except PriceIntelError as exc:
            run.record_outcome(env, "failed", str(exc), until=args.until)
            raise
        run.record_outcome(env, "success", None, until=args.until)
    _print(str(report))
    _print(f"\nreports: {env['reports_dir']}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print where the results and apps are, and the headline figures."""
    from priceintel.pipeline.summary import summary_lines

    for line in summary_lines(run.build_env(args.env_file, {})):
        _print(line)
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Run the pipeline on a cron schedule (or once now), or export it as an Airflow DAG."""
    from priceintel.pipeline import schedule

    if args.cron:
        schedule.next_runs(args.cron)  # a bad expression fails before anything runs
    env = run.build_env(args.env_file, _parse_sets(args.set))
    run.check_until(args.until)
    if args.export_airflow:
        if args.until:
            raise PriceIntelError("--until and --export-airflow: the DAG holds every task (trigger one in Airflow)")
        shards = False if args.no_shards else None
        path = schedule.export_airflow(
            args.export_airflow,
            args.env_file,
            args.cron,
            env,
            args.retries,
            args.backoff,
            shards=shards,
            cluster=compute.resolve(args.cluster) if args.cluster else None,
        )
        _print(f"Airflow DAG written to {path}")
        return 0
    opts = dict(retries=args.retries, backoff=args.backoff, env_file=args.env_file, until=args.until)
    if args.once or not args.cron:
        res = schedule.run_once(env, trigger="cron" if args.cron else "manual", cron=args.cron, **opts)
        _print(schedule.run_line(res))
        return 0
    schedule.serve(args.cron, env, max_runs=args.max_runs, log=_print, **opts)
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    """Build one pipeline task (what each Airflow task runs), or one shop's shard of the scrape task."""
    from priceintel.pipeline import shards

    env = run.build_env(args.env_file, _parse_sets(args.set))
    _print(shards.cli_task(env, args.name, args.shard, args.run_key, args.shops))
    return 0


# --- apps -------------------------------------------------------------------------------


def cmd_apps(args: argparse.Namespace) -> int:
    """Serve the Voila apps (blocks)."""
    from priceintel.apps import serve
    from priceintel.db import engine

    if args.pool is not None:
        os.environ[serve.POOL_ENV] = args.pool
    # where the warm kernels reach the server (loopback unless it listens on one address only)
    os.environ["VOILA_APP_IP"] = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    serve.prepare_apps()
    pools = serve.pool_sizes()
    warm = ", ".join(f"{app} {n}" for app, n in pools.items() if n) or "none"
    _print(f"apps: http://{args.host}:{args.port}/  (sign in; Ctrl-C to stop; warm kernels: {warm})")
    engine.dispose_engines()
    cmd = serve.voila_command(args.port, host=args.host)
    # become the server: a stop signal (systemd, docker stop, kill) then stops Voila, never orphans it
    os.execv(cmd[0], cmd)
    return 0  # not reached


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the REST API (blocks)."""
    from priceintel.api import serve

    _print(f"api: http://{args.host}:{args.port}/docs  (API keys: `priceintel keys create NAME`; Ctrl-C to stop)")
    serve.run(args.host, args.port, args.workers)
    return 0


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


# --- eval -------------------------------------------------------------------------------


def cmd_eval_matching(args: argparse.Namespace) -> int:
    """Print one JSON line {precision, recall, f1, seconds} for a Magellan-layout benchmark."""
    from priceintel.match.benchmark import evaluate_dir, headline

    _print(json.dumps(headline(evaluate_dir(args.dir), args.details)))
    return 0


def cmd_eval_pages(args: argparse.Namespace) -> int:
    """Print one JSON line {n, price, sku, availability} (precision/recall/f1 each) for a pages DIR."""
    from priceintel.scrape.evaluate import evaluate_pages, pages_headline

    _print(json.dumps(pages_headline(evaluate_pages(args.dir))))
    return 0


def cmd_eval_prices(args: argparse.Namespace) -> int:
    """Print one JSON line {n, accuracy, amount_accuracy} for a price-string cases CSV."""
    from priceintel.scrape.evaluate import evaluate_prices

    _print(json.dumps(evaluate_prices(args.cases)))
    return 0


#: evaluate_csv keyword -> `eval forecast` option
_EVAL_FORECAST_OPTIONS = {
    **{k: k for k in ("id_col", "ds_col", "y_col", "freq", "h", "step", "models", "interval_shape")},
    **{"n_windows": "windows", "progress": "progress", "details": "details", "refit": "refit"},
}


def cmd_eval_forecast(args: argparse.Namespace) -> int:
    """Print one JSON line: the tournament's goals per lead time on a long CSV of price series."""
    from priceintel.forecast.evaluate import evaluate_csv

    regs = [r for r in (args.regressors or "").split(",") if r]
    options = {name: getattr(args, flag) for name, flag in _EVAL_FORECAST_OPTIONS.items()}
    _print(json.dumps(evaluate_csv(args.file, regressors=regs, **options)))
    return 0


# --- alerts -----------------------------------------------------------------------------


def cmd_alerts(args: argparse.Namespace) -> int:
    """list | ack | resolve | check-rules | run alerts."""
    from priceintel.alerts import rules

    if args.action == "check-rules":
        from priceintel.alerts import notify

        checked = rules.load_rules(args.rules)
        _print(rules.describe_rules(checked))
        _print(rules.describe_channels(checked, list(notify.from_settings())))
        return 0
    from priceintel.alerts import deliver, store
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate

    eng = db_engine.get_engine()
    migrate.upgrade()
    if args.action == "list":
        _print(store.alerts_text(store.list_alerts(eng, state=args.state, limit=args.limit)))
    elif args.action in ("ack", "resolve"):
        if not args.ids:
            raise PriceIntelError(f"alerts {args.action} needs alert ids")
        n = store.set_state(eng, args.ids, "acknowledged" if args.action == "ack" else "resolved")
        _print(f"{n} alert(s) updated")
    elif args.action == "run":
        ruleset = rules.load_rules(args.rules) if args.rules else None
        _print(json.dumps(deliver.run_alerts(eng, ruleset), default=str, indent=2))
    return 0


# --- parser -----------------------------------------------------------------------------


def _add_db(sub) -> None:
    d = sub.add_parser("db", help="embedded PostgreSQL and migrations")
    d.add_argument("action", choices=["start", "stop", "status", "url", "migrate", "refresh"])
    d.add_argument("--full", action="store_true", help="refresh: rebuild the price rollups whole")
    d.set_defaults(func=cmd_db)
    i = sub.add_parser("init-db", help="start the database if embedded and migrate it")
    i.set_defaults(func=cmd_init_db)


def _add_shops(sub) -> None:
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


def _cluster_option(parser) -> None:
    """`--cluster ADDRESS`: where the forecast backtests run (set for the task notebooks by `main`)."""
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the forecast backtests on this Dask scheduler (tcp://host:8786; default $PRICEINTEL_DASK_CLUSTER, "
        "else this machine)",
    )


def _until_option(parser, builds: str, example: str) -> None:
    """`--until TASK`: build only TASK and the tasks upstream of it (`example`: what that is good for)."""
    help_ = f"{builds} only TASK and the tasks it needs ({example})"
    parser.add_argument("--until", metavar="TASK", default=None, help=help_)


def _add_pipeline(sub) -> None:
    r = sub.add_parser(
        "run", help="run the pipeline (world, scrape, clean, match, load, forecast, elasticity, evaluate)"
    )
    r.add_argument("--env-file", default=None, help="pipeline settings (default env.yaml)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting")
    r.add_argument("--force", action="store_true", help="re-run every task")
    _until_option(r, "build", "e.g. load: prices fetched, checked, stored")
    _cluster_option(r)
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("summary", help="where results are, and the headline figures")
    s.add_argument("--env-file", default=None)
    s.set_defaults(func=cmd_summary)


def _add_apps(sub) -> None:
    a = sub.add_parser("apps", help="serve the Voila apps")
    a.add_argument("--port", type=int, default=8866)
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback; 0.0.0.0 in containers)")
    a.add_argument(
        "--pool",
        default=None,
        metavar="SPEC",
        help="warm kernels kept per app: N for every app, app=N pairs, or both ('1,ops=0'; 0 turns the "
        "pool off; default $PRICEINTEL_APPS_POOL, else one for the landing page and the four stakeholder apps; "
        "docs/apps.md)",
    )
    a.set_defaults(func=cmd_apps)

    lb = sub.add_parser("lab", help="JupyterLab on the notebooks (loopback, token; DATABASE_URL set)")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--browser", action="store_true", help="also open a web browser")
    lb.set_defaults(func=cmd_lab)

    ap = sub.add_parser("api", help="serve the REST API (loopback; OpenAPI docs at /docs)")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port (one a core)")
    ap.set_defaults(func=cmd_api)


def _add_eval(sub) -> None:
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
    _add_eval_forecast(esub)


def _add_eval_forecast(esub) -> None:
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
        "--no-refit",
        dest="refit",
        action="store_false",
        help="fit the statsforecast models once per series and filter them forward (about 3.7x faster, less "
        "accurate); default: refit at every origin",
    )
    ef.add_argument(
        "--interval-shape",
        default=None,
        choices=["symmetric", "equal", "shortest", "auto"],
        help="conformal interval shape (default symmetric)",
    )
    ef.add_argument("--progress", action="store_true", help="progress bars on stderr")
    _cluster_option(ef)
    ef.add_argument("--details", action="store_true", help="also print every model's MAE/MASE/coverage")
    ef.set_defaults(func=cmd_eval_forecast)


def _add_schedule(sub) -> None:
    sc = sub.add_parser("schedule", help="run the pipeline on a cron schedule with retries, lock and history")
    sc.add_argument("--cron", default=None, help="5-field cron expression, e.g. '0 6 * * *' (daily 06:00 UTC)")
    sc.add_argument("--once", action="store_true", help="one run now (what cron/systemd call), then exit")
    sc.add_argument("--max-runs", type=int, default=None, help="stop after this many scheduled runs")
    sc.add_argument("--retries", type=int, default=2, help="retries of a failed task (default 2)")
    sc.add_argument("--backoff", type=float, default=60.0, help="seconds before the first retry; doubles")
    sc.add_argument("--env-file", default=None)
    sc.add_argument("--set", action="append", metavar="KEY=VALUE")
    sc.add_argument("--export-airflow", metavar="PATH", help="write an Airflow DAG file and exit")
    _until_option(sc, "each run builds", "e.g. load: hourly prices, no models")
    _cluster_option(sc)
    sc.add_argument(
        "--no-shards", action="store_true", help="export: one scrape task, not one per shop merged by `scrape`"
    )
    sc.set_defaults(func=cmd_schedule)

    tk = sub.add_parser("task", help="build one pipeline task (used by the Airflow DAG)")
    tk.add_argument("name")
    tk.add_argument("--env-file", default=None)
    tk.add_argument("--set", action="append", metavar="KEY=VALUE")
    tk.add_argument("--shard", metavar="SHOP", help="scrape: only this shop, into its shard of run --run-key")
    tk.add_argument("--run-key", metavar="KEY", help="scrape: the run whose shards to write or merge (run_id)")
    tk.add_argument("--shops", metavar="A,B", help="scrape --run-key: the shops whose shards the merge expects")
    _cluster_option(tk)
    tk.set_defaults(func=cmd_task)


def _add_alerts(sub) -> None:
    al = sub.add_parser("alerts", help="list, acknowledge or resolve alerts; check the rule file")
    al.add_argument("action", choices=["list", "ack", "resolve", "check-rules", "run"])
    al.add_argument("ids", nargs="*", type=int)
    al.add_argument("--state", default=None, choices=["new", "acknowledged", "resolved"])
    al.add_argument("--limit", type=int, default=50)
    al.add_argument(
        "--rules", default=None, help="rule file (default PRICEINTEL_ALERT_RULES or config/alert_rules.yaml)"
    )
    al.set_defaults(func=cmd_alerts)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for every subcommand (in the order --help lists them)."""
    p = argparse.ArgumentParser(prog="priceintel", description=__doc__)
    p.add_argument(
        "--tenant",
        dest="global_tenant",
        default=None,
        help="work in this tenant (as $PRICEINTEL_TENANT does; default: the database's default tenant, or `demo` "
        "for a run on the demo world)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_db,
        _add_shops,
        _add_ingest,
        _add_lineage,
        _add_listing_history,
        _add_identity,
        _add_preview,
        _add_discover,
        _add_pipeline,
        _add_dbt,
        _add_apps,
        _add_eval,
        _add_schedule,
        _add_alerts,
        _add_probe,
        _add_backup,
    ):
        add(sub)
    return p


#: the commands that run unattended, and the service their logs and error reports name (obs.start)
OBSERVED = {"run": "pipeline", "task": "pipeline", "schedule": "scheduler"}


def main(argv: list[str] | None = None) -> int:
    """Entry point: a clear one-line error (secrets redacted) and exit code 2 for any PriceIntelError. As the
    console script (argv None), the unattended commands (OBSERVED) first set up JSON logs and error tracking
    (`obs.start`); called in-process with arguments (tests, the scheduler) the caller's logging stays as it is.
    `priceintel api` sets up its own (`api.serve`)."""
    import sqlalchemy.exc

    args = build_parser().parse_args(argv)
    before = {name: os.environ.get(name) for name in ("PRICEINTEL_TENANT", compute.CLUSTER_ENV)}
    try:
        if argv is None and args.command in OBSERVED:
            from priceintel import obs

            obs.start(OBSERVED[args.command])
        if args.global_tenant:
            from priceintel.db import tenancy

            os.environ[tenancy.TENANT_ENV] = tenancy.check_name(args.global_tenant)  # and the notebooks it runs
        if getattr(args, "cluster", None):  # the task notebooks see it (compute.resolve reads it)
            os.environ[compute.CLUSTER_ENV] = compute.resolve(args.cluster)
        return args.func(args) or 0
    except PriceIntelError as exc:
        print(f"error: {config.redact(str(exc))}", file=sys.stderr, flush=True)
        return 2
    except sqlalchemy.exc.DBAPIError as exc:  # e.g. an unknown tenant, refused by the database
        print(f"error: database: {config.redact(config.error_line(exc))}", file=sys.stderr, flush=True)
        return 2
    except (OSError, ValueError, yaml.YAMLError) as exc:  # files, dates, YAML: say what, not a traceback
        print(f"error: {type(exc).__name__}: {config.redact(str(exc))}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:  # main() called in-process (tests, the scheduler) leaves the environment as it found it
        for name, value in before.items():
            config.set_env(name, value)


if __name__ == "__main__":
    sys.exit(main())
