"""A learned listing → product matcher trained on labelled pairs (human labels and/or a known truth).

`train_listing_model(listings, products, truth=None, labels=None)` blocks candidate pairs exactly like
`match_listings`, labels each candidate (a stored human label first, else the truth: same sku = 1),
and fits the calibrated `PairClassifier` on the pair features of `priceintel.match.rules.FEATURES`.
Thresholds are chosen for precision on listings held out from the fit (20%, grouped by listing):
`threshold` is the lowest probability whose held-out precision reaches `min_precision`, and pairs
between `review_low` and `threshold` go to the review queue.

`pipeline_model(listings, products, labels)` is what the match notebook uses: the truth of a
separate, independently seeded demo world (never the world being matched) plus the stored labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from priceintel.match import rules as match
from priceintel.match.learned import ModelError, PairClassifier, choose_threshold, prf


@dataclass
class ListingModel:
    """A fitted pair classifier with its decision thresholds."""

    classifier: PairClassifier
    threshold: float
    review_low: float
    holdout: dict
    n_pairs: int
    n_positive: int

    def predict_proba(self, feats: pd.DataFrame) -> np.ndarray:
        """Calibrated match probability of candidate pairs (columns of `match.FEATURES`)."""
        with threadpool_limits(1):
            return self.classifier.predict_proba(feats[match.FEATURES])


def labelled_candidates(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    truth: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Blocked candidate pairs with features, `label` (1/0) and the listing key, unlabelled pairs dropped."""
    lp, pp, feats = match.candidate_features(listings, products)
    y = np.full(len(feats), np.nan)
    if truth is not None and len(feats):
        match._require(truth, ["retailer", "item_id", "sku"], "truth")
        t = truth.astype({"retailer": str, "item_id": str}).drop_duplicates(["retailer", "item_id"])
        true_sku = pd.Series(t["sku"].to_numpy(), index=pd.MultiIndex.from_arrays([t["retailer"], t["item_id"]]))
        key = pd.MultiIndex.from_arrays([lp["retailer"].to_numpy()[feats["li"]], lp["item_id"].to_numpy()[feats["li"]]])
        known = key.isin(true_sku.index)
        ts = true_sku.reindex(key).to_numpy()
        cand_sku = pp["sku"].to_numpy()[feats["pi"]]
        y = np.where(known, (ts.astype(str) == cand_sku.astype(str)) & pd.notna(ts), np.nan).astype(float)
    lab = match._label_pairs(labels, lp, pp)
    if len(lab):
        # human labels win over the truth; a labelled pair outside the blocked candidates is added
        pos = {(a, b): i for i, (a, b) in enumerate(zip(feats["li"], feats["pi"]))}
        extra = lab[[(a, b) not in pos for a, b in zip(lab["li"], lab["pi"])]]
        for a, b, v in zip(lab["li"], lab["pi"], lab["label"]):
            if (a, b) in pos:
                y[pos[(a, b)]] = v
        if len(extra):
            P, L = match._tfidf(pp["text"], lp["text"])
            ef = match._score_pairs(lp, pp, P, L, extra["li"].to_numpy(), extra["pi"].to_numpy())
            feats = pd.concat([feats, ef], ignore_index=True)
            y = np.concatenate([y, extra["label"].to_numpy(dtype=float)])
    feats = feats.assign(
        label=y,
        retailer=lp["retailer"].to_numpy()[feats["li"]] if len(feats) else [],
        item_id=lp["item_id"].to_numpy()[feats["li"]] if len(feats) else [],
    )
    return feats[feats["label"].notna()].reset_index(drop=True)


def train_listing_model(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    truth: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    min_precision: float = 0.98,
    review_precision: float = 0.5,
    seed: int = 17,
) -> ListingModel:
    """Fit the calibrated pair classifier on labelled candidates; thresholds from held-out listings."""
    if truth is None and (labels is None or len(labels) == 0):
        raise ModelError("train_listing_model: give a truth frame or stored labels to learn from")
    data = labelled_candidates(listings, products, truth, labels)
    y = data["label"].to_numpy(dtype=int)
    if len(data) == 0 or y.min() == y.max():
        raise ModelError(
            f"train_listing_model: need matching and non-matching labelled pairs "
            f"(got {int(y.sum()) if len(y) else 0} matching of {len(y)})"
        )
    groups = (data["retailer"].astype(str) + "\x1f" + data["item_id"].astype(str)).to_numpy()
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    held = set(rng.choice(uniq, size=max(1, len(uniq) // 5), replace=False).tolist())
    is_held = np.array([g in held for g in groups])
    X = data[match.FEATURES]
    with threadpool_limits(1):
        if y[~is_held].min() != y[~is_held].max() and y[is_held].min() != y[is_held].max():
            probe = PairClassifier(seed=seed).fit(X[~is_held], y[~is_held])
            ph = probe.predict_proba(X[is_held])
            thr = choose_threshold(y[is_held], ph, min_precision=min_precision)
            low = choose_threshold(y[is_held], ph, min_precision=review_precision)
            hold = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in prf(y[is_held], ph >= thr).items()}
        else:  # too few labels to hold some out: conservative defaults
            thr, low, hold = 0.9, 0.5, {}
        clf = PairClassifier(seed=seed).fit(X, y)
    low = min(low, thr)
    return ListingModel(clf, float(thr), float(low), hold, int(len(y)), int(y.sum()))


def pipeline_model(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    demo_seed: int | None = 1042,
    demo_products: int = 200,
) -> ListingModel | None:
    """Model for the pipeline: an independent demo world's truth (when demo_seed) + stored labels; None if no data."""
    from priceintel.demo import world as demo

    frames_l, frames_p, frames_t, frames_lab = [], [], [], []
    if demo_seed is not None:
        w = demo.generate_world(n_products=demo_products, n_days=1, seed=demo_seed)
        tag = f"train{demo_seed}-"  # keys that cannot collide with the world being matched
        frames_l.append(w.listings.assign(item_id=tag + w.listings["item_id"].astype(str)))
        frames_p.append(w.products.assign(sku=tag + w.products["sku"].astype(str)))
        frames_t.append(
            w.truth_matches.assign(
                item_id=tag + w.truth_matches["item_id"].astype(str),
                sku=(tag + w.truth_matches["sku"].astype(str)).where(w.truth_matches["sku"].notna()),
            )
        )
    if labels is not None and len(labels):
        frames_l.append(listings)
        frames_p.append(products)
        frames_lab.append(labels)
    if not frames_l:
        return None
    all_l = pd.concat(frames_l, ignore_index=True)
    all_p = pd.concat(frames_p, ignore_index=True)
    truth = pd.concat(frames_t, ignore_index=True) if frames_t else None
    lab = pd.concat(frames_lab, ignore_index=True) if frames_lab else None
    try:
        return train_listing_model(all_l, all_p, truth=truth, labels=lab)
    except ModelError:
        return None
