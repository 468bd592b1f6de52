"""Score the extractor offline: saved product pages against annotated truth, price strings against cases.

`evaluate_pages(dir)` follows the product-extraction benchmark's own rule (one prediction per page;
price compared as a `Decimal` against any acceptable value; a wrong prediction is a false positive and,
when the page has a true value, also a false negative; F1 from pooled counts). `evaluate_prices(csv)`
counts a case for `accuracy` when the amount equals the expected decimal and the currency *as written*
equals `expected_currency` (empty = none), and for `amount_accuracy` on the amount alone.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError
from priceintel.items import DISCONTINUED, IN_STOCK, LIMITED, OUT_OF_STOCK, PREORDER, Offer, read_csv_rows

__all__ = [
    "EvalError",
    "PAGE_TRUTH_COLUMNS",
    "PRICE_CASE_COLUMNS",
    "benchmark_prediction",
    "evaluate_pages",
    "evaluate_prices",
    "price_case_split",
    "prf",
    "score_pages",
    "site_key",
    "split_page_ids",
    "split_pages_by_site",
    "split_pages_by_site_hash",
]

PAGE_TRUTH_COLUMNS = ("file", "page_id", "url", "price_all", "availability", "sku_all")
PRICE_CASE_COLUMNS = ("raw_string", "currency_hint", "decimal_separator", "expected_amount", "expected_currency")
#: schema.org availability -> the benchmark's two classes
_AVAIL_CLASS = {
    IN_STOCK: "InStock",
    LIMITED: "InStock",
    PREORDER: "InStock",
    OUT_OF_STOCK: "OutOfStock",
    DISCONTINUED: "OutOfStock",
}


class EvalError(PriceIntelError):
    """An evaluation input (pages folder, truth.csv, cases CSV) is missing or malformed."""


@dataclass
class Counts:
    """Pooled true positives, false positives and false negatives of one attribute."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, true: set, pred: Any) -> str:
        """Count one prediction against its acceptable values; returns tp | fp | fn | tn."""
        if pred is None:
            if true:
                self.fn += 1
                return "fn"
            return "tn"
        if pred in true:
            self.tp += 1
            return "tp"
        self.fp += 1
        if true:
            self.fn += 1
        return "fp"


def prf(c: Counts) -> dict:
    """precision / recall / f1 (+ counts) exactly as the benchmark computes them."""
    if c.fp == c.fn == 0:
        p = r = 1.0
    else:
        p = 0.0 if c.tp == c.fp == 0 else c.tp / (c.tp + c.fp)
        r = 0.0 if c.tp == c.fn == 0 else c.tp / (c.tp + c.fn)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "tp": c.tp, "fp": c.fp, "fn": c.fn}


def _decimal(text: Any) -> Decimal | None:
    """Decimal of a string, None when empty or not a number."""
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def benchmark_prediction(offer: Offer) -> dict:
    """One prediction per page in the benchmark's vocabulary: price (decimal str), sku, availability."""
    price = offer.price if offer.page_kind == "product" else None
    avail = _AVAIL_CLASS.get(offer.availability) if offer.availability else None
    if avail is None and offer.page_kind == "product" and price is not None:
        avail = "InStock"  # a product page selling at a price is taken as in stock
    return {"price": price, "sku": offer.sku or offer.item_id, "availability": avail}


def _read_csv(path: Path, required: Iterable[str], what: str) -> list[dict]:
    """Rows of a CSV, with a clear error when missing or lacking columns."""
    return read_csv_rows(path, required, EvalError, what)


def _split(value: str | None) -> list[str]:
    """`a|b|c` -> ['a', 'b', 'c'] without empties."""
    return [v.strip() for v in (value or "").split("|") if v.strip()]


def score_pages(rows: list[dict], predictions: dict[str, dict]) -> dict:
    """Score predictions (page_id -> benchmark_prediction) against truth rows; one dict of metrics."""
    counts = {k: Counts() for k in ("price", "sku", "availability")}
    for row in rows:
        pred = predictions.get(row["page_id"], {})
        true_prices = {d for d in (_decimal(v) for v in _split(row.get("price_all"))) if d is not None}
        counts["price"].add(true_prices, _decimal(pred.get("price")))
        counts["sku"].add(set(_split(row.get("sku_all"))), pred.get("sku"))
        counts["availability"].add(set(_split(row.get("availability"))), pred.get("availability"))
    out: dict[str, Any] = {"n": len(rows)}
    out.update({k: prf(c) for k, c in counts.items()})
    return out


def extract_pages(directory: Path, rows: list[dict]) -> dict[str, Offer]:
    """page_id -> Offer, every page extracted offline from its saved gzip HTML."""
    from priceintel.scrape.extract import extract

    offers = {}
    for row in rows:
        path = directory / row["file"] if row.get("file") else directory / "html" / f"{row['page_id']}.html.gz"
        if not path.is_file():
            raise EvalError(f"page {row['page_id']} listed in truth.csv has no HTML at {path}")
        try:
            raw = gzip.decompress(path.read_bytes())
        except OSError as exc:
            raise EvalError(f"{path} is not a gzip file: {exc}") from None
        try:
            offers[row["page_id"]] = extract(raw, row["url"])
        except Exception as exc:  # noqa: BLE001 - one odd page must not stop the scoring
            print(
                f"warning: page {row['page_id']} could not be extracted ({exc!r}); scored as no prediction",
                file=sys.stderr,
            )
            offers[row["page_id"]] = Offer(url=row["url"], page_kind="not_found")
    return offers


def evaluate_pages(directory: Path | str, page_ids: Iterable[str] | None = None) -> dict:
    """Extract every page of DIR (html/<page_id>.html.gz + truth.csv) and score price, sku, availability."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EvalError(f"pages folder not found: {directory}")
    rows = _read_csv(directory / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
    if page_ids is not None:
        keep = set(page_ids)
        rows = [r for r in rows if r["page_id"] in keep]
    offers = extract_pages(directory, rows)
    preds = {pid: benchmark_prediction(o) for pid, o in offers.items()}
    return score_pages(rows, preds)


def pages_headline(result: dict) -> dict:
    """What `priceintel eval pages` prints: n, and precision/recall/F1 of price, sku and availability."""
    out: dict = {"n": result["n"]}
    for field in ("price", "sku", "availability"):
        out[field] = {m: result[field][m] for m in ("precision", "recall", "f1")}
    return out


def split_page_ids(directory: Path | str, seed: int = 2026) -> tuple[list[str], list[str]]:
    """(development, held-out) halves of a pages folder: sorted ids shuffled with `random.Random(seed)`."""
    import random

    rows = _read_csv(Path(directory) / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
    ids = sorted(r["page_id"] for r in rows)
    random.Random(seed).shuffle(ids)
    half = len(ids) // 2
    return ids[:half], ids[half:]


#: second-level labels that are part of a public suffix ("co.uk", "com.ar", "org.br" …)
_SUFFIX_LABELS = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "gob", "gv"})


def site_key(url: str) -> str:
    """The shop a URL belongs to, across its country domains: www.amazon.co.uk and amazon.de -> "amazon"."""
    from urllib.parse import urlsplit

    labels = (urlsplit(url).hostname or "").lower().split(".")
    if len(labels) > 1:
        labels = labels[:-1]  # the top-level domain
    if len(labels) > 1 and labels[-1] in _SUFFIX_LABELS:
        labels = labels[:-1]
    return labels[-1] if labels else ""


def split_pages_by_site(directory: Path | str, seed: int = 4) -> tuple[list[str], list[str]]:
    """(development, test) page ids with every shop entirely on one side.

    The sorted shop keys (`site_key`) are shuffled with `random.Random(seed)`; shops go to the
    development half in that order until it holds at least half of the pages, the rest are the test
    half. No shop (and no country domain of a shop) is in both halves.
    """
    import random

    rows = _read_csv(Path(directory) / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
    by_site: dict[str, list[str]] = {}
    for r in rows:
        by_site.setdefault(site_key(r["url"]), []).append(r["page_id"])
    sites = sorted(by_site)
    random.Random(seed).shuffle(sites)
    dev: list[str] = []
    test: list[str] = []
    for site in sites:
        (dev if len(dev) < len(rows) / 2 else test).extend(sorted(by_site[site]))
    return dev, test


def split_pages_by_site_hash(directory: Path | str) -> tuple[list[str], list[str]]:
    """(development, held-out) page ids, every shop entirely on one side, with no seed to choose.

    Shops (`site_key`: a shop's country domains are one shop) are ordered by the SHA-256 of their key;
    they fill the development half in that order until it holds at least half of the pages, the
    rest are held out. Each half's ids are sorted. Adding a page of a known shop never moves a shop.
    """
    import hashlib

    rows = _read_csv(Path(directory) / "truth.csv", PAGE_TRUTH_COLUMNS, "truth.csv")
    by_site: dict[str, list[str]] = {}
    for r in rows:
        by_site.setdefault(site_key(r["url"]), []).append(r["page_id"])
    sites = sorted(by_site, key=lambda s: (hashlib.sha256(s.encode("utf-8")).hexdigest(), s))
    dev: list[str] = []
    held: list[str] = []
    for site in sites:
        (dev if len(dev) < len(rows) / 2 else held).extend(by_site[site])
    return sorted(dev), sorted(held)


#: the deterministic development / held-out split of price strings (`price_case_split`)
PRICE_SPLIT = "sha256(raw_string as UTF-8): even integer value -> dev, odd -> heldout"


def price_case_split(raw_string: str) -> str:
    """The half ("dev" or "heldout") of one price string: the parity of its SHA-256 digest (`PRICE_SPLIT`)."""
    import hashlib

    return "dev" if int(hashlib.sha256(raw_string.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "heldout"


def evaluate_prices(path: Path | str, subset: str | None = None, xfail: bool | None = None) -> dict:
    """Parse every raw price string of a cases CSV; accuracy (amount + currency as written) and amount accuracy.

    `subset` "dev" or "heldout" scores only that half of `price_case_split` (None: every case). `xfail` True /
    False scores only the cases price-parser's own tests mark as expected to fail / not (column
    `price_parser_xfail`; a file without it has none of the first kind).
    """
    from priceintel.clean import parse_price

    if subset not in (None, "dev", "heldout"):
        raise EvalError(f"unknown price-case subset {subset!r} (expected 'dev' or 'heldout')")
    rows = _read_csv(Path(path), PRICE_CASE_COLUMNS, "price cases CSV")
    if subset is not None:
        rows = [r for r in rows if price_case_split(r["raw_string"]) == subset]
    if xfail is not None:
        rows = [r for r in rows if (str(r.get("price_parser_xfail") or "0").strip() == "1") == xfail]
    n = ok = ok_amount = 0
    for row in rows:
        parsed = parse_price(
            row["raw_string"], row["currency_hint"] or None, decimal_separator=row["decimal_separator"] or None
        )
        want = _decimal(row["expected_amount"])
        amount_ok = parsed.amount == want if want is not None else parsed.amount is None
        cur_ok = (parsed.currency_raw or "") == (row["expected_currency"] or "")
        n += 1
        ok_amount += amount_ok
        ok += amount_ok and cur_ok
    return {
        "n": n,
        "accuracy": round(ok / n, 4) if n else 0.0,
        "amount_accuracy": round(ok_amount / n, 4) if n else 0.0,
        **({"subset": subset, "split": PRICE_SPLIT} if subset else {}),
        **({"price_parser_xfail": xfail} if xfail is not None else {}),
    }
