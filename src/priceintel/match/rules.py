"""Listing → product matching: GTIN + fuzzy matcher, evaluation.

`match_listings` works in three transparent stages:

1. exact normalised GTIN (method ``gtin``, score 1.0);
2. candidate blocking (TF-IDF character n-gram nearest neighbours overall and within each brand)
   scored by a weighted mean of features (`WEIGHTS`) times conflict penalties (`PENALTIES`),
   method ``fuzzy``;
3. one-to-one assignment per retailer (greedy by score): a product gets at most one listing per
   retailer and a listing at most one product. Scores ≥ threshold are ``auto``, scores in the
   review band ``review``, lower ones are dropped.

Titles, sizes and model numbers are read by `priceintel.match.normalize`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import MATCH_COLUMNS, MATCHED_STATUSES, normalize_gtin, require_columns
from priceintel.match.normalize import extract_model_numbers, extract_size, normalize_title

#: weights of the fuzzy features (a feature that is unknown for a pair is left out of the mean)
WEIGHTS = {"token_set": 0.30, "tfidf": 0.30, "brand": 0.15, "size": 0.15, "model": 0.10}
#: multiplicative penalties applied when both sides are known and disagree
PENALTIES = {"brand": 0.6, "size": 0.55, "model": 0.6, "gtin": 0.5}
#: nearest neighbours kept per listing (overall, and within its brand)
K_NEIGHBOURS = 10
#: memory (MB) sklearn may use per chunk of the nearest-neighbour distance matrix
WORKING_MEMORY_MB = 128
#: relative tolerance for two sizes to agree
SIZE_TOLERANCE = 0.03
#: auto threshold and review band of the hand-weighted score when no learned model is given (cold start).
#: Conservative on purpose: on Abt-Buy (someone else's electronics data, never tuned on) matching the full
#: tables one-to-one, listings of the test split's positive pairs reach precision 0.98 at 0.7 and 1.0 at
#: 0.8 but 0.975 at the former 0.6; true demo-world matches all score ≥ 0.80 (seeds 3–2024, up to 1000
#: products), so the demo is unchanged. Everything in the band goes to the review queue.
NO_MODEL_THRESHOLD = 0.75
NO_MODEL_REVIEW_BAND = (0.45, NO_MODEL_THRESHOLD)


class MatchError(PriceIntelError):
    """Bad input to the matcher; the message names the frame and the missing/bad column."""


# --- frame preparation -----------------------------------------------------------------------


def _require(df: pd.DataFrame, cols: Sequence[str], name: str) -> None:
    """Raise MatchError naming columns missing from a frame."""
    require_columns(df, cols, name, MatchError)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column as object Series, or all-None when absent."""
    if name in df.columns:
        return df[name].astype(object).where(df[name].notna(), None)
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _size_arrays(texts: Iterable[object]) -> tuple[np.ndarray, np.ndarray]:
    """Sizes as (value array with NaN, unit array with "")."""
    vals, units = [], []
    for t in texts:
        sz = extract_size(t)
        vals.append(sz[0] if sz else np.nan)
        units.append(sz[1] if sz else "")
    return np.array(vals, dtype=float), np.array(units, dtype=object)


def _detect_brands(titles: Sequence[str], brands: set[str]) -> list[str]:
    """Known brand found in each normalised title (longest n-gram up to 4 words), else ""."""
    out = []
    for t in titles:
        words = t.split()
        hit = ""
        for n in (4, 3, 2, 1):
            for i in range(len(words) - n + 1):
                cand = " ".join(words[i : i + n])
                if cand in brands:
                    hit = cand
                    break
            if hit:
                break
        out.append(hit)
    return out


def _prepare_products(products: pd.DataFrame) -> pd.DataFrame:
    """Normalised text, brand, size, GTIN and model numbers of the catalogue."""
    name = products["name"].fillna("").astype(str)
    brand = _col(products, "brand").map(normalize_title)
    size_txt = _col(products, "size").fillna("").astype(str)
    text = [normalize_title(f"{b} {n} {s}") for b, n, s in zip(brand, name, size_txt)]
    sv, su = _size_arrays(size_txt.where(size_txt != "", name))
    mpn = _col(products, "mpn")
    models = [frozenset(extract_model_numbers(n) + extract_model_numbers(m)) for n, m in zip(name, mpn)]
    return pd.DataFrame(
        {
            "sku": products["sku"].astype(str).to_numpy(),
            "text": text,
            "brand": brand.to_numpy(),
            "gtin": _col(products, "gtin").map(normalize_gtin).to_numpy(),
            "size_v": sv,
            "size_u": su,
            "models": models,
        }
    )


def _prepare_listings(listings: pd.DataFrame, known_brands: set[str]) -> pd.DataFrame:
    """Normalised text, brand (column or detected in title), size, GTIN, model numbers."""
    title = listings["title"].fillna("").astype(str)
    norm = [normalize_title(t) for t in title]
    brand = _col(listings, "brand").map(normalize_title).fillna("")
    detected = _detect_brands(norm, known_brands)
    brand = np.where(brand.to_numpy() != "", brand.to_numpy(), np.array(detected, dtype=object))
    text = [t if (not b or b in t) else f"{b} {t}" for t, b in zip(norm, brand)]
    sv, su = _size_arrays(title)
    mpn = _col(listings, "mpn")
    models = [frozenset(extract_model_numbers(t) + extract_model_numbers(m)) for t, m in zip(title, mpn)]
    return pd.DataFrame(
        {
            "retailer": listings["retailer"].astype(str).to_numpy(),
            "item_id": listings["item_id"].astype(str).to_numpy(),
            "text": text,
            "brand": brand,
            "gtin": _col(listings, "gtin").map(normalize_gtin).to_numpy(),
            "size_v": sv,
            "size_u": su,
            "models": models,
        }
    )


# --- candidates and features -----------------------------------------------------------------


def _tfidf(prod_text: Sequence[str], list_text: Sequence[str]):
    """L2-normalised TF-IDF char_wb (3,4)-gram matrices of products and listings."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=1, sublinear_tf=True, dtype=np.float32)
    vec.fit(list(prod_text) + list(list_text))
    return vec.transform(prod_text), vec.transform(list_text)


def _candidates(P, L, p_brand: np.ndarray, l_brand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(listing idx, product idx) pairs: global TF-IDF neighbours ∪ neighbours within the brand."""
    from sklearn import config_context
    from sklearn.neighbors import NearestNeighbors

    kk = min(k, P.shape[0])
    nn = NearestNeighbors(n_neighbors=kk, metric="cosine", algorithm="brute").fit(P)
    with config_context(working_memory=WORKING_MEMORY_MB):  # chunked distances: bounded peak memory
        _, idx = nn.kneighbors(L)
    li = [np.repeat(np.arange(L.shape[0]), kk)]
    pi = [idx.ravel()]
    # blocking by brand: the best products of the listing's own brand are always candidates
    p_codes = pd.Series(p_brand)
    for b, l_rows in pd.Series(np.arange(len(l_brand))).groupby(l_brand).groups.items():
        if not b:
            continue
        p_rows = np.flatnonzero(p_codes.to_numpy() == b)
        if len(p_rows) == 0:
            continue
        l_rows = np.asarray(l_rows)
        sims = (L[l_rows] @ P[p_rows].T).toarray()
        kb = min(k, len(p_rows))
        top = np.argpartition(-sims, kb - 1, axis=1)[:, :kb]
        li.append(np.repeat(l_rows, kb))
        pi.append(p_rows[top.ravel()])
    pairs = np.unique(np.stack([np.concatenate(li), np.concatenate(pi)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _size_agreement(lv, lu, pv, pu) -> np.ndarray:
    """1 agree, 0 conflict, NaN unknown (oz and fl oz compare as ounces)."""
    known = np.isfinite(lv) & np.isfinite(pv) & (lu != "") & (pu != "")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(np.log(lv / pv))
        oz_ratio = np.abs(
            np.log(
                (lv / np.where(lu == "g", 28.349523125, 29.5735295625))
                / (pv / np.where(pu == "g", 28.349523125, 29.5735295625))
            )
        )
    tol = np.log1p(SIZE_TOLERANCE)
    same = (lu == pu) & (ratio <= tol)
    mass_vol = np.isin(lu, ["g", "ml"]) & np.isin(pu, ["g", "ml"]) & (lu != pu) & ((ratio <= tol) | (oz_ratio <= tol))
    out = np.where(same | mass_vol, 1.0, 0.0)
    return np.where(known, out, np.nan)


def _brand_agreement(lb: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """1 same brand (exact or ≥ 90 fuzzy), 0 different, NaN unknown."""
    from rapidfuzz import fuzz

    known = (lb != "") & (pb != "") & pd.notna(pb)
    eq = lb == pb
    out = np.where(eq, 1.0, 0.0)
    diff = known & ~eq
    if diff.any():
        combos = {(a, b) for a, b in zip(lb[diff], pb[diff])}
        close = {
            c: fuzz.ratio(c[0], c[1]) >= 90 or c[0].startswith(c[1] + " ") or c[1].startswith(c[0] + " ")
            for c in combos
        }
        out[diff] = [1.0 if close[(a, b)] else 0.0 for a, b in zip(lb[diff], pb[diff])]
    return np.where(known, out, np.nan)


def _model_agreement(lm: np.ndarray, pm: np.ndarray) -> np.ndarray:
    """1 shared model number, 0 both have model numbers but none shared, NaN unknown."""
    out = np.full(len(lm), np.nan)
    both = np.flatnonzero([bool(a) and bool(b) for a, b in zip(lm, pm)])
    for i in both:
        out[i] = 1.0 if lm[i] & pm[i] else 0.0
    return out


def _score_pairs(lp: pd.DataFrame, pp: pd.DataFrame, P, L, li: np.ndarray, pi: np.ndarray) -> pd.DataFrame:
    """Feature table and final score of candidate pairs."""
    from rapidfuzz import fuzz, process

    ltext = lp["text"].to_numpy()[li]
    ptext = pp["text"].to_numpy()[pi]
    tok = process.cpdist(list(ltext), list(ptext), scorer=fuzz.token_set_ratio, workers=1) / 100.0
    cos = np.asarray(L[li].multiply(P[pi]).sum(axis=1)).ravel()
    feats = {
        "token_set": tok.astype(float),
        "ratio": process.cpdist(list(ltext), list(ptext), scorer=fuzz.ratio, workers=1) / 100.0,
        "partial": process.cpdist(list(ltext), list(ptext), scorer=fuzz.partial_ratio, workers=1) / 100.0,
        "token_sort": process.cpdist(list(ltext), list(ptext), scorer=fuzz.token_sort_ratio, workers=1) / 100.0,
        "tfidf": np.clip(cos, 0, 1).astype(float),
        "brand": _brand_agreement(lp["brand"].to_numpy()[li].astype(object), pp["brand"].to_numpy()[pi].astype(object)),
        "size": _size_agreement(
            lp["size_v"].to_numpy()[li],
            lp["size_u"].to_numpy()[li],
            pp["size_v"].to_numpy()[pi],
            pp["size_u"].to_numpy()[pi],
        ),
        "model": _model_agreement(lp["models"].to_numpy()[li], pp["models"].to_numpy()[pi]),
    }
    num = np.zeros(len(li))
    den = np.zeros(len(li))
    for name, w in WEIGHTS.items():
        f = feats[name]
        ok = np.isfinite(f)
        num += np.where(ok, w * np.nan_to_num(f), 0.0)
        den += np.where(ok, w, 0.0)
    score = num / den
    for name in ("brand", "size", "model"):
        score = score * np.where(feats[name] == 0.0, PENALTIES[name], 1.0)
    lg, pg = lp["gtin"].to_numpy()[li], pp["gtin"].to_numpy()[pi]
    gtin_conflict = pd.notna(lg) & pd.notna(pg) & (lg != pg)
    score = score * np.where(gtin_conflict, PENALTIES["gtin"], 1.0)
    feats["gtin_conflict"] = np.where(pd.notna(lg) & pd.notna(pg), gtin_conflict.astype(float), np.nan)
    feats["hand_score"] = np.clip(score, 0, 1)
    return pd.DataFrame({"li": li, "pi": pi, "score": np.clip(score, 0, 1), **feats})


def _greedy_one_to_one(
    retailer: np.ndarray, li: np.ndarray, pi: np.ndarray, score: np.ndarray, taken_l: set, taken_p: set
) -> np.ndarray:
    """Indices of pairs kept by greedy assignment (best score first) per retailer."""
    order = np.lexsort((pi, li, -score))
    keep = []
    for j in order.tolist():
        lkey, pkey = int(li[j]), (retailer[j], int(pi[j]))
        if lkey in taken_l or pkey in taken_p:
            continue
        taken_l.add(lkey)
        taken_p.add(pkey)
        keep.append(j)
    return np.array(keep, dtype=int)


# --- public API -----------------------------------------------------------------------------


def _prepare_inputs(listings: pd.DataFrame, products: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validated, de-duplicated listings and products."""
    _require(listings, ["retailer", "item_id", "title"], "listings")
    _require(products, ["sku", "name"], "products")
    listings = listings.drop_duplicates(["retailer", "item_id"]).reset_index(drop=True)
    products = products.drop_duplicates("sku").reset_index(drop=True)
    return listings, products


def _label_pairs(labels: pd.DataFrame | None, lp: pd.DataFrame, pp: pd.DataFrame) -> pd.DataFrame:
    """Labels as positions: frame li, pi, label for the pairs whose listing and product are present."""
    if labels is None or len(labels) == 0:
        return pd.DataFrame({"li": np.zeros(0, int), "pi": np.zeros(0, int), "label": np.zeros(0, int)})
    _require(labels, ["retailer", "item_id", "sku", "label"], "labels")
    lab = labels.dropna(subset=["sku"]).astype({"retailer": str, "item_id": str, "sku": str})
    y = pd.to_numeric(lab["label"].map(lambda v: {True: 1, False: 0}.get(v, v)), errors="coerce")
    if y.isna().any() or not y.isin([0, 1]).all():
        raise MatchError("labels: column label must be 1 (same product) or 0 (different)")
    lpos = pd.Series(np.arange(len(lp)), index=pd.MultiIndex.from_arrays([lp["retailer"], lp["item_id"]]))
    ppos = pd.Series(np.arange(len(pp)), index=pp["sku"])
    li = lpos.reindex(pd.MultiIndex.from_arrays([lab["retailer"], lab["item_id"]])).to_numpy()
    pi = ppos.reindex(lab["sku"]).to_numpy()
    ok = ~(pd.isna(li) | pd.isna(pi))
    out = pd.DataFrame({"li": li[ok].astype(int), "pi": pi[ok].astype(int), "label": y.to_numpy()[ok].astype(int)})
    # the latest verdict per pair wins (labels are read in order)
    return out.drop_duplicates(["li", "pi"], keep="last").reset_index(drop=True)


def candidate_features(
    listings: pd.DataFrame, products: pd.DataFrame, k: int = K_NEIGHBOURS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(prepared listings, prepared products, features of every blocked candidate pair)."""
    listings, products = _prepare_inputs(listings, products)
    pp = _prepare_products(products)
    lp = _prepare_listings(listings, {b for b in pp["brand"] if b})
    if lp.empty or pp.empty:
        return lp, pp, pd.DataFrame(columns=["li", "pi", "score", *FEATURES])
    P, L = _tfidf(pp["text"], lp["text"])
    li, pi = _candidates(P, L, pp["brand"].to_numpy(), lp["brand"].to_numpy(), k)
    return lp, pp, _score_pairs(lp, pp, P, L, li, pi)


#: features of a candidate pair (inputs of a learned model)
FEATURES = [
    "token_set",
    "ratio",
    "partial",
    "token_sort",
    "tfidf",
    "brand",
    "size",
    "model",
    "gtin_conflict",
    "hand_score",
]


def match_listings(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    threshold: float | None = None,
    review_band: tuple[float, float] | None = None,
    k: int = K_NEIGHBOURS,
    return_features: bool = False,
    labels: pd.DataFrame | None = None,
    model=None,
) -> pd.DataFrame:
    """Match retailer listings to our products → MATCH_COLUMNS (status auto / review / confirmed).

    `labels` (retailer, item_id, sku, label) are human verdicts: confirmed pairs are kept as they are
    (method ``human``), rejected pairs are never proposed. `model` (a trained `ListingModel`) replaces
    the hand-weighted score of fuzzy pairs by its calibrated probability; its thresholds are the
    defaults then. Without a model the defaults are the conservative `NO_MODEL_THRESHOLD` (0.75) and
    `NO_MODEL_REVIEW_BAND` (0.45–0.75): identifiers first, then only confident fuzzy pairs are automatic
    and every uncertain one waits in the review queue.
    """
    threshold, lo_band = _thresholds(threshold, review_band, model)
    cols = MATCH_COLUMNS + (list(WEIGHTS) if return_features else [])
    listings, products = _prepare_inputs(listings, products)
    if listings.empty or products.empty:
        return pd.DataFrame(columns=cols)
    pp = _prepare_products(products)
    lp = _prepare_listings(listings, {b for b in pp["brand"] if b})
    lab = _label_pairs(labels, lp, pp)
    rejected = set(zip(lab.loc[lab["label"] == 0, "li"], lab.loc[lab["label"] == 0, "pi"]))
    taken = _Taken()
    # in this order: each stage sees only the listings and product slots the earlier ones left
    out = [
        _confirmed_pairs(lab[lab["label"] == 1], lp, taken),  # 0. human confirmations stand
        _gtin_pairs(lp, pp, rejected, taken),  # 1. exact GTIN
        _fuzzy_pairs(lp, pp, rejected, taken, k, model, lo_band),  # 2. fuzzy (or learned) on the rest
    ]
    found = [frame for frame in out if frame is not None]
    if not found:
        return pd.DataFrame(columns=cols)
    return _match_frame(pd.concat(found, ignore_index=True), lp, pp, threshold)[cols]


def _thresholds(threshold: float | None, review_band: tuple[float, float] | None, model) -> tuple[float, float]:
    """(auto threshold, lowest score kept for review): the model's when given, else the NO_MODEL ones."""
    if threshold is None:
        threshold = model.threshold if model is not None else NO_MODEL_THRESHOLD
    if review_band is None:
        review_band = (model.review_low, threshold) if model is not None else (NO_MODEL_REVIEW_BAND[0], threshold)
    lo_band = min(review_band[0], threshold)
    if not 0 <= lo_band <= threshold <= 1:
        raise MatchError(f"threshold={threshold} and review_band={review_band} must lie in [0, 1]")
    return threshold, lo_band


class _Taken:
    """Listings and (retailer, product) slots already assigned, shared by the matching stages."""

    def __init__(self) -> None:
        self.listings: set = set()
        self.products: set = set()

    def assign(self, retailer: np.ndarray, li: np.ndarray, pi: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Indices of the pairs kept by `_greedy_one_to_one` (which marks them taken)."""
        return _greedy_one_to_one(retailer, li, pi, score, self.listings, self.products)


def _confirmed_pairs(conf: pd.DataFrame, lp: pd.DataFrame, taken: _Taken) -> pd.DataFrame | None:
    """Human-confirmed pairs (method ``human``, status ``confirmed``), one-to-one per retailer."""
    if not len(conf):
        return None
    li, pi = conf["li"].to_numpy(), conf["pi"].to_numpy()
    keep = taken.assign(lp["retailer"].to_numpy()[li], li, pi, np.ones(len(conf)))
    c = conf.iloc[keep]
    return pd.DataFrame(
        {"li": c["li"].to_numpy(), "pi": c["pi"].to_numpy(), "method": "human", "score": 1.0, "status": "confirmed"}
    )


def _gtin_pairs(lp: pd.DataFrame, pp: pd.DataFrame, rejected: set, taken: _Taken) -> pd.DataFrame | None:
    """Listings whose normalised GTIN is a product's (method ``gtin``, score 1), rejected pairs left out."""
    gt = pp.dropna(subset=["gtin"]).drop_duplicates("gtin").reset_index().rename(columns={"index": "pi"})
    hits = lp.reset_index().rename(columns={"index": "li"}).dropna(subset=["gtin"]).merge(gt[["gtin", "pi"]], on="gtin")
    if rejected and len(hits):
        hits = hits[[(a, b) not in rejected for a, b in zip(hits["li"], hits["pi"])]]
    if not len(hits):
        return None
    keep = taken.assign(hits["retailer"].to_numpy(), hits["li"].to_numpy(), hits["pi"].to_numpy(), np.ones(len(hits)))
    g = hits.iloc[keep]
    return pd.DataFrame({"li": g["li"].to_numpy(), "pi": g["pi"].to_numpy(), "method": "gtin", "score": 1.0})


def _fuzzy_pairs(
    lp: pd.DataFrame, pp: pd.DataFrame, rejected: set, taken: _Taken, k: int, model, lo_band: float
) -> pd.DataFrame | None:
    """Blocked candidates of the listings still unmatched, scored (by `model` when given), one-to-one."""
    rest = np.array(sorted(set(range(len(lp))) - taken.listings), dtype=int)
    if not len(rest):
        return None
    P, L = _tfidf(pp["text"], lp["text"].to_numpy()[rest])
    li_loc, pi = _candidates(P, L, pp["brand"].to_numpy(), lp["brand"].to_numpy()[rest], k)
    feats = _score_pairs(lp.iloc[rest].reset_index(drop=True), pp, P, L, li_loc, pi)
    feats["li"] = rest[feats["li"].to_numpy()]
    if model is not None and len(feats):
        feats["score"] = model.predict_proba(feats)
    if rejected:
        feats = feats[[(a, b) not in rejected for a, b in zip(feats["li"], feats["pi"])]]
    feats = feats[feats["score"] >= lo_band]
    if not len(feats):
        return None
    # 3. one-to-one per retailer
    keep = taken.assign(
        lp["retailer"].to_numpy()[feats["li"].to_numpy()],
        feats["li"].to_numpy(),
        feats["pi"].to_numpy(),
        feats["score"].to_numpy(),
    )
    return feats.iloc[keep].assign(method="fuzzy" if model is None else "learned")


def _match_frame(res: pd.DataFrame, lp: pd.DataFrame, pp: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Positions → retailer, item_id, sku; rounded score; status (auto ≥ threshold, else review)."""
    res["retailer"] = lp["retailer"].to_numpy()[res["li"]]
    res["item_id"] = lp["item_id"].to_numpy()[res["li"]]
    res["sku"] = pp["sku"].to_numpy()[res["pi"]]
    res["score"] = res["score"].astype(float).round(4)
    auto = np.where(res["score"] >= threshold, "auto", "review")
    res["status"] = res["status"].fillna(pd.Series(auto, index=res.index)) if "status" in res else auto
    for name in WEIGHTS:
        if name not in res.columns:
            res[name] = np.nan
    return res.sort_values(["retailer", "item_id"], kind="stable").reset_index(drop=True)


def score_matches(pred: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Precision/recall/F1 of `auto` (and `confirmed`) predictions against truth `retailer, item_id, sku` (NaN =
    none)."""
    _require(pred, ["retailer", "item_id", "sku", "status"], "pred")
    _require(truth, ["retailer", "item_id", "sku"], "truth")
    key = ["retailer", "item_id", "sku"]
    p = pred.loc[pred["status"].isin(MATCHED_STATUSES), key].astype(str).drop_duplicates()
    t = truth.loc[truth["sku"].notna(), key].astype(str).drop_duplicates()
    tp = len(p.merge(t, on=key))
    fp, fn = len(p) - tp, len(t) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


#: the name used in docs/architecture.md
score = score_matches
