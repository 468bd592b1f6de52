"""Typed records and the shared column names that every stage agrees on."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# --- availability: schema.org values -------------------------------------------------
IN_STOCK = "https://schema.org/InStock"
OUT_OF_STOCK = "https://schema.org/OutOfStock"
LIMITED = "https://schema.org/LimitedAvailability"
PREORDER = "https://schema.org/PreOrder"
DISCONTINUED = "https://schema.org/Discontinued"

# --- canonical frames -------------------------------------------------------------------
#: our catalogue (dim_product); written by the demo world, loaded into Postgres
PRODUCT_COLUMNS = [
    "sku",
    "name",
    "brand",
    "category",
    "gtin",
    "mpn",
    "size",
    "unit_cost",
    "map_price",
    "msrp",
]
#: one retailer product page (dim_listing); `item_id` is the retailer's own id
LISTING_COLUMNS = ["retailer", "item_id", "url", "title", "brand", "gtin", "mpn"]
#: clean long frame of observations, one row per listing per day (input of fact_price)
OBSERVATION_COLUMNS = [
    "retailer",
    "item_id",
    "url",
    "ds",
    "observed_at",
    "price",
    "list_price",
    "currency",
    "in_stock",
    "promo",
    "title",
    "brand",
    "gtin",
    "mpn",
    "page_sha256",
]
#: our own daily sales (fact_sales)
SALES_COLUMNS = ["sku", "ds", "units", "revenue", "price", "promo"]
#: listing -> product decisions (product_match)
MATCH_COLUMNS = ["retailer", "item_id", "sku", "method", "score", "status"]
#: match statuses that count as "this listing is that product" (the others: review, rejected)
MATCHED_STATUSES = ("auto", "confirmed")
#: forecasting input: long frame
FORECAST_ID, FORECAST_TIME, FORECAST_TARGET = "unique_id", "ds", "y"


@dataclass(frozen=True)
class Offer:
    """One product page as extracted: raw strings beside normalised values, fixed fields."""

    url: str
    retailer: str | None = None
    item_id: str | None = None  #: retailer's own id (ASIN, usItemId, TCIN, …)
    title: str | None = None
    brand: str | None = None
    gtin: str | None = None  #: validated GTIN-8/12/13/14 digits
    mpn: str | None = None
    sku: str | None = None  #: retailer SKU as printed on the page
    price: str | None = None  #: normalised decimal string, e.g. "10500.99"
    price_raw: str | None = None  #: the price text as found on the page
    list_price: str | None = None  #: was / list price, normalised decimal string
    currency: str | None = None  #: ISO-4217 code, e.g. "USD"
    currency_raw: str | None = None  #: currency as written on the page, e.g. "$"
    availability: str | None = None  #: schema.org URL, e.g. IN_STOCK
    seller: str | None = None
    rating: float | None = None
    image: str | None = None
    page_kind: str = "product"  #: product | blocked | not_found | no_price | truncated
    methods: dict = field(default_factory=dict)  #: field name -> extraction method

    @property
    def in_stock(self) -> bool | None:
        """True/False from availability, None when unknown."""
        if self.availability is None:
            return None
        return self.availability in (IN_STOCK, LIMITED, PREORDER)

    def to_dict(self) -> dict:
        """Plain dict (methods included) for frames and JSON."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the record's fields, in order."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Match:
    """A listing matched to one of our products."""

    retailer: str
    item_id: str
    sku: str
    method: str  #: gtin | fuzzy | model | manual
    score: float
    status: str = "auto"  #: auto | confirmed | rejected | review


# --- GTIN (GS1 identifiers): the one implementation -------------------------------------
_GTIN_LENGTHS = (8, 12, 13, 14)
_GTIN_SEPARATORS = re.compile(r"[\s-]")


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for the digits of a GTIN without its last digit."""
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _gtin_digits(value: Any) -> str | None:
    """The digit string of a code: spaces and hyphens dropped; a number (which lost its leading zeros) padded
    to the shortest GTIN length that holds it; None for anything else (letters, NaN, bool, fractions)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or not float(value).is_integer():
            return None
        value = int(value)
    if isinstance(value, (int, np.integer)):
        s = str(abs(int(value)))
        return s.zfill(next((n for n in _GTIN_LENGTHS if n >= len(s)), len(s)))
    s = _GTIN_SEPARATORS.sub("", str(value))
    return s if s.isdigit() else None


def valid_gtin(value: Any) -> str | None:
    """The GTIN-8/12/13/14 digits as written (separators dropped) when the check digit is right, else None."""
    s = _gtin_digits(value)
    if s is None or len(s) not in _GTIN_LENGTHS or gtin_check_digit(s[:-1]) != int(s[-1]):
        return None
    return s


def is_valid_gtin(value: Any) -> bool:
    """True for a GTIN-8/12/13/14 (spaces and hyphens allowed) with a correct GS1 check digit."""
    return valid_gtin(value) is not None


def normalize_gtin(value: Any) -> str | None:
    """The canonical GTIN every comparison uses: 13 digits (a UPC-A or GTIN-8 left-padded with zeros, a GTIN-14
    with indicator 0 without it), or 14 digits when the packaging indicator is non-zero; None if invalid."""
    s = valid_gtin(value)
    if s is None:
        return None
    s = s.zfill(14)
    return s[1:] if s[0] == "0" else s


# --- frame checks -------------------------------------------------------------------------
def require_columns(
    df: Any, cols: Any, where: str, error: type[Exception] = ValueError, problem: str = "missing"
) -> None:
    """Raise `error` naming `where` when `df` is not a DataFrame or lacks any of `cols` (empty names skipped):
    "<where>: column(s) [...] <problem> (columns: [...])"."""
    if not isinstance(df, pd.DataFrame):
        raise error(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c and c not in df.columns]
    if missing:
        raise error(f"{where}: column(s) {missing} {problem} (columns: {list(df.columns)})")


def read_csv_rows(path: Path, required: Any, error: type[Exception], what: str) -> list[dict]:
    """Rows of a UTF-8 CSV as dicts; `error` names the file when it is missing or lacks a required column."""
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise error(f"{path}: column(s) {missing} missing (columns: {reader.fieldnames})")
        return list(reader)


# --- missing values: the one converter ----------------------------------------------------
def plain(value: Any) -> Any:
    """A builtin Python value: numpy scalars unwrapped; None for every missing value (None, NaN, ±inf, pd.NA,
    NaT). Other values (strings, dates, containers) are returned unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and pd.NA (scalars only; ±inf is not missing here, unlike `plain`)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def plain_float(value: Any) -> float | None:
    """float(value), or None for a missing value (see `plain`); a non-number raises ValueError/TypeError."""
    value = plain(value)
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def jsonable(value: Any) -> Any:
    """`value` made JSON-safe, recursively: dicts (string keys), lists, tuples and frames (as records) walked;
    missing values None; dates and timestamps ISO strings; paths strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    value = plain(value)
    if isinstance(value, (date, datetime)):  # pd.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    """JSON text of `jsonable(value)`; anything still unknown (enums, custom objects) as its str()."""
    return json.dumps(jsonable(value), default=str, **kwargs)


# --- hostile text: retailer ids, spreadsheet cells ------------------------------------------
#: a retailer item id as stored: letters, digits and . _ : / - (1 to 128 characters, after trimming)
ITEM_ID_RE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


def valid_item_id(value: Any) -> str | None:
    """The item id trimmed when it is one (see ITEM_ID_RE), else None: an id read from a page never carries
    spaces, quotes, markup, control characters or spreadsheet formulas into keys, exports and messages."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        value = str(int(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    return s if ITEM_ID_RE.fullmatch(s) else None


#: characters removed from exported text: C0 controls but tab, LF and CR (what openpyxl's ILLEGAL_CHARACTERS_RE
#: rejects), DEL, C1 controls, lone surrogates and the non-characters U+FFFE / U+FFFF (none are valid in XML 1.0)
CONTROL_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: a cell starting with one of these is read as a formula by Excel, LibreOffice or Google Sheets (OWASP
#: "CSV injection"); the full-width forms are read as formulas by some East Asian Excel locales
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: text a spreadsheet would run: a trigger first, also after leading spaces or line feeds
FORMULA_RE = re.compile("[ \n]*[" + re.escape("".join(FORMULA_TRIGGERS)) + "]")


def clean_text(text: str) -> str:
    """`text` without the control characters of CONTROL_CHARS_RE (tab, LF and CR kept)."""
    return CONTROL_CHARS_RE.sub("", text)


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would read the text as a formula: it starts with = + - @ tab or CR (or
    their full-width forms), also after leading spaces."""
    return FORMULA_RE.match(text) is not None


def safe_cell(value: Any) -> Any:
    """One exported cell: text is cleaned of control characters and, when a spreadsheet would read it as a
    formula, prefixed with a single quote (`=1+1` → `'=1+1`, OWASP); numbers, dates, booleans and missing
    values are returned unchanged (a negative number stays a number)."""
    if not isinstance(value, str):
        return value
    text = clean_text(value)
    return "'" + text if formula_like(text) else text


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame for a CSV export: `safe_cell` on every text value and every column name; numeric,
    date and boolean columns are left as they are (typed)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            out[col] = s.map(safe_cell, na_action="ignore")
    out.columns = [safe_cell(c) for c in out.columns]
    return out
