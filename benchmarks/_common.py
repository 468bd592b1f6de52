"""Shared by the benchmark scripts: where results go and how they are written."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from priceintel import config


def _default(obj):
    """JSON for numpy numbers (as numbers) and anything else (as text)."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return str(obj)


def bench_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The command line of a benchmark script: its docstring's first line, and `--quick` (a smoke run)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    return ap


def run_header(quick: bool, **extra: Any) -> dict:
    """The first keys of a results file: when it ran, quick or full, the machine's CPUs and its load before."""
    return {"generated_at": datetime.now(UTC).isoformat(), "quick": quick, "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(), **extra}


def finish(out: dict, t_all: float) -> dict:
    """Add the whole run's seconds (since `t_all`, a perf_counter reading) and the load average after it."""
    import time

    out["total_s"] = round(time.perf_counter() - t_all, 1)
    out["loadavg_after"] = os.getloadavg()
    return out


def bench_database(area: str) -> tuple[str, str, str]:
    """A new database `bench_<area>_<8 hex>` on the embedded server, migrated to the head revision:
    (server URL, database name, database URL). Dropped again when the migration fails; else the caller
    drops it (`stop_server`)."""
    from priceintel.db import engine as db_engine
    from priceintel.db import migrate, server

    base = server.start_embedded()
    name = f"bench_{area}_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(base, name)
    try:
        migrate.upgrade(url)
    except BaseException:
        db_engine.dispose_engines()
        db_engine.drop_database(base, name)
        raise
    return base, name, url


def write_results(area: str, results: dict, quick: bool) -> Path:
    """Write reports/benchmarks/<area>.json (<area>-quick.json for a smoke run) and return its path."""
    path = config.reports_dir() / "benchmarks" / (f"{area}-quick.json" if quick else f"{area}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=_default) + "\n")
    return path


def true_observations(world) -> pd.DataFrame:
    """A demo world's true prices as an observation frame (what a perfect scrape would load)."""
    obs = world.prices.copy()
    obs["currency"] = "USD"
    obs["observed_at"] = obs["ds"].dt.tz_localize("UTC") + pd.Timedelta(hours=6)
    return obs


def record_resources(out: dict) -> dict:
    """Add the peak resident memory (MB) and the load average after the run to `out`; return it."""
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["loadavg_after"] = os.getloadavg()
    return out


def run_cli(area: str, main: Callable[[bool], dict]) -> dict:
    """`python benchmarks/bench_<area>.py [--quick]`: run main(quick), write its results and print them."""
    quick = "--quick" in sys.argv
    results = main(quick)
    write_results(area, results, quick)
    print(json.dumps(results, indent=2, default=str))
    return results


def stop_server(proc: Any, base: str, name: str) -> None:
    """After a benchmark: stop its server process (if started), close the engines, drop its database."""
    from priceintel.db import engine as db_engine

    if proc is not None:
        proc.terminate()
        proc.wait(30)
    db_engine.dispose_engines()
    db_engine.drop_database(base, name)
