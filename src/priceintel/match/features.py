"""Generic pairwise features for two record tables with arbitrary attribute columns.

`PairFeaturizer.fit(left, right)` looks at the two tables only (no labels): it decides which shared
columns are text and which are numeric, fits word and character TF-IDF vocabularies and the IDF of
"code" tokens (model numbers, MPNs: tokens mixing letters and digits). `transform(li, ri)` returns one
row of features per (left row, right row) pair:

- per text column and for all text concatenated: rapidfuzz ratios (ratio, partial, token sort/set),
  word and char TF-IDF cosine, token Jaccard and IDF-weighted token overlap;
- codes: shared codes (count, IDF-weighted), a code of one side found inside the other side's
  squashed text, longest common substring between codes, conflict when both have codes and none agree;
- numbers (non-code digits): Jaccard of number sets; numeric columns: log ratio and relative gap;
- neighbourhood: the pair's char cosine relative to each side's best cosine over the whole other
  table, and its rank there (how much better this candidate is than the alternatives).

Nothing here is specific to one data set: column names are discovered, never assumed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from priceintel import PriceIntelError


class FeatureError(PriceIntelError):
    """Bad input to the pair featurizer (names the table and column)."""


_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-/.][a-z0-9]+)*")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_NUM_RE = re.compile(r"\d+(?:\.\d+)?")


def _squash(s: str) -> str:
    """Lowercase text with everything but letters and digits removed."""
    return _NON_ALNUM.sub("", s.lower())


def tokens(s: str) -> list[str]:
    """Lowercase word tokens (joined by -, / or . inside a token, e.g. 'lm-af30u3')."""
    return _TOKEN_RE.findall(s.lower())


def codes(s: str) -> list[str]:
    """Model-number-like tokens, squashed: letters and digits mixed, ≥ 3 chars ('wstk1', 'nn4tsblk')."""
    out = []
    for t in s.lower().split():
        q = _squash(t)
        if len(q) >= 3 and any(c.isdigit() for c in q) and any(c.isalpha() for c in q) and q not in out:
            out.append(q)
    # 'dmr-ea38vk' split oddly over a space ('dmr ea38vk') is still caught by the squashed-text test
    return out


def numbers(s: str) -> set[str]:
    """Standalone numbers in a text (not parts of codes)."""
    out = set()
    for t in s.lower().split():
        if _squash(t) and not any(c.isalpha() for c in t):
            out.update(_NUM_RE.findall(t))
    return out


def _lcs_len(a: str, b: str) -> int:
    """Length of the longest common substring of two short strings."""
    if not a or not b:
        return 0
    best = 0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0] * (len(b) + 1)
        for j, cb in enumerate(b, 1):
            if ca == cb:
                v = prev[j - 1] + 1
                cur[j] = v
                if v > best:
                    best = v
        prev = cur
    return best


def _is_numeric(s: pd.Series) -> bool:
    """A column is numeric when ≥ 90% of its non-empty values parse as numbers."""
    v = s.dropna()
    v = v[v.astype(str).str.strip() != ""]
    if v.empty:
        return False
    cleaned = v.astype(str).str.replace(r"[$€£,\s]", "", regex=True)
    return float(pd.to_numeric(cleaned, errors="coerce").notna().mean()) >= 0.9


def _to_num(s: pd.Series) -> np.ndarray:
    """Numbers from a column (currency symbols and thousands separators removed), NaN otherwise."""
    cleaned = s.astype(str).str.replace(r"[$€£,\s]", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float)


def _text(s: pd.Series) -> list[str]:
    """Column as cleaned lowercase strings ('' for missing)."""
    return [
        ("" if (v is None or (isinstance(v, float) and math.isnan(v))) else " ".join(str(v).lower().split()))
        for v in s.tolist()
    ]


@dataclass
class _TextCol:
    """Fitted state of one text attribute (or of all text concatenated)."""

    name: str
    left: list[str]
    right: list[str]
    #: fitted word / char TfidfVectorizer and the (left, right) sparse matrices they give (sklearn has no stubs)
    word: Any = None
    char: Any = None
    lw: Any = None
    rw: Any = None
    lc: Any = None
    rc: Any = None
    idf: dict = field(default_factory=dict)


def _row_norm(X):
    """L2-normalise rows of a sparse matrix (zero rows stay zero)."""
    from sklearn.preprocessing import normalize

    return normalize(X, norm="l2", axis=1, copy=False)


def _pair_cos(A, B, li: np.ndarray, ri: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Row-wise cosine of L2-normalised sparse rows A[li] · B[ri]."""
    out = np.empty(len(li), dtype=float)
    for s in range(0, len(li), chunk):
        a, b = A[li[s : s + chunk]], B[ri[s : s + chunk]]
        out[s : s + chunk] = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    return out


def _best_and_rank(Q, T, qi: np.ndarray, ti: np.ndarray, cells: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """For each pair (qi, ti): best cosine of Q[qi] over all rows of T, and rank of T[ti] among them."""
    chunk = max(1, cells // max(T.shape[0], 1))  # dense similarity block of at most `cells` floats
    uq, inv = np.unique(qi, return_inverse=True)
    best = np.zeros(len(uq))
    rank = np.zeros(len(qi))
    pair_cos = _pair_cos(Q, T, qi, ti)
    order = np.argsort(inv, kind="stable")
    inv_sorted = inv[order]
    bounds = np.searchsorted(inv_sorted, np.arange(len(uq) + 1))
    Tt = T.T.tocsc()
    for s in range(0, len(uq), chunk):
        sims = (Q[uq[s : s + chunk]] @ Tt).toarray()
        best[s : s + chunk] = sims.max(axis=1) if sims.shape[1] else 0.0
        for k in range(sims.shape[0]):
            g = s + k
            rows = order[bounds[g] : bounds[g + 1]]
            if len(rows):
                srow = np.sort(sims[k])
                # number of other records strictly more similar than this candidate
                rank[rows] = sims.shape[1] - np.searchsorted(srow, pair_cos[rows] + 1e-5, side="left")
    return best[inv], rank


def _text_features(tc: _TextCol, li: np.ndarray, ri: np.ndarray) -> dict[str, np.ndarray]:
    """Fuzzy ratios, TF-IDF cosines, token overlaps and length ratio of one text attribute over the pairs."""
    from rapidfuzz import fuzz, process

    p = tc.name
    a = [tc.left[i] for i in li]
    b = [tc.right[j] for j in ri]
    missing = np.array([not x or not y for x, y in zip(a, b)], dtype=bool)
    f: dict[str, np.ndarray] = {}
    for sname, scorer in (
        ("ratio", fuzz.ratio),
        ("partial", fuzz.partial_ratio),
        ("tsort", fuzz.token_sort_ratio),
        ("tset", fuzz.token_set_ratio),
    ):
        v = process.cpdist(a, b, scorer=scorer, workers=1).astype(float) / 100.0 if len(a) else np.zeros(0)
        f[f"{p}_{sname}"] = np.where(missing, np.nan, v)
    if tc.lw is not None:
        f[f"{p}_cos_word"] = np.where(missing, np.nan, _pair_cos(tc.lw, tc.rw, li, ri))
        f[f"{p}_cos_char"] = np.where(missing, np.nan, _pair_cos(tc.lc, tc.rc, li, ri))
    else:
        f[f"{p}_cos_word"] = np.full(len(li), np.nan)
        f[f"{p}_cos_char"] = np.full(len(li), np.nan)
    f[f"{p}_jaccard"], f[f"{p}_idf_overlap"] = _token_overlap(a, b, missing, tc.idf)
    f[f"{p}_len_ratio"] = np.where(
        missing, np.nan, np.array([min(len(x), len(y)) / max(len(x), len(y), 1) for x, y in zip(a, b)])
    )
    return f


def _token_overlap(a: list[str], b: list[str], missing: np.ndarray, idf: dict) -> tuple[np.ndarray, np.ndarray]:
    """(token Jaccard, IDF-weighted overlap relative to the lighter side) of each pair of texts."""
    jac, idfo = np.full(len(a), np.nan), np.full(len(a), np.nan)
    for k, (x, y) in enumerate(zip(a, b)):
        if missing[k]:
            continue
        tx, ty = set(tokens(x)), set(tokens(y))
        if not tx or not ty:
            continue
        inter = tx & ty
        jac[k] = len(inter) / len(tx | ty)
        num = sum(idf.get(t, 1.0) for t in inter)
        den = min(sum(idf.get(t, 1.0) for t in tx), sum(idf.get(t, 1.0) for t in ty))
        idfo[k] = num / den if den else np.nan
    return jac, idfo


class PairFeaturizer:
    """Fit on two tables (no labels), then turn (left index, right index) pairs into features."""

    def __init__(self, max_text_cols: int = 6, neighbourhood: bool = True):
        self.max_text_cols = max_text_cols
        self.neighbourhood = neighbourhood
        self.text_cols: list[str] = []
        self.num_cols: list[str] = []

    # ------------------------------------------------------------------ fit
    def fit(self, left: pd.DataFrame, right: pd.DataFrame, ignore: Sequence[str] = ("id",)) -> PairFeaturizer:
        """Discover shared attribute columns and fit vocabularies on both tables."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        for name, df in (("left table", left), ("right table", right)):
            if not isinstance(df, pd.DataFrame):
                raise FeatureError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
        shared = [c for c in left.columns if c in right.columns and c not in set(ignore)]
        if not shared:
            raise FeatureError(
                f"the tables share no attribute column besides {list(ignore)}: "
                f"left has {list(left.columns)}, right has {list(right.columns)}"
            )
        self.num_cols = [c for c in shared if _is_numeric(left[c]) and _is_numeric(right[c])]
        self.text_cols = [c for c in shared if c not in self.num_cols][: self.max_text_cols]
        self.n_left, self.n_right = len(left), len(right)
        self._lnum = {c: _to_num(left[c]) for c in self.num_cols}
        self._rnum = {c: _to_num(right[c]) for c in self.num_cols}
        cols: list[_TextCol] = []
        for c in self.text_cols:
            cols.append(_TextCol(c, _text(left[c]), _text(right[c])))
        if not cols:  # only numeric attributes: still build an "all" text of them
            cols = []
        all_l = [" ".join(parts) for parts in zip(*[tc.left for tc in cols])] if cols else [""] * len(left)
        all_r = [" ".join(parts) for parts in zip(*[tc.right for tc in cols])] if cols else [""] * len(right)
        self._all = _TextCol("all", all_l, all_r)
        self._cols = cols if len(cols) > 1 else []  # one column: "all" is that column
        for tc in [*self._cols, self._all]:
            docs = tc.left + tc.right
            if not any(d.strip() for d in docs):
                continue
            tc.word = TfidfVectorizer(
                analyzer="word", token_pattern=r"[a-z0-9]+(?:[-/.][a-z0-9]+)*", sublinear_tf=True, dtype=np.float32
            ).fit(docs)
            tc.char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=1, dtype=np.float32
            ).fit(docs)
            tc.lw, tc.rw = tc.word.transform(tc.left), tc.word.transform(tc.right)
            tc.lc, tc.rc = tc.char.transform(tc.left), tc.char.transform(tc.right)
            vocab = tc.word.vocabulary_
            idf = tc.word.idf_
            tc.idf = {t: float(idf[i]) for t, i in vocab.items()}
        # code tokens and their document frequency over both tables (all text)
        self._lcodes = [codes(t) for t in self._all.left]
        self._rcodes = [codes(t) for t in self._all.right]
        df_count: dict[str, int] = {}
        for cs in self._lcodes + self._rcodes:
            for c in set(cs):
                df_count[c] = df_count.get(c, 0) + 1
        n_docs = len(self._lcodes) + len(self._rcodes)
        self._code_idf = {c: math.log((1 + n_docs) / (1 + k)) + 1 for c, k in df_count.items()}
        self._max_code_idf = math.log(1 + n_docs) + 1
        self._lsq = [_squash(t) for t in self._all.left]
        self._rsq = [_squash(t) for t in self._all.right]
        self._lnums = [numbers(t) for t in self._all.left]
        self._rnums = [numbers(t) for t in self._all.right]
        self._ltok = [set(tokens(t)) for t in self._all.left]
        self._rtok = [set(tokens(t)) for t in self._all.right]
        # first token (often the brand) of the first text column
        first = cols[0] if cols else self._all
        self._lfirst = [(tokens(t) or [""])[0] for t in first.left]
        self._rfirst = [(tokens(t) or [""])[0] for t in first.right]
        return self

    # ------------------------------------------------------------------ transform
    def transform(self, li: Sequence[int], ri: Sequence[int]) -> pd.DataFrame:
        """Feature frame (one row per pair, NaN where a feature is unknown) for row positions li, ri."""
        if not hasattr(self, "_all"):
            raise FeatureError("PairFeaturizer.transform called before fit")
        left = np.asarray(li, dtype=int)
        right = np.asarray(ri, dtype=int)
        if len(left) != len(right):
            raise FeatureError(f"pairs: {len(left)} left positions but {len(right)} right positions")
        if len(left) and (
            left.min() < 0 or left.max() >= self.n_left or right.min() < 0 or right.max() >= self.n_right
        ):
            raise FeatureError("pairs: a row position lies outside the fitted tables")
        f: dict[str, np.ndarray] = {}
        for tc in [*self._cols, self._all]:
            f.update(_text_features(tc, left, right))
        f.update(self._code_features(left, right))
        f.update(self._numeric_features(left, right))
        f["brand_first_token"] = self._first_token_agreement(left, right)
        if self.neighbourhood and self._all.lc is not None and len(left):
            f.update(self._neighbourhood_features(left, right))
        return pd.DataFrame(f)

    def _numeric_features(self, li: np.ndarray, ri: np.ndarray) -> dict[str, np.ndarray]:
        """Log ratio and relative gap of every numeric attribute."""
        f: dict[str, np.ndarray] = {}
        for c in self.num_cols:
            x, y = self._lnum[c][li], self._rnum[c][ri]
            ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                f[f"num_{c}_logratio"] = np.where(ok, np.abs(np.log(x / y)), np.nan)
                f[f"num_{c}_relgap"] = np.where(
                    np.isfinite(x) & np.isfinite(y),
                    np.abs(x - y) / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-9),
                    np.nan,
                )
        return f

    def _first_token_agreement(self, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
        """1 when the first tokens (often the brand) agree or one appears among the other side's tokens."""
        return np.array(
            [
                np.nan
                if not self._lfirst[i] or not self._rfirst[j]
                else float(
                    self._lfirst[i] == self._rfirst[j]
                    or self._lfirst[i] in self._rtok[j]
                    or self._rfirst[j] in self._ltok[i]
                )
                for i, j in zip(li, ri)
            ]
        )

    def _neighbourhood_features(self, li: np.ndarray, ri: np.ndarray) -> dict[str, np.ndarray]:
        """The pair's similarity relative to each side's best candidate and its rank there,
        on the character and on the word vectors."""
        f: dict[str, np.ndarray] = {}
        for suffix, lv, rv in (("", self._all.lc, self._all.rc), ("_word", self._all.lw, self._all.rw)):
            cos = _pair_cos(lv, rv, li, ri)
            lbest, lrank = _best_and_rank(lv, rv, li, ri)
            rbest, rrank = _best_and_rank(rv, lv, ri, li)
            f[f"nb_rel_left{suffix}"] = cos / np.maximum(lbest, 1e-9)
            f[f"nb_rel_right{suffix}"] = cos / np.maximum(rbest, 1e-9)
            f[f"nb_rank_left{suffix}"] = np.log1p(lrank)
            f[f"nb_rank_right{suffix}"] = np.log1p(rrank)
        return f

    def _code_features(self, li: np.ndarray, ri: np.ndarray) -> dict[str, np.ndarray]:
        """Agreement of model-number-like codes and of plain numbers."""
        n = len(li)
        shared_n = np.full(n, np.nan)
        shared_idf = np.full(n, np.nan)
        contained = np.full(n, np.nan)
        contained_len = np.full(n, np.nan)
        lcs_ratio = np.full(n, np.nan)
        lcs_abs = np.full(n, np.nan)
        conflict = np.full(n, np.nan)
        has_l = np.zeros(n)
        has_r = np.zeros(n)
        num_jac = np.full(n, np.nan)
        cache: dict[tuple[str, str], int] = {}
        for k, (i, j) in enumerate(zip(li, ri)):
            ca, cb = self._lcodes[i], self._rcodes[j]
            has_l[k], has_r[k] = len(ca), len(cb)
            na, nb = self._lnums[i], self._rnums[j]
            if na and nb:
                num_jac[k] = len(na & nb) / len(na | nb)
            # a code of one side inside the other side's squashed text (dashes/spaces differ)
            best_c = 0
            for c in ca:
                if len(c) > best_c and c in self._rsq[j]:
                    best_c = len(c)
            for c in cb:
                if len(c) > best_c and c in self._lsq[i]:
                    best_c = len(c)
            if ca or cb:
                contained[k] = float(best_c > 0)
                contained_len[k] = best_c
            if not ca or not cb:
                continue
            inter = set(ca) & set(cb)
            shared_n[k] = len(inter)
            shared_idf[k] = max((self._code_idf.get(c, 1.0) for c in inter), default=0.0) / self._max_code_idf
            best_r, best_a = 0.0, 0
            for a in ca:
                for b in cb:
                    key = (a, b)
                    v = cache.get(key)
                    if v is None:
                        v = _lcs_len(a, b)
                        cache[key] = v
                    r = v / max(len(a), len(b))
                    if r > best_r:
                        best_r = r
                    if v > best_a:
                        best_a = v
            lcs_ratio[k] = best_r
            lcs_abs[k] = best_a
            conflict[k] = float(best_c == 0 and best_r < 0.5)
        return {
            "code_shared": shared_n,
            "code_shared_idf": shared_idf,
            "code_contained": contained,
            "code_contained_len": contained_len,
            "code_lcs_ratio": lcs_ratio,
            "code_lcs_len": lcs_abs,
            "code_conflict": conflict,
            "code_n_left": has_l,
            "code_n_right": has_r,
            "numbers_jaccard": num_jac,
        }
