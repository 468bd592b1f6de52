"""Dask benchmark (#20 item 5): the forecast tournament of many daily series and the re-extraction of archived
product pages, each run locally and on a Dask LocalCluster of 2 worker processes (1 thread each) in the same
process, one after the other: wall times side by side and whether the results are identical. The local result
waits on disk while the cluster runs; the memory of the whole process tree is sampled during each run.

On this 2-core machine the cluster cannot be faster than the 2 local processes; what the figures show is what
the Dask path costs (scheduling, pickling the series, each worker's imports) against the local one, so that a
cluster of more machines can be judged from them.

Writes reports/benchmarks/dask.json.
Usage: python benchmarks/bench_dask.py [--quick] [--series N] [--pages-days D]
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta

import pandas as pd
import psutil
from _common import record_resources, run_cli  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from bench_forecast import demo_frame  # noqa: E402

from priceintel.demo import world as demo
from priceintel.demo.storefronts import Storefronts
from priceintel.forecast import tournament as T
from priceintel.scrape import Fetcher, RawArchive, scrape_demo
from priceintel.scrape.reextract import reextract

warnings.filterwarnings("ignore")
FRAMES = ("cv", "metrics", "forecasts", "choices", "change", "calibration")


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def _identical(a, b, names) -> dict:
    """Per frame: equal (values, dtypes, order) or the first difference."""
    out = {}
    for n in names:
        try:
            pd.testing.assert_frame_equal(getattr(b, n) if not isinstance(b, dict) else b[n],
                                          getattr(a, n) if not isinstance(a, dict) else a[n])
            out[n] = True
        except AssertionError as exc:
            out[n] = str(exc).splitlines()[0][:200]
    return out


class TreeMemory:
    """Samples the resident memory of this process and of its whole process tree (the loky and Dask worker
    processes are its children) every 0.5 s; `peaks()` in MB."""

    def __init__(self) -> None:
        self.main = self.tree = 0
        self._stop = threading.Event()

    def __enter__(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._run, daemon=True, name="tree-memory")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.5):
            own = me.memory_info().rss
            total = own
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.main, self.tree = max(self.main, own), max(self.tree, total)

    def peaks(self) -> dict:
        return {"peak_rss_main_mb": round(self.main / 2**20), "peak_rss_tree_mb": round(self.tree / 2**20)}


def _spill(res: T.TournamentResult, folder: str) -> dict:
    """Pickle the result's frames to `folder` (the cluster run must not share the machine's memory with
    them); the frames' paths."""
    paths = {}
    for n in FRAMES:
        paths[n] = os.path.join(folder, f"{n}.pkl")
        getattr(res, n).to_pickle(paths[n])
    return paths


def _identical_to_spilled(paths: dict, dist: T.TournamentResult) -> dict:
    """Per frame, read back one at a time: equal (values, dtypes, order) or the first difference."""
    out = {}
    for n, path in paths.items():
        out.update(_identical({n: pd.read_pickle(path)}, {n: getattr(dist, n)}, (n,)))
    return out


def panel_frame(n_series: int, seed: int = 7) -> pd.DataFrame:
    """Daily shelf prices of n_series / 3 demo products at 3 retailers over 365 days. A demo world holds at most
    demo.MAX_PRODUCTS products: beyond that, worlds of the next seeds are added, their ids prefixed `w<i>/`
    (up to MAX_PRODUCTS the frame is the one world of `seed`, as in earlier runs of this benchmark). The tournament
    takes the first n_series ids in sorted order: with several worlds, `w1/…` sorts before world 0's `walmart:…`,
    so the series left out are some of world 0's Walmart listings, not the last world's tail."""
    n_products = n_series // 3 + 1
    parts, i = [], 0
    while n_products > 0:
        part = demo_frame(min(n_products, demo.MAX_PRODUCTS), 365, seed=seed + i)
        if i:
            part["unique_id"] = f"w{i}/" + part["unique_id"]
        parts.append(part)
        n_products -= demo.MAX_PRODUCTS
        i += 1
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def bench_tournament(n_series: int, cluster) -> dict:
    """h = 28, 3 windows, step 28, refit=False (as bench_forecast's speed part), FAST_MODELS. The local result
    waits on disk while the cluster runs, then the two are compared frame by frame."""
    df = panel_frame(n_series)
    ids = sorted(df["unique_id"].unique())[:n_series]
    df = df[df["unique_id"].isin(ids)].reset_index(drop=True)
    gc.collect()
    kw = dict(h=28, n_windows=3, step=28, progress=False, refit=False)
    with tempfile.TemporaryDirectory() as tmp:
        with TreeMemory() as mem_local:
            t = time.perf_counter()
            local = T.run_tournament(df, n_jobs=2, **kw)
            local_s = time.perf_counter() - t
        local_params, local_timing = local.params, local.timing
        paths = _spill(local, tmp)
        del local
        gc.collect()
        with TreeMemory() as mem_dist:
            t = time.perf_counter()
            dist = T.run_tournament(df, cluster=cluster, **kw)
            dist_s = time.perf_counter() - t
        same = _identical_to_spilled(paths, dist)
    return {
        "series": len(ids),
        "days": 365,
        "observations": len(df),
        "h": 28,
        "n_windows": 3,
        "models": local_params["models"],
        "local_2_processes_s": round(local_s, 1),
        "local_cluster_2_workers_s": round(dist_s, 1),
        "cluster_over_local": round(dist_s / local_s, 3),
        "local_backtest_s": round(local_timing["backtest_s"], 1),
        "cluster_backtest_s": round(dist.timing["backtest_s"], 1),
        "memory_local": mem_local.peaks(),
        "memory_cluster": mem_dist.peaks(),
        "cv_rows": len(dist.cv),
        "identical": same,
        "all_identical": all(v is True for v in same.values()) and dist.params == local_params,
    }


def bench_reextract(n_products: int, days: int, cluster) -> dict:
    """Scrape the demo storefronts for `days` days into a fresh archive, then extract every archived product page
    again locally and on the cluster."""
    world = demo.generate_world(n_products=n_products, n_days=days + 2, seed=11)
    with tempfile.TemporaryDirectory() as tmp, Storefronts(world) as fronts:
        arc = RawArchive(tmp, store="local")
        run_days = [world.start + timedelta(days=i) for i in range(days)]
        with Fetcher(archive=arc, backoff=0.01) as f:
            offers, _ = scrape_demo(fronts.urls, run_days, f)
        t = time.perf_counter()
        local, local_err = reextract(arc)
        local_s = time.perf_counter() - t
        t = time.perf_counter()
        dist, dist_err = reextract(arc, cluster=cluster)
        dist_s = time.perf_counter() - t
    key = ["retailer", "item_id", "ds"]
    same_as_scrape = local.sort_values(key).reset_index(drop=True)[list(offers.columns)].equals(
        offers.sort_values(key).reset_index(drop=True)
    )
    same = _identical({"offers": local, "errors": local_err}, {"offers": dist, "errors": dist_err},
                      ("offers", "errors"))
    return {
        "pages": len(local) + len(local_err),
        "products": n_products,
        "days": days,
        "local_1_process_s": round(local_s, 2),
        "local_cluster_2_workers_s": round(dist_s, 2),
        "pages_per_s_local": round((len(local) + len(local_err)) / local_s, 1),
        "pages_per_s_cluster": round((len(local) + len(local_err)) / dist_s, 1),
        "identical": same,
        "all_identical": all(v is True for v in same.values()),
        "same_as_the_scrape": bool(same_as_scrape),
    }


def main(quick: bool) -> dict:
    from distributed import LocalCluster

    n_series = _arg("--series", 300 if quick else 10_000)
    out: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "cluster": "distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True), same process",
    }
    t = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        out["cluster_start_s"] = round(time.perf_counter() - t, 2)
        out["tournament"] = bench_tournament(n_series, lc)
        out["reextract"] = bench_reextract(60 if quick else 300, _arg("--pages-days", 2 if quick else 4), lc)
    return record_resources(out)


if __name__ == "__main__":
    run_cli("dask", main)
