"""Category of a listing that matches nothing in our catalogue, learned from our own catalogue titles.

`CategoryModel.fit(titles, categories)` fits TF-IDF word (1–2) and character (2–5, within words)
n-grams and a logistic regression, calibrated (sigmoid, cross-validated) so that `confidence` is a
probability. The abstention threshold is chosen on a stratified held-out quarter of the titles: the
lowest confidence whose held-out precision (accuracy of the titles answered) reaches
`target_precision`, never below `min_confidence`. `predict` abstains (category None) below it, and
on titles with no word the catalogue ever used (gibberish, another language).

`categorize_unmatched(listings, products, matches)` labels the listings without an automatic or
confirmed match, trained on `products` (brand + name → category). `category_report` measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from priceintel import PriceIntelError
from priceintel.items import MATCHED_STATUSES, require_columns

SEED = 17
UNMATCHED_COLUMNS = ["retailer", "item_id", "category", "confidence", "source"]


class CategoryError(PriceIntelError):
    """Training data a category classifier cannot learn from (names what is missing)."""


def _texts(values: Sequence[object]) -> list[str]:
    """Titles as strings (missing → empty)."""
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _pipeline(seed: int, cv: int):
    """Word + char TF-IDF union feeding a sigmoid-calibrated logistic regression."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    union = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1),
    )
    clf = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
    return make_pipeline(union, CalibratedClassifierCV(clf, method="sigmoid", cv=cv))


def _precision_threshold(correct: np.ndarray, conf: np.ndarray, target: float) -> float:
    """Lowest confidence at which the answered held-out titles reach `target` precision (else above all)."""
    for t in np.unique(np.round(conf, 6)):
        keep = conf >= t
        if keep.any() and correct[keep].mean() >= target:
            return float(t)
    return float(conf.max()) + 1e-9 if len(conf) else 1.0


@dataclass
class CategoryModel:
    """Title → category classifier that abstains when unsure (see module docstring)."""

    target_precision: float = 0.9
    min_confidence: float = 0.5
    min_per_category: int = 5
    holdout_share: float = 0.25
    threshold: float = field(default=1.0, init=False)
    holdout: dict = field(default_factory=dict, init=False)

    def _check(self, titles: list[str], cats: pd.Series) -> None:
        """One-line CategoryError for data a classifier cannot learn from."""
        counts = cats.value_counts()
        if len(counts) < 2:
            raise CategoryError(f"CategoryModel.fit: need at least 2 categories (got {len(counts)})")
        few = counts[counts < self.min_per_category]
        if len(few):
            raise CategoryError(
                f"CategoryModel.fit: categories need ≥ {self.min_per_category} titles each; "
                f"too few in { ({str(k): int(v) for k, v in few.head(5).items()}) }"
            )

    def fit(self, titles: Sequence[object], categories: Sequence[object], seed: int = SEED) -> CategoryModel:
        """Fit on titles and their categories; the abstention threshold comes from a held-out quarter."""
        from sklearn.model_selection import train_test_split

        t = _texts(titles)
        cats = pd.Series(list(categories), dtype=object)
        if len(t) != len(cats):
            raise CategoryError(f"CategoryModel.fit: {len(t)} titles but {len(cats)} categories")
        ok = cats.notna().to_numpy() & np.array([bool(s.strip()) for s in t])
        t, cats = [s for s, k in zip(t, ok) if k], cats[ok].astype(str).reset_index(drop=True)
        self._check(t, cats)
        y = cats.to_numpy()
        tr, ho = train_test_split(
            np.arange(len(t)), test_size=self.holdout_share, stratify=y, random_state=seed, shuffle=True
        )
        with threadpool_limits(1):
            probe = self._fit_one([t[i] for i in tr], y[tr], seed)
            proba = probe.predict_proba([t[i] for i in ho])
        pred = probe.classes_[proba.argmax(axis=1)]
        conf = proba.max(axis=1)
        correct = pred == y[ho]
        chosen = _precision_threshold(correct, conf, self.target_precision)
        self.threshold = max(chosen, self.min_confidence)
        keep = conf >= self.threshold
        self.holdout = {
            "titles": int(len(ho)),
            "accuracy_all": round(float(correct.mean()), 4),
            "coverage": round(float(keep.mean()), 4),
            "precision_answered": round(float(correct[keep].mean()), 4) if keep.any() else None,
            "threshold": round(self.threshold, 4),
        }
        with threadpool_limits(1):
            self.model_ = self._fit_one(t, y, seed)
        return self

    def _fit_one(self, titles: list[str], y: np.ndarray, seed: int):
        """One fitted pipeline (calibration folds limited by the rarest category)."""
        cv = int(min(3, pd.Series(y).value_counts().min()))
        if cv < 2:
            raise CategoryError("CategoryModel.fit: a category has fewer than 2 titles after the held-out split")
        return _pipeline(seed, cv).fit(titles, y)

    @property
    def classes_(self) -> np.ndarray:
        """The categories the model knows."""
        return self.model_.classes_

    def predict(self, titles: Sequence[object]) -> pd.DataFrame:
        """Frame category, confidence per title; category None below the threshold or without a known word."""
        if not hasattr(self, "model_"):
            raise CategoryError("CategoryModel.predict called before fit")
        t = _texts(titles)
        if not t:
            return pd.DataFrame({"category": pd.Series(dtype=object), "confidence": pd.Series(dtype=float)})
        with threadpool_limits(1):
            proba = self.model_.predict_proba(t)
            words = self.model_.steps[0][1].transformer_list[0][1].transform(t)
        conf = proba.max(axis=1)
        cat = self.classes_[proba.argmax(axis=1)].astype(object)
        known_word = np.asarray(words.getnnz(axis=1)) > 0
        cat[(conf < self.threshold) | ~known_word] = None
        return pd.DataFrame({"category": cat, "confidence": np.round(conf, 4)})


def catalogue_titles(products: pd.DataFrame) -> list[str]:
    """Training text of catalogue rows: brand + name (or title) — what a listing title usually reads."""
    require_columns(products, ["category"], "products", CategoryError)
    name_col = "name" if "name" in products.columns else "title"
    require_columns(products, [name_col], "products", CategoryError)
    name = products[name_col].fillna("").astype(str)
    brand = products["brand"].fillna("").astype(str) if "brand" in products.columns else pd.Series("", index=name.index)
    return [f"{b} {n}".strip() if b.lower() not in n.lower() else n for b, n in zip(brand, name)]


def categorize_unmatched(
    listings: pd.DataFrame,
    products: pd.DataFrame,
    matches: pd.DataFrame,
    model: CategoryModel | None = None,
    seed: int = SEED,
) -> pd.DataFrame:
    """Category of each listing with no auto/confirmed match → UNMATCHED_COLUMNS.

    `model` defaults to a `CategoryModel` fitted on `products` (`catalogue_titles` → category). source is
    ``classifier`` when a category is given, ``abstained`` when the model was not sure enough."""
    require_columns(listings, ["retailer", "item_id", "title"], "listings", CategoryError)
    require_columns(matches, ["retailer", "item_id", "status"], "matches", CategoryError)
    done = matches.loc[matches["status"].isin(MATCHED_STATUSES), ["retailer", "item_id"]].astype(str)
    key = listings["retailer"].astype(str) + "\x1f" + listings["item_id"].astype(str)
    matched = set(done["retailer"] + "\x1f" + done["item_id"])
    rest = listings.loc[~key.isin(matched)].drop_duplicates(["retailer", "item_id"])
    if rest.empty:
        return pd.DataFrame(columns=UNMATCHED_COLUMNS)
    if model is None:
        model = CategoryModel().fit(catalogue_titles(products), products["category"], seed=seed)
    pred = model.predict(rest["title"].tolist())
    return pd.DataFrame(
        {
            "retailer": rest["retailer"].astype(str).to_numpy(),
            "item_id": rest["item_id"].astype(str).to_numpy(),
            "category": pred["category"].to_numpy(),
            "confidence": pred["confidence"].to_numpy(),
            "source": np.where(pred["category"].notna(), "classifier", "abstained"),
        }
    )


def _scored(model: CategoryModel, titles: list[str], truth: Sequence[object]) -> dict:
    """Accuracy on answered titles, coverage, and accuracy if it never abstained."""
    pred = model.predict(titles)
    with threadpool_limits(1):
        forced = model.classes_[model.model_.predict_proba(titles).argmax(axis=1)]
    t = np.asarray(truth, dtype=object)
    ans = pred["category"].notna().to_numpy()
    hits = pred["category"].to_numpy()[ans] == t[ans]
    return {
        "titles": len(titles),
        "coverage": round(float(ans.mean()), 4),
        "accuracy_answered": round(float(hits.mean()), 4) if ans.any() else None,
        "accuracy_forced": round(float((forced == t).mean()), 4),
    }


def category_report(world_seed: int = 2031, n_products: int = 400, seed: int = SEED) -> dict:
    """Category classifier figures on a demo world (generated with `world_seed`, truth used only to score).

    - ``catalogue_holdout``: fit on 75% of the catalogue (stratified), scored on the other 25%;
    - ``listings_of_our_products``: fit on the whole catalogue, scored on competitor listing titles whose
      truth sku is ours (category of that sku) — the same products, other retailers' wording;
    - ``listings_not_ours``: the listings whose truth is "not in our catalogue" (the case
      `categorize_unmatched` exists for), scored against the generator's listing category."""
    from sklearn.model_selection import train_test_split

    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=n_products, n_days=1, seed=world_seed)
    titles, cats = catalogue_titles(w.products), w.products["category"].astype(str).to_numpy()
    tr, ho = train_test_split(np.arange(len(titles)), test_size=0.25, stratify=cats, random_state=seed)
    part = CategoryModel().fit([titles[i] for i in tr], cats[tr], seed=seed)
    full = CategoryModel().fit(titles, cats, seed=seed)
    lst = w.listings.merge(w.truth_matches, on=["retailer", "item_id"])
    ours = lst.dropna(subset=["sku"]).merge(w.products[["sku", "category"]], on="sku", suffixes=("_listing", ""))
    not_ours = lst[lst["sku"].isna()]
    return {
        "split": f"demo world seed {world_seed}, {n_products} products; catalogue 75/25 stratified (seed {seed})",
        "threshold": round(full.threshold, 4),
        "threshold_holdout": full.holdout,
        "catalogue_holdout": _scored(part, [titles[i] for i in ho], cats[ho]),
        "listings_of_our_products": _scored(full, ours["title"].astype(str).tolist(), ours["category"].to_numpy()),
        "listings_not_ours": _scored(full, not_ours["title"].astype(str).tolist(), not_ours["category"].to_numpy()),
    }
