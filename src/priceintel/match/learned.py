"""A learned, calibrated pair classifier and the thresholds it decides with.

`PairClassifier.fit(X, y)` trains gradient-boosted trees (scikit-learn HistGradientBoosting, which
takes missing features natively) wrapped in `CalibratedClassifierCV` (isotonic, 5 folds) so that
`predict_proba` is a calibrated probability. Thresholds are chosen on held-out pairs
(`choose_threshold`): the F1-optimal one, or the lowest one whose precision reaches a target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from priceintel import PriceIntelError

SEED = 17


class ModelError(PriceIntelError):
    """Bad training data for the pair classifier (names what is wrong)."""


def prf(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Precision, recall and F1 of the positive class."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    tp = int((y_true & y_pred).sum())
    fp = int((~y_true & y_pred).sum())
    fn = int((y_true & ~y_pred).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def choose_threshold(y: np.ndarray, proba: np.ndarray, min_precision: float | None = None) -> float:
    """Threshold on held-out pairs: max F1, or (min_precision) the lowest reaching that precision."""
    y = np.asarray(y).astype(bool)
    proba = np.asarray(proba, dtype=float)
    cands = np.unique(np.round(proba, 6))
    best_t, best_f = 0.5, -1.0
    for t in cands:
        m = prf(y, proba >= t)
        if min_precision is not None:
            if m["precision"] >= min_precision and m["tp"] > 0:
                return float(t)
            continue
        if m["f1"] > best_f + 1e-12:
            best_t, best_f = float(t), m["f1"]
    if min_precision is not None:  # target unreachable: the most precise threshold that keeps a match
        return float(cands[-1]) if len(cands) else 1.0
    return best_t


@dataclass
class PairClassifier:
    """Calibrated gradient-boosted classifier over pair features."""

    max_iter: int = 300
    learning_rate: float = 0.06
    calibrate: bool = True
    seed: int = SEED

    def _base(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=31,
            min_samples_leaf=10,
            l2_regularization=1.0,
            random_state=self.seed,
        )

    def fit(self, X: pd.DataFrame, y) -> PairClassifier:
        """Fit on a feature frame and 0/1 labels (both classes needed)."""
        y = np.asarray(y).astype(int)
        if len(X) != len(y):
            raise ModelError(f"training pairs: {len(X)} feature rows but {len(y)} labels")
        counts = np.bincount(y, minlength=2)
        if counts.min() == 0 or set(np.unique(y)) - {0, 1}:
            raise ModelError(f"training pairs need labels 0 and 1 (got counts {counts.tolist()})")
        # features with fewer than two distinct known values carry nothing (and trip the binning)
        self.columns_ = [c for c in X.columns if pd.Series(X[c], dtype=float).dropna().nunique() >= 2]
        if not self.columns_:
            raise ModelError("training pairs: every feature is constant or missing")
        Xa = X[self.columns_].to_numpy(dtype=float)
        if self.calibrate and counts.min() >= 10:
            from sklearn.calibration import CalibratedClassifierCV

            cv = min(5, int(counts.min()))
            self.model_ = CalibratedClassifierCV(self._base(), method="isotonic", cv=cv).fit(Xa, y)
        else:
            self.model_ = self._base().fit(Xa, y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated match probability of each pair."""
        if not hasattr(self, "model_"):
            raise ModelError("PairClassifier.predict_proba called before fit")
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ModelError(f"pair features: column(s) {missing[:5]} missing (trained on {len(self.columns_)})")
        if len(X) == 0:
            return np.zeros(0)
        return self.model_.predict_proba(X[self.columns_].to_numpy(dtype=float))[:, 1]
