"""Extracted offers -> the long observation frame (prices, currency, stock, one row a listing and day)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.clean.currencies import ALL_ISO_CURRENCIES
from priceintel.items import IN_STOCK, LIMITED, LISTING_COLUMNS, OBSERVATION_COLUMNS, PREORDER


class CleanError(PriceIntelError):
    """The offers frame handed to the cleaner is malformed (missing columns, bad types)."""


_REQUIRED = ["url", "retailer", "item_id", "price", "availability", "fetched_at"]
_OPTIONAL = "list_price currency currency_raw title brand gtin mpn page_sha256 page_kind ds".split()
ERROR_COLUMNS = ["url", "retailer", "ds", "kind", "message"]
_IN_STOCK_VALUES = {IN_STOCK, LIMITED, PREORDER}


class _OfferValues(NamedTuple):
    """Values read from the rows of an offers frame (Series on its index)."""

    price: pd.Series
    list_price: pd.Series
    has_price_text: pd.Series
    in_stock: pd.Series
    currency: pd.Series
    currency_ok: pd.Series
    item_missing: pd.Series


def offers_to_observations(
    offers: pd.DataFrame, accept_currencies: Collection[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offers (extract + crawl columns) -> (OBSERVATION_COLUMNS frame, errors[url, retailer, ds, kind, message])."""
    missing = [c for c in _REQUIRED if c not in offers.columns]
    if missing:
        raise CleanError(
            f"offers frame is missing column(s) {missing}; expected the output of "
            f"priceintel.scrape.crawl (has {list(offers.columns)})"
        )
    accepted = set(accept_currencies) if accept_currencies is not None else set(ALL_ISO_CURRENCIES)
    df = _dated_offers(offers)
    values = _offer_values(df, accepted)
    kinds, msgs = _error_kinds(df, values)
    bad = kinds.notna()
    return _observations(df, values, ~bad), _errors_frame(df, kinds, msgs, bad)


def _dated_offers(offers: pd.DataFrame) -> pd.DataFrame:
    """A copy with every optional column, `observed_at` (UTC) and `ds` (the day, fetch day when absent)."""
    df = offers.copy()
    for col in _OPTIONAL:
        if col not in df.columns:
            df[col] = None
    df = df.reset_index(drop=True)
    observed = pd.to_datetime(df["fetched_at"], utc=True, errors="coerce")
    df["observed_at"] = observed
    ds = pd.to_datetime(df["ds"], errors="coerce")
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    fallback_ds = observed.dt.tz_convert("UTC").dt.tz_localize(None)
    df["ds"] = ds.fillna(fallback_ds).dt.normalize().astype("datetime64[ns]")
    return df


def _offer_values(df: pd.DataFrame, accepted: set[str]) -> _OfferValues:
    """Numeric prices, stock (from availability, else from a shown price), currency and id checks."""
    price_num = pd.to_numeric(df["price"], errors="coerce")
    list_num = pd.to_numeric(df["list_price"], errors="coerce")
    has_price_text = df["price"].notna() & (df["price"].astype(str).str.strip() != "")
    availability = df["availability"]
    known_avail = availability.notna()
    in_stock = np.where(known_avail, availability.isin(_IN_STOCK_VALUES), price_num.notna())
    currency = df["currency"].where(df["currency"].notna(), None)
    return _OfferValues(
        price=price_num,
        list_price=list_num,
        has_price_text=has_price_text,
        in_stock=pd.Series(in_stock.astype(bool), index=df.index),
        currency=currency,
        currency_ok=currency.isin(accepted),
        item_missing=df["item_id"].isna() | (df["item_id"].astype(str).str.strip() == ""),
    )


def _error_kinds(df: pd.DataFrame, v: _OfferValues) -> tuple[pd.Series, pd.Series]:
    """(kind, message) of every row's first failed check (None for a good row)."""
    page_kind = df["page_kind"].fillna("product")
    checks: list[tuple[pd.Series, str, Callable[[Any], str]]] = [
        (
            ~page_kind.isin(["product", "no_price"]),
            "page_kind",
            lambda r: f"page is {r.page_kind!r}, not a product page: {r.url}",
        ),
        (df["observed_at"].isna(), "bad_timestamp", lambda r: f"unparseable fetched_at {r.fetched_at!r} on {r.url}"),
        (v.item_missing, "missing_item_id", lambda r: f"no retailer item id extracted from {r.url}"),
        (v.has_price_text & v.price.isna(), "bad_price", lambda r: f"unparseable price {r.price!r} on {r.url}"),
        (v.price.isna() & v.in_stock, "no_price", lambda r: f"in-stock page shows no price: {r.url}"),
        (
            v.price.notna() & ~v.currency_ok,
            "unknown_currency",
            lambda r: f"unknown currency {_currency_label(r)!r} on {r.url}",
        ),
    ]
    kinds = pd.Series(None, index=df.index, dtype=object)
    msgs = pd.Series(None, index=df.index, dtype=object)
    for mask, kind, make_msg in checks:
        mask = mask & kinds.isna()  # rows not flagged by an earlier check
        if mask.any():
            kinds[mask] = kind
            msgs[mask] = [make_msg(r) for r in df.loc[mask].itertuples(index=False)]
    return kinds, msgs


def _errors_frame(df: pd.DataFrame, kinds: pd.Series, msgs: pd.Series, bad: pd.Series) -> pd.DataFrame:
    """The flagged rows as errors[url, retailer, ds, kind, message]."""
    errors = pd.DataFrame(
        {
            "url": df.loc[bad, "url"],
            "retailer": df.loc[bad, "retailer"],
            "ds": df.loc[bad, "ds"],
            "kind": kinds[bad],
            "message": msgs[bad],
        }
    ).reset_index(drop=True)
    return errors.astype({"ds": "datetime64[ns]"}) if len(errors) else _empty_errors()


def _observations(df: pd.DataFrame, v: _OfferValues, ok: pd.Series) -> pd.DataFrame:
    """The good rows as OBSERVATION_COLUMNS, the last fetch of a (retailer, item_id, day) kept."""
    good = df.loc[ok].copy()
    good["price"] = v.price[ok].round(2)
    good["list_price"] = v.list_price[ok].round(2)
    good["currency"] = v.currency[ok]
    good["in_stock"] = v.in_stock[ok].astype(bool)
    good["promo"] = (good["list_price"] > good["price"]).fillna(False).astype(bool)
    good["item_id"] = good["item_id"].astype(str)
    good = good.sort_values(["observed_at"], kind="stable")
    good = good.drop_duplicates(["retailer", "item_id", "ds"], keep="last")
    good = good.sort_values(["retailer", "item_id", "ds"], kind="stable").reset_index(drop=True)
    obs = good[OBSERVATION_COLUMNS].copy()
    obs["ds"] = obs["ds"].astype("datetime64[ns]")
    return obs


def _currency_label(row) -> str:
    """The currency as the page wrote it, for error messages."""
    for value in (getattr(row, "currency_raw", None), getattr(row, "currency", None)):
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            return str(value)
    return "none"


def _empty_errors() -> pd.DataFrame:
    """Empty error frame with the right dtypes."""
    return pd.DataFrame(
        {
            "url": pd.Series(dtype=object),
            "retailer": pd.Series(dtype=object),
            "ds": pd.Series(dtype="datetime64[ns]"),
            "kind": pd.Series(dtype=object),
            "message": pd.Series(dtype=object),
        }
    )


def listings_from_observations(obs: pd.DataFrame) -> pd.DataFrame:
    """One row per (retailer, item_id): the latest non-null url/title/brand/gtin/mpn seen."""
    missing = [c for c in LISTING_COLUMNS if c not in obs.columns]
    if missing:
        raise CleanError(f"observations frame is missing column(s) {missing}")
    order = "observed_at" if "observed_at" in obs.columns else "ds"
    df = obs.sort_values(order, kind="stable") if order in obs.columns else obs
    out = df.groupby(["retailer", "item_id"], sort=True)[["url", "title", "brand", "gtin", "mpn"]].last()
    out = out.reset_index()[LISTING_COLUMNS]
    return out.astype(object).where(out.notna(), None)


def methods_to_json(methods: dict) -> str:
    """Stable JSON text of an Offer.methods dict (for frames and parquet)."""
    return json.dumps(methods or {}, sort_keys=True)
