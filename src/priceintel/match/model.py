"""A learned listing → product matcher trained on labelled pairs (human labels and/or a known truth).

`train_listing_model(listings, products, truth=None, labels=None)` blocks candidate pairs exactly like
`match_listings`, labels each candidate (a stored human label first, else the truth: same sku = 1),
and fits the calibrated `PairClassifier` on the pair features of `priceintel.match.rules.FEATURES`.
Thresholds are chosen for precision on listings held out from the fit (20%, grouped by listing):
`threshold` is the lowest probability whose held-out precision reaches `min_precision`, and pairs
between `review_low` and `threshold` go to the review queue.

`pipeline_model(listings, products, labels)` is what the match notebook uses: the truth of a
separate, independently seeded demo world (never the world being matched) plus the stored labels.

`own_data_model(listings, products, labels)` needs no demo truth about the data being matched: it
learns from (a) stored review labels, (b) identifier-confirmed pairs of the team's own listings
(`identifier_pairs`: same normalised GTIN, or same brand + MPN; the other candidates of such a listing
are negatives) and (c) optionally the generic demo-world model data. Identifier pairs would leak: their
positives are exactly the pairs whose identifier features agree, and at match time those listings are
already taken by the GTIN stage. So they are fitted on features computed as if the listing had no
identifier: the identifier-agreement columns (`IDENTIFIER_FEATURES`) are set missing and `hand_score`
is recomputed without them, leaving title, brand and size cues that carry over to listings without one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from priceintel.match import fitcache
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
    sources: dict = field(default_factory=dict)

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
    return _fit_listing_model(data, min_precision, review_precision, seed)


def _fit_listing_model(
    data: pd.DataFrame,
    min_precision: float,
    review_precision: float,
    seed: int,
    threshold_rows: np.ndarray | None = None,
) -> ListingModel:
    """Fit on labelled candidates; thresholds from 20% of listings held out (on `threshold_rows` among
    them when those hold both classes, e.g. the team's own pairs rather than generic demo pairs). A fit on the
    same pairs and settings is read back from `fitcache` (the same model: every draw is seeded)."""
    return fitcache.fitted(
        data,
        ("listing-model", min_precision, review_precision, seed),
        lambda: _fit_now(data, min_precision, review_precision, seed, threshold_rows),
        rows=threshold_rows,
    )


def _fit_now(
    data: pd.DataFrame,
    min_precision: float,
    review_precision: float,
    seed: int,
    threshold_rows: np.ndarray | None,
) -> ListingModel:
    y = data["label"].to_numpy(dtype=int)
    groups = (data["retailer"].astype(str) + "\x1f" + data["item_id"].astype(str)).to_numpy()
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    held = set(rng.choice(uniq, size=max(1, len(uniq) // 5), replace=False).tolist())
    is_held = np.array([g in held for g in groups])
    scored = is_held
    if threshold_rows is not None:
        own = is_held & threshold_rows
        if len(np.unique(y[own])) == 2:
            scored = own
    X = data[match.FEATURES]
    with threadpool_limits(1):
        if y[~is_held].min() != y[~is_held].max() and y[scored].min() != y[scored].max():
            probe = PairClassifier(seed=seed).fit(X[~is_held], y[~is_held])
            ph = probe.predict_proba(X[scored])
            thr = choose_threshold(y[scored], ph, min_precision=min_precision)
            low = choose_threshold(y[scored], ph, min_precision=review_precision)
            hold = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in prf(y[scored], ph >= thr).items()}
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
    frames_l, frames_p, frames_t, frames_lab = [], [], [], []
    if demo_seed is not None:
        dl, dp, dt = _demo_world(demo_seed, demo_products)
        frames_l.append(dl)
        frames_p.append(dp)
        frames_t.append(dt)
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


def _demo_world(demo_seed: int, demo_products: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(listings, products, truth) of an independently seeded demo world, keys tagged so they never collide."""
    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=demo_products, n_days=1, seed=demo_seed)
    tag = f"train{demo_seed}-"  # keys that cannot collide with the world being matched
    truth = w.truth_matches.assign(
        item_id=tag + w.truth_matches["item_id"].astype(str),
        sku=(tag + w.truth_matches["sku"].astype(str)).where(w.truth_matches["sku"].notna()),
    )
    return (
        w.listings.assign(item_id=tag + w.listings["item_id"].astype(str)),
        w.products.assign(sku=tag + w.products["sku"].astype(str)),
        truth,
    )


# --- training on the team's own data ----------------------------------------------------------

#: pair features that say whether identifiers agree; missing on identifier-derived training pairs
IDENTIFIER_FEATURES = ("gtin_conflict", "model")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def _norm_mpn(value: object) -> str | None:
    """An MPN compared as lowercase letters and digits (≥ 4 characters, at least one digit), else None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = _NON_ALNUM.sub("", str(value).lower())
    return s if len(s) >= 4 and any(c.isdigit() for c in s) else None


def _identifier_positions(listings: pd.DataFrame, products: pd.DataFrame, lp: pd.DataFrame, pp: pd.DataFrame):
    """Frame li, pi, via: each listing whose GTIN (else brand + MPN) names exactly one product."""
    listings, products = match._prepare_inputs(listings, products)
    l_mpn = match._col(listings, "mpn").map(_norm_mpn).to_numpy()
    p_mpn = match._col(products, "mpn").map(_norm_mpn).to_numpy()
    li_all = pd.DataFrame({"li": np.arange(len(lp)), "gtin": lp["gtin"].to_numpy(), "mpn": l_mpn})
    pi_all = pd.DataFrame({"pi": np.arange(len(pp)), "gtin": pp["gtin"].to_numpy(), "mpn": p_mpn})
    by_gtin = li_all.dropna(subset=["gtin"]).merge(pi_all.dropna(subset=["gtin"])[["pi", "gtin"]], on="gtin")
    by_mpn = li_all.dropna(subset=["mpn"]).merge(pi_all.dropna(subset=["mpn"])[["pi", "mpn"]], on="mpn")
    if len(by_mpn):  # an MPN is only an identifier within one brand
        lb = lp["brand"].to_numpy()[by_mpn["li"]].astype(object)
        pb = pp["brand"].to_numpy()[by_mpn["pi"]].astype(object)
        by_mpn = by_mpn[match._brand_agreement(lb, pb) == 1.0]
    by_mpn = by_mpn[~by_mpn["li"].isin(by_gtin["li"])]  # the GTIN speaks first
    ids = pd.concat([by_gtin.assign(via="gtin"), by_mpn.assign(via="mpn")], ignore_index=True)
    ids = ids.drop_duplicates(["li", "pi"])
    ambiguous = ids["li"].duplicated(keep=False)  # one identifier naming two catalogue rows: no evidence
    return ids.loc[~ambiguous, ["li", "pi", "via"]].reset_index(drop=True)


def identifier_pairs(listings: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Listing → product pairs confirmed by identifiers: retailer, item_id, sku, via (``gtin`` or ``mpn``).

    A listing's normalised GTIN equal to exactly one product's, else its MPN (letters and digits only)
    equal to exactly one product's of the same brand. Nothing else (titles, scores) is used."""
    listings, products = match._prepare_inputs(listings, products)
    pp = match._prepare_products(products)
    lp = match._prepare_listings(listings, {b for b in pp["brand"] if b})
    ids = _identifier_positions(listings, products, lp, pp)
    return pd.DataFrame(
        {
            "retailer": lp["retailer"].to_numpy()[ids["li"]],
            "item_id": lp["item_id"].to_numpy()[ids["li"]],
            "sku": pp["sku"].to_numpy()[ids["pi"]],
            "via": ids["via"].to_numpy(),
        }
    )


def hand_score(feats: pd.DataFrame) -> np.ndarray:
    """The rules' hand-weighted score (`rules.WEIGHTS`, `rules.PENALTIES`) recomputed from a feature frame."""
    num = np.zeros(len(feats))
    den = np.zeros(len(feats))
    for name, w in match.WEIGHTS.items():
        f = feats[name].to_numpy(dtype=float)
        ok = np.isfinite(f)
        num += np.where(ok, w * np.nan_to_num(f), 0.0)
        den += np.where(ok, w, 0.0)
    score = np.divide(num, den, out=np.zeros(len(feats)), where=den > 0)
    for name in ("brand", "size", "model"):
        score = score * np.where(feats[name].to_numpy(dtype=float) == 0.0, match.PENALTIES[name], 1.0)
    score = score * np.where(feats["gtin_conflict"].to_numpy(dtype=float) == 1.0, match.PENALTIES["gtin"], 1.0)
    return np.clip(score, 0, 1)


def _add_pairs(feats: pd.DataFrame, y: np.ndarray, src: np.ndarray, pairs: pd.DataFrame, lp, pp, source: str):
    """Set label/source of `pairs` (li, pi, label) in the candidate table, appending those not blocked."""
    pos = {(a, b): i for i, (a, b) in enumerate(zip(feats["li"], feats["pi"]))}
    for a, b, v in zip(pairs["li"], pairs["pi"], pairs["label"]):
        if (a, b) in pos:
            y[pos[(a, b)]], src[pos[(a, b)]] = v, source
    extra = pairs[[(a, b) not in pos for a, b in zip(pairs["li"], pairs["pi"])]]
    if len(extra):
        P, L = match._tfidf(pp["text"], lp["text"])
        ef = match._score_pairs(lp, pp, P, L, extra["li"].to_numpy(), extra["pi"].to_numpy())
        feats = pd.concat([feats, ef], ignore_index=True)
        y = np.concatenate([y, extra["label"].to_numpy(dtype=float)])
        src = np.concatenate([src, np.full(len(extra), source, dtype=object)])
    return feats, y, src


def own_training_pairs(
    listings: pd.DataFrame, products: pd.DataFrame, labels: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Labelled candidates from the team's own data: features, label, source (``label`` / ``identifier``).

    Identifier-confirmed listings (`identifier_pairs`) give one positive (the named product) and their
    other blocked candidates as negatives; human labels win over them. On identifier rows the
    `IDENTIFIER_FEATURES` are set missing and `hand_score` recomputed, so nothing leaks (module docstring)."""
    lp, pp, feats = match.candidate_features(listings, products)
    cols = [*match.FEATURES, "li", "pi", "label", "source", "retailer", "item_id"]
    if lp.empty or pp.empty:
        return pd.DataFrame(columns=cols)
    y = np.full(len(feats), np.nan)
    src = np.full(len(feats), "", dtype=object)
    ids = _identifier_positions(listings, products, lp, pp)
    if len(ids):
        named = dict(zip(ids["li"], ids["pi"]))
        cand = feats.loc[feats["li"].isin(named), ["li", "pi"]]
        neg = cand[cand["pi"].to_numpy() != cand["li"].map(named).to_numpy()].assign(label=0)
        pairs = pd.concat([ids[["li", "pi"]].assign(label=1), neg], ignore_index=True)
        feats, y, src = _add_pairs(feats, y, src, pairs, lp, pp, "identifier")
    lab = match._label_pairs(labels, lp, pp)
    if len(lab):
        feats, y, src = _add_pairs(feats, y, src, lab, lp, pp, "label")
    feats = feats.assign(label=y, source=src)
    is_id = (feats["source"] == "identifier").to_numpy()
    if is_id.any():
        feats.loc[is_id, list(IDENTIFIER_FEATURES)] = np.nan
        feats.loc[is_id, "hand_score"] = hand_score(feats.loc[is_id])
    feats = feats.assign(
        retailer=lp["retailer"].to_numpy()[feats["li"].to_numpy(dtype=int)],
        item_id=lp["item_id"].to_numpy()[feats["li"].to_numpy(dtype=int)],
    )
    return feats.loc[feats["label"].notna(), cols].reset_index(drop=True)


@functools.lru_cache(maxsize=4)
def _generic_pairs_cached(demo_seed: int, demo_products: int) -> pd.DataFrame:
    """Labelled candidates of the generic demo world (cached: the same seed gives the same frame)."""
    dl, dp, dt = _demo_world(demo_seed, demo_products)
    return labelled_candidates(dl, dp, truth=dt).assign(source="generic")


def generic_training_pairs(demo_seed: int = 1042, demo_products: int = 200) -> pd.DataFrame:
    """Labelled candidates generated by the package itself: an independently seeded demo world and its truth."""
    return _generic_pairs_cached(int(demo_seed), int(demo_products)).copy()


def _fit_own(data: pd.DataFrame, min_precision: float, seed: int) -> ListingModel:
    """`_fit_listing_model` on own + generic pairs, thresholds judged on the own pairs (daily runs over
    unchanged listings and labels train on the same pairs: `fitcache` gives back the same fit)."""
    own = (data["source"] != "generic").to_numpy()
    return _fit_listing_model(data, min_precision, 0.5, seed, threshold_rows=own)


def own_data_model(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    generic: bool = True,
    seed: int = 17,
    demo_seed: int = 1042,
    demo_products: int = 200,
    min_precision: float = 0.98,
    min_auto: float = 0.5,
    generic_until: int | None = 100,
) -> ListingModel | None:
    """A matcher for a team's own catalogue and listings, without any truth about them; None if nothing to learn.

    Trains on stored review `labels`, identifier-confirmed pairs of `listings` (`own_training_pairs`,
    identifier features masked so they do not leak) and, with `generic`, the package's own demo-world
    pairs (`generic_training_pairs`) while the own pairs hold fewer than `generic_until` positives (None:
    always). Measured on Abt-Buy (`benchmark.cold_start_report`), demo-world pairs mixed into 170
    identifier positives lowered average precision on the test split (0.83 → 0.79) and pushed the auto
    threshold to 0.96: generic data is a cold-start crutch, not a supplement.

    The auto threshold is the lowest probability reaching `min_precision` on 20% of listings held out,
    judged on the team's own held-out pairs when they hold both classes, else on the generic ones, and
    never below `min_auto` (a pair the calibrated model gives less than even odds is never automatic,
    however clean the held-out pairs looked: data unlike the training pairs is where cold start fails);
    `sources` counts the training pairs of each source.
    With no labels, no identifier pairs and `generic=False` (or fewer than 10 pairs of a class) it returns None, and
    `match_listings(model=None)` falls back to GTIN + the conservative `rules.NO_MODEL_THRESHOLD`."""
    parts = [own_training_pairs(listings, products, labels)]
    if generic and (generic_until is None or parts[0]["label"].sum() < generic_until):
        parts.append(generic_training_pairs(demo_seed, demo_products))
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    data = pd.concat(parts, ignore_index=True)
    # fewer than 10 pairs of a class is too little to beat the rules: 20 simulated review labels (19
    # matches, 1 not) alone scored precision 0.96 on a fresh demo world's GTIN-less listings, rules 1.0
    if data["label"].value_counts().reindex([0, 1], fill_value=0).min() < 10:
        return None
    try:
        model = _fit_own(data, min_precision, seed)
    except ModelError:
        return None
    model.threshold = max(model.threshold, float(min_auto))
    model.review_low = min(model.review_low, model.threshold)
    model.sources = {
        str(s): {"pairs": int(len(g)), "positive": int(g["label"].sum())} for s, g in data.groupby("source")
    }
    return model


def pair_features(listings: pd.DataFrame, products: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """`rules.FEATURES` of given pairs (retailer, item_id, sku), in their order (TF-IDF fitted on both frames)."""
    match._require(pairs, ["retailer", "item_id", "sku"], "pairs")
    listings, products = match._prepare_inputs(listings, products)
    pp = match._prepare_products(products)
    lp = match._prepare_listings(listings, {b for b in pp["brand"] if b})
    lpos = pd.Series(np.arange(len(lp)), index=pd.MultiIndex.from_arrays([lp["retailer"], lp["item_id"]]))
    keys = pd.MultiIndex.from_arrays([pairs["retailer"].astype(str), pairs["item_id"].astype(str)])
    li = lpos.reindex(keys).to_numpy()
    pi = pd.Series(np.arange(len(pp)), index=pp["sku"]).reindex(pairs["sku"].astype(str)).to_numpy()
    if pd.isna(li).any() or pd.isna(pi).any():
        raise ModelError(f"pairs: {int((pd.isna(li) | pd.isna(pi)).sum())} pair(s) name a listing or sku not given")
    P, L = match._tfidf(pp["text"], lp["text"])
    return match._score_pairs(lp, pp, P, L, li.astype(int), pi.astype(int))[match.FEATURES]
