"""Evaluation on a Magellan / DeepMatcher benchmark directory.

DIR holds `tableA.csv`, `tableB.csv` (an `id` column plus any attribute columns) and
`train.csv`, `valid.csv`, `test.csv` (`ltable_id, rtable_id, label`). The featurizer is fitted on
the two tables (no labels), the classifier on train only, the threshold on valid only, and test is
scored once.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from priceintel import PriceIntelError
from priceintel.match.features import PairFeaturizer
from priceintel.match.learned import PairClassifier, choose_threshold, prf

PAIR_COLUMNS = ["ltable_id", "rtable_id", "label"]


class BenchmarkError(PriceIntelError):
    """A benchmark directory that does not have the Magellan layout (names the file and problem)."""


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    """Read one CSV of the layout, with a clear error for a missing file or column."""
    if not path.exists():
        raise BenchmarkError(f"{path}: file missing (expected tableA.csv, tableB.csv, train.csv, valid.csv, test.csv)")
    try:
        df = pd.read_csv(
            path, dtype={"id": str, "ltable_id": str, "rtable_id": str}, keep_default_na=True, encoding_errors="replace"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise BenchmarkError(f"{path}: column(s) {missing} missing (columns: {list(df.columns)})")
    return df


def load_dir(path: str | Path) -> dict:
    """The five frames of a benchmark directory, pair ids mapped to table row positions."""
    d = Path(path)
    if not d.is_dir():
        raise BenchmarkError(f"{d}: not a directory")
    A = _read(d / "tableA.csv", ["id"])
    B = _read(d / "tableB.csv", ["id"])
    for name, t in (("tableA.csv", A), ("tableB.csv", B)):
        if t["id"].isna().any() or t["id"].duplicated().any():
            raise BenchmarkError(f"{d / name}: column id has missing or repeated values")
    out = {"A": A, "B": B}
    apos = pd.Series(np.arange(len(A)), index=A["id"].str.strip())
    bpos = pd.Series(np.arange(len(B)), index=B["id"].str.strip())
    for split in ("train", "valid", "test"):
        p = _read(d / f"{split}.csv", PAIR_COLUMNS)
        lab = pd.to_numeric(p["label"], errors="coerce")
        if lab.isna().any() or not lab.isin([0, 1]).all():
            raise BenchmarkError(f"{d / f'{split}.csv'}: column label must be 0 or 1")
        li = p["ltable_id"].str.strip().map(apos)
        ri = p["rtable_id"].str.strip().map(bpos)
        bad = li.isna() | ri.isna()
        if bad.any():
            first = p.loc[bad, ["ltable_id", "rtable_id"]].head(3).to_dict("records")
            raise BenchmarkError(
                f"{d / f'{split}.csv'}: {int(bad.sum())} pair(s) name an id not in the tables; first: {first}"
            )
        out[split] = pd.DataFrame(
            {"li": li.astype(int).to_numpy(), "ri": ri.astype(int).to_numpy(), "label": lab.astype(int).to_numpy()}
        )
    return out


def headline(result: dict, details: bool = False) -> dict:
    """What `priceintel eval matching` prints: precision, recall, F1 and seconds (everything with `details`)."""
    keys = list(result) if details else ["precision", "recall", "f1", "seconds"]
    return {k: result[k] for k in keys}


def evaluate_dir(path: str | Path, seed: int = 17) -> dict:
    """Fit on train, threshold on valid, score test once → precision/recall/F1/seconds (+ details)."""
    t0 = time.perf_counter()
    data = load_dir(path)
    feat = PairFeaturizer().fit(data["A"], data["B"])
    X = {s: feat.transform(data[s]["li"], data[s]["ri"]) for s in ("train", "valid", "test")}
    with threadpool_limits(1):  # small data: extra threads only fight other work on the machine
        clf = PairClassifier(seed=seed).fit(X["train"], data["train"]["label"])
        pv = clf.predict_proba(X["valid"])
        thr = choose_threshold(data["valid"]["label"].to_numpy(), pv)
        pt = clf.predict_proba(X["test"])
    m = prf(data["test"]["label"].to_numpy(), pt >= thr)
    brier = float(np.mean((pt - data["test"]["label"].to_numpy()) ** 2))
    return {
        "precision": round(m["precision"], 4),
        "recall": round(m["recall"], 4),
        "f1": round(m["f1"], 4),
        "seconds": round(time.perf_counter() - t0, 2),
        "threshold": round(thr, 4),
        "brier_test": round(brier, 4),
        "n_features": X["train"].shape[1],
        "text_columns": feat.text_cols,
        "numeric_columns": feat.num_cols,
        "pairs": {s: int(len(data[s])) for s in ("train", "valid", "test")},
        "split": "classifier fit on train, threshold chosen on valid, test scored once",
    }


# --- cold start: a matcher trained without the benchmark's labels -----------------------------


def _last_code(text: object) -> str | None:
    """The last model-number-like token of a text (letters and digits mixed), else None."""
    from priceintel.match.features import codes

    found = codes(str(text)) if isinstance(text, str) else []
    return found[-1] if found else None


def magellan_as_catalogue(path: str | Path) -> dict:
    """A Magellan directory as matcher frames: tableA = our catalogue, tableB = one retailer's listings.

    The text column is `name` (else `title`, else the first text column). The layout has no brand or
    MPN columns, so they are simulated the way a catalogue export and a product page would carry them:
    catalogue brand = first word of the name, catalogue MPN and listing MPN = the last model-number-like
    token of the name. Returns listings, products and the three pair splits as (retailer, item_id, sku, label)."""
    data = load_dir(path)
    A, B = data["A"], data["B"]
    col = next((c for c in ("name", "title") if c in A.columns and c in B.columns), None)
    if col is None:
        col = next(c for c in A.columns if c != "id" and A[c].dtype == object)
    a_name = A[col].fillna("").astype(str)
    b_name = B[col].fillna("").astype(str) if col in B.columns else pd.Series([""] * len(B))
    products = pd.DataFrame(
        {"sku": A["id"].str.strip(), "name": a_name, "brand": a_name.str.split().str[0], "mpn": a_name.map(_last_code)}
    )
    listings = pd.DataFrame(
        {"retailer": "tableB", "item_id": B["id"].str.strip(), "title": b_name, "mpn": b_name.map(_last_code)}
    )
    out = {"listings": listings, "products": products}
    for split in ("train", "valid", "test"):
        p = data[split]
        out[split] = pd.DataFrame(
            {
                "retailer": "tableB",
                "item_id": listings["item_id"].to_numpy()[p["ri"]],
                "sku": products["sku"].to_numpy()[p["li"]],
                "label": p["label"].to_numpy(),
            }
        )
    return out


def _pairwise(y: np.ndarray, proba: np.ndarray, thr: float, low: float) -> dict:
    """Precision/recall/F1 at the auto threshold, average precision, share of pairs in the review band."""
    from sklearn.metrics import average_precision_score

    m = prf(y, proba >= thr)
    return {
        "precision": round(m["precision"], 4),
        "recall": round(m["recall"], 4),
        "f1": round(m["f1"], 4),
        "tp": m["tp"],
        "fp": m["fp"],
        "average_precision": round(float(average_precision_score(y, proba)), 4),
        "auto_threshold": round(float(thr), 4),
        "review_pairs": int(((proba >= low) & (proba < thr)).sum()),
    }


def _abt_cold_start(path: str | Path, seed: int) -> dict:
    """Cold-start figures on a Magellan directory's test split (see `cold_start_report`)."""
    from priceintel.match import model as lm
    from priceintel.match import rules

    d = magellan_as_catalogue(path)
    test = d["test"]
    y = test["label"].to_numpy()
    # listings of the test split never train anything; test listings are scored without an MPN field
    train_l = d["listings"][~d["listings"]["item_id"].isin(set(test["item_id"]))]
    X = lm.pair_features(d["listings"].drop(columns="mpn"), d["products"], test)
    known = pd.concat([d["train"], d["valid"]]).merge(
        lm.identifier_pairs(train_l, d["products"]), on=["retailer", "item_id", "sku"]
    )
    out: dict = {
        "rules_only": _pairwise(y, X["hand_score"].to_numpy(), rules.NO_MODEL_THRESHOLD, rules.NO_MODEL_REVIEW_BAND[0]),
        "identifier_pairs_checked": {
            "on_labelled_train_valid_pairs": int(len(known)),
            "precision": round(float(known["label"].mean()), 4) if len(known) else None,
        },
    }
    conditions = {
        "generic": (train_l.drop(columns="mpn"), True, 100),
        "identifiers": (train_l, True, 100),  # the default: enough own positives, generic pairs left out
        "identifiers+generic_forced": (train_l, True, None),
    }
    for name, (lst, generic, until) in conditions.items():
        model = lm.own_data_model(lst, d["products"], generic=generic, seed=seed, generic_until=until)
        if model is None:
            out[name] = None
            continue
        res = _pairwise(y, model.predict_proba(X), model.threshold, model.review_low)
        out[name] = {**res, "sources": model.sources}
    return out


def _review_labels(world, n: int) -> pd.DataFrame:
    """`n` simulated reviewer verdicts on the rules' proposals for listings without a GTIN, the most
    uncertain first (score nearest the auto threshold), answered from the world's truth."""
    from priceintel.match import rules

    lst = world.listings[world.listings["gtin"].isna()]
    prop = rules.match_listings(lst, world.products, threshold=1.0, review_band=(0.0, 1.0))
    order = np.argsort(np.abs(prop["score"].to_numpy() - rules.NO_MODEL_THRESHOLD), kind="stable")
    pairs = prop.iloc[order[:n]][["retailer", "item_id", "sku"]].reset_index(drop=True)
    truth = world.truth_matches.astype({"item_id": str})
    t = pairs.merge(truth, on=["retailer", "item_id"], how="left", suffixes=("", "_true"))
    return pairs.assign(label=(t["sku"] == t["sku_true"]).astype(int).to_numpy())


def _demo_cold_start(world_seed: int, n_products: int, n_labels: int, seed: int) -> dict:
    """End-to-end figures on a fresh demo world whose truth is only used to score (and answer n_labels)."""
    from priceintel.demo import world as demo
    from priceintel.match import model as lm
    from priceintel.match import rules

    w = demo.generate_world(n_products=n_products, n_days=1, seed=world_seed)
    no_ids = w.listings.drop(columns=["gtin", "mpn"])
    labels = _review_labels(w, n_labels)
    conditions = {
        "rules_only": None,
        "generic": (no_ids, None, True),
        f"{n_labels}_review_labels": (no_ids, labels, False),
        "identifier_pairs": (w.listings, None, False),
        f"identifiers+{n_labels}_labels+generic": (w.listings, labels, True),
    }
    truth = w.truth_matches
    has = w.listings[w.listings["gtin"].notna()]
    gtin_l = set(zip(has["retailer"], has["item_id"]))
    decided = truth[[(r, i) not in gtin_l for r, i in zip(truth["retailer"], truth["item_id"])]]
    out: dict = {"review_labels_positive": int(labels["label"].sum())}
    for name, cond in conditions.items():
        model = None if cond is None else lm.own_data_model(cond[0], w.products, cond[1], generic=cond[2], seed=seed)
        used_labels = None if cond is None else cond[1]
        m = rules.match_listings(w.listings, w.products, labels=used_labels, model=model)
        allm = rules.score_matches(m, truth)
        rest = rules.score_matches(m[[(r, i) not in gtin_l for r, i in zip(m["retailer"], m["item_id"])]], decided)
        out[name] = {
            "all_listings": {k: round(v, 4) if isinstance(v, float) else v for k, v in allm.items()},
            "listings_without_gtin": {k: round(v, 4) if isinstance(v, float) else v for k, v in rest.items()},
            "review_queue": int((m["status"] == "review").sum()),
            "model": None if model is None else {"auto_threshold": round(model.threshold, 4), "sources": model.sources},
        }
    return out


def cold_start_report(
    abt_dir: str | Path | None = None,
    world_seed: int = 2031,
    n_products: int = 200,
    n_labels: int = 20,
    seed: int = 17,
) -> dict:
    """How `own_data_model` matches data it has no truth for, measured on data it never trained on.

    - ``abt_buy`` (when `abt_dir`, a Magellan directory, is given): catalogue = tableA, listings = tableB
      (`magellan_as_catalogue`); training never sees a benchmark label nor a listing of the test split;
      scored pairwise on test.csv at the model's own auto threshold. Conditions: the rules' hand score at
      `NO_MODEL_THRESHOLD`; the generic demo-world model only; simulated identifier (brand + MPN) pairs
      of the non-test listings; both.
    - ``demo``: a fresh demo world (`world_seed`, never a training seed) matched end to end; its truth
      scores the matches and answers the `n_labels` simulated review verdicts, nothing else. Scored on
      all listings and on the listings without a GTIN (the ones the fuzzy/learned stage decides)."""
    t0 = time.perf_counter()
    out: dict = {
        "split": (
            "abt_buy: trained on generic demo pairs (seed 1042, 200 products) and/or identifier pairs of tableB "
            "listings not in test.csv, no benchmark labels; pairwise P/R/F1 on test.csv at the model's own threshold. "
            f"demo: world seed {world_seed} ({n_products} products), truth used only to score and to answer "
            f"{n_labels} review labels"
        )
    }
    if abt_dir is not None:
        out["abt_buy"] = _abt_cold_start(abt_dir, seed)
    out["demo"] = _demo_cold_start(world_seed, n_products, n_labels, seed)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out
