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
