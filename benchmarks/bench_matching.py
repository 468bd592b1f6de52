"""Matching benchmark → reports/benchmarks/matching.json.

1. Abt-Buy (shared data, Magellan layout): pair classifier fit on train, threshold chosen on valid,
   test scored once (`priceintel eval matching`), plus an ablation of feature groups on the same split.
2. Demo world: F1 of `match_listings` against the generator's truth.
3. Scale: 10,000 listings × 10,000 products end to end (blocking + scoring + assignment) in a child
   process, wall time and the child's peak RSS.

    .venv/bin/python benchmarks/bench_matching.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from priceintel import config  # noqa: E402

OUT = config.PROJ_ROOT / "reports" / "benchmarks" / "matching.json"


def scale_inputs(n_listings: int, n_products: int, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Listings, products and truth from demo worlds (two seeds when more than 5,000 products)."""
    from priceintel.demo import world as demo

    worlds = []
    per = min(5000, n_products)
    k = 0
    while per * len(worlds) < n_products:
        worlds.append(demo.generate_world(n_products=per, n_days=1, seed=seed + k))
        k += 1
    prods, lists, truth = [], [], []
    for j, w in enumerate(worlds):
        tag = f"w{j}-"
        wp, wl = w.products.copy(), w.listings.copy()
        if j:  # the second world gets its own brand names, else its catalogue repeats the first one's
            ren = {b: b[::-1].capitalize() + "ia" * j for b in wp["brand"].dropna().unique()}
            wp["brand"] = wp["brand"].map(lambda b: ren.get(b, b))
            for old, new in ren.items():
                wl["title"] = wl["title"].str.replace(old, new, regex=False)
            wl["brand"] = wl["brand"].map(lambda b: ren.get(b, b))
        prods.append(wp.assign(sku=tag + wp["sku"].astype(str)))
        lists.append(wl.assign(item_id=tag + wl["item_id"].astype(str)))
        truth.append(w.truth_matches.assign(item_id=tag + w.truth_matches["item_id"].astype(str),
                                            sku=(tag + w.truth_matches["sku"].astype(str)).where(
                                                w.truth_matches["sku"].notna())))
    products = pd.concat(prods, ignore_index=True).head(n_products)
    listings = pd.concat(lists, ignore_index=True)
    # the hardest mix first: amazon pages carry no GTIN, so every one of them goes through fuzzy scoring
    listings = listings.sort_values("retailer", key=lambda s: s.map({"amazon": 0, "walmart": 1, "target": 2}),
                                    kind="stable")
    listings = listings[listings["item_id"].str.split("-").str[0].isin({f"w{j}" for j in range(len(worlds))})]
    listings = listings.head(n_listings).reset_index(drop=True)
    truth = pd.concat(truth, ignore_index=True)
    truth = truth.merge(listings[["retailer", "item_id"]], on=["retailer", "item_id"])
    truth.loc[~truth["sku"].isin(set(products["sku"])), "sku"] = np.nan
    return listings, products, truth


def _scale_child(n_listings: int, n_products: int, learned: bool, q) -> None:
    """Run one end-to-end match in this process; report seconds, peak RSS and F1."""
    from priceintel.match.rules import match_listings, score_matches

    listings, products, truth = scale_inputs(n_listings, n_products)
    model = None
    if learned:  # trained before the clock starts, on an independent demo world (seed 1042)
        from priceintel.match.model import pipeline_model

        model = pipeline_model(listings.iloc[:0], products.iloc[:0], labels=None)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    m = match_listings(listings, products, model=model)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = score_matches(m, truth)
    q.put({"listings": len(listings), "products": len(products),
           "retailers": listings["retailer"].value_counts().to_dict(),
           "seconds": round(secs, 2), "peak_rss_mb": round(rss / 1024, 1),
           "rss_before_match_mb": round(rss0 / 1024, 1),
           "f1_vs_truth": round(r["f1"], 4), "precision": round(r["precision"], 4), "recall": round(r["recall"], 4),
           "auto": int((m["status"] == "auto").sum()), "review": int((m["status"] == "review").sum())})


def bench_scale(n_listings: int, n_products: int, learned: bool = False) -> dict:
    """End-to-end matching in a fresh child process (so its peak RSS is the matcher's)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_scale_child, args=(n_listings, n_products, learned, q))
    p.start()
    res = q.get(timeout=1800)
    p.join()
    return res


def bench_abt_buy() -> dict:
    """F1 on the Abt-Buy test split, and an ablation of feature groups on the same split."""
    from threadpoolctl import threadpool_limits

    from priceintel.match.benchmark import evaluate_dir, load_dir
    from priceintel.match.features import PairFeaturizer
    from priceintel.match.learned import PairClassifier, choose_threshold, prf

    d = config.shared_data_dir() / "er" / "abt_buy"
    if not d.exists():
        return {"skipped": f"{d} not found"}
    res = evaluate_dir(d)
    data = load_dir(d)
    feat = PairFeaturizer().fit(data["A"], data["B"])
    X = {s: feat.transform(data[s]["li"], data[s]["ri"]) for s in ("train", "valid", "test")}
    cols = list(X["train"].columns)
    groups = {"all features": cols,
              "without neighbourhood (nb_*)": [c for c in cols if not c.startswith("nb_")],
              "without codes (code_*)": [c for c in cols if not c.startswith("code_")],
              "without neighbourhood and codes": [c for c in cols if not c.startswith(("nb_", "code_"))]}
    ablation = {}
    with threadpool_limits(1):
        for name, cs in groups.items():
            clf = PairClassifier().fit(X["train"][cs], data["train"]["label"])
            thr = choose_threshold(data["valid"]["label"].to_numpy(), clf.predict_proba(X["valid"][cs]))
            m = prf(data["test"]["label"].to_numpy(), clf.predict_proba(X["test"][cs]) >= thr)
            ablation[name] = {"f1": round(m["f1"], 4), "precision": round(m["precision"], 4),
                              "recall": round(m["recall"], 4), "n_features": len(cs)}
    res["ablation_test_f1"] = ablation
    res["protocol_note"] = ("features designed once from the task description before any score was seen; "
                            "the test F1 was printed during development (one later change: a float-tolerance "
                            "bug in the rank feature, found by a unit test); nothing was tuned on test")
    res["published_f1"] = {"Magellan": 43.6, "DeepMatcher": 62.8, "Ditto": 89.3,
                           "source": "Ditto paper (Li et al. 2020), ER-Magellan table, as quoted in the issue"}
    return res


def bench_demo(seed: int = 3, n_products: int = 50) -> dict:
    """match_listings on a demo world vs its generator truth (no training on that world)."""
    from priceintel.demo import world as demo
    from priceintel.match.rules import match_listings, score_matches

    from priceintel.match.model import pipeline_model

    w = demo.generate_world(n_products=n_products, n_days=1, seed=seed)
    out = {"n_products": n_products, "seed": seed, "listings": len(w.listings)}
    t0 = time.perf_counter()
    model = pipeline_model(w.listings, w.products, labels=None)  # trained on the seed-1042 world's truth
    train_s = time.perf_counter() - t0
    for name, mdl in (("hand_weighted", None), ("learned", model)):
        t0 = time.perf_counter()
        m = match_listings(w.listings, w.products, model=mdl)
        r = score_matches(m, w.truth_matches)
        out[name] = {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                     "review_queue": int((m["status"] == "review").sum()),
                     "seconds": round(time.perf_counter() - t0, 2)}
    out["learned"]["train_seconds"] = round(train_s, 2)
    out["learned"]["auto_threshold"] = round(model.threshold, 4)
    out["learned"]["split"] = "trained on an independent demo world (seed 1042, 200 products), scored on this one"
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run (1,000 × 1,000, no Abt-Buy ablation)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    report = {"benchmark": "matching", "quick": args.quick, "python": platform.python_version(),
              "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    n = 1000 if args.quick else 10_000
    report["scale"] = {"hand_weighted": bench_scale(n, n), "learned": bench_scale(n, n, learned=True),
                       "note": "end to end: normalisation, GTIN, TF-IDF blocking, features, scoring, one-to-one "
                               "assignment; all listings from the GTIN-less amazon shop of two demo worlds"}
    report["demo_world"] = [bench_demo(seed=s, n_products=p) for s, p in ((42, 50), (3, 500))][: 1 if args.quick else 2]
    if not args.quick:
        report["abt_buy"] = bench_abt_buy()
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
