"""Tests for priceintel.clean: price parsing, offers -> observations, listings."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError
from priceintel.clean import (
    CleanError,
    ParsedPrice,
    format_amount,
    listings_from_observations,
    normalise_currency,
    offers_to_observations,
    parse_price,
)
from priceintel.items import IN_STOCK, LISTING_COLUMNS, OBSERVATION_COLUMNS, OUT_OF_STOCK


@pytest.mark.parametrize(
    "text, hint, amount, cur, raw",
    [
        ("$12.99", None, "12.99", "USD", "$"),
        ("$1,234.50", None, "1234.50", "USD", "$"),
        ("12,99 €", None, "12.99", "EUR", "€"),
        ("£7", None, "7.00", "GBP", "£"),
        ("USD 10500.99", None, "10500.99", "USD", "USD"),
        ("CA$ 5.25", None, "5.25", "CAD", "CA$"),
        ("reg $15.99", None, "15.99", "USD", "$"),
        ("XYZ 12.00", None, "12.00", None, "XYZ"),
        ("12.99", "USD", "12.99", "USD", "USD"),
        ("12.99", "eur", "12.99", "EUR", "eur"),
        ("12.99", None, "12.99", None, None),
        (12.5, "USD", "12.50", "USD", "USD"),
        (7, None, "7.00", None, None),
        ("Price unavailable", None, None, None, None),
        (None, "GBP", None, "GBP", "GBP"),
        (float("nan"), None, None, None, None),
    ],
)
def test_parse_price(text, hint, amount, cur, raw):
    p = parse_price(text, currency_hint=hint)
    assert isinstance(p, ParsedPrice)
    assert p.text == amount
    assert p.currency == cur
    assert p.currency_raw == raw
    if amount is not None:
        assert p.amount == Decimal(amount)


def test_format_amount_and_currency_map():
    assert format_amount(Decimal("12.9")) == "12.90"
    assert format_amount(Decimal("0.125")) == "0.125"
    assert format_amount(None) is None
    assert normalise_currency("€") == "EUR"
    assert normalise_currency(" usd ") == "USD"
    assert normalise_currency("ZZZ") is None
    assert normalise_currency("") is None
    assert normalise_currency(None) is None


def _offers(**over):
    """Two days of two listings, plus a duplicate fetch; overridable columns."""
    ts = pd.Timestamp("2026-07-01 10:00", tz="UTC")
    day1, day2 = pd.Timestamp("2026-07-01"), pd.Timestamp("2026-07-02")
    a1 = dict(url="http://s/a", retailer="amazon", item_id="A1", brand="Acme", gtin=None, mpn="W-1")
    usd = dict(currency="USD", currency_raw="$", page_kind="product")
    rows = [
        {**a1, **usd, "title": "Widget", "price": "12.99", "list_price": "15.99", "availability": IN_STOCK,
         "fetched_at": ts, "ds": day1, "page_sha256": "a" * 64},
        {**a1, **usd, "title": "Widget v2", "price": "11.99", "list_price": None, "availability": IN_STOCK,
         "fetched_at": ts + pd.Timedelta(hours=1), "ds": day1, "page_sha256": "b" * 64},
        {"url": "http://s/b", "retailer": "target", "item_id": "T9", "title": "Gadget", "brand": "Bolt",
         "gtin": "0012345678905", "mpn": None, "price": None, "list_price": None, "currency": None,
         "currency_raw": None, "availability": OUT_OF_STOCK, "page_kind": "product",
         "fetched_at": ts + pd.Timedelta(days=1), "ds": day2, "page_sha256": "c" * 64},
    ]
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


def test_offers_to_observations_basic():
    obs, errors = offers_to_observations(_offers())
    assert list(obs.columns) == OBSERVATION_COLUMNS
    assert errors.empty and list(errors.columns) == ["url", "retailer", "ds", "kind", "message"]
    assert len(obs) == 2  # duplicate (amazon, A1, 07-01) collapsed to the latest fetch
    a = obs[obs.item_id == "A1"].iloc[0]
    assert a.price == 11.99 and np.isnan(a.list_price) and not a.promo
    assert a.title == "Widget v2" and a.page_sha256 == "b" * 64
    assert a.in_stock and a.currency == "USD"
    t = obs[obs.item_id == "T9"].iloc[0]
    assert not t.in_stock and np.isnan(t.price)
    assert str(obs.observed_at.dt.tz) == "UTC"
    assert obs.ds.dtype == "datetime64[ns]"
    assert obs.price.dtype == float and obs.in_stock.dtype == bool and obs.promo.dtype == bool


def test_promo_from_list_price_and_float_rounding():
    df = _offers().iloc[[0]].copy()
    df["price"] = "12.994"
    obs, _ = offers_to_observations(df)
    assert obs.price.iloc[0] == 12.99 and obs.list_price.iloc[0] == 15.99 and obs.promo.iloc[0]


def test_error_rows():
    df = _offers()
    extra = pd.DataFrame(
        [
            dict(df.iloc[0], item_id="A2", currency=None, currency_raw="XYZ", url="http://s/x"),
            dict(df.iloc[0], item_id=None, url="http://s/noid"),
            dict(df.iloc[0], item_id="A3", price=None, url="http://s/noprice"),
            dict(df.iloc[0], item_id="A4", page_kind="blocked", price=None, url="http://s/blocked"),
            dict(df.iloc[0], item_id="A5", price="twelve", url="http://s/bad"),
            dict(df.iloc[0], item_id="A6", fetched_at="not a time", url="http://s/time"),
        ]
    )
    obs, errors = offers_to_observations(pd.concat([df, extra], ignore_index=True))
    kinds = dict(zip(errors.url, errors.kind))
    assert kinds == {
        "http://s/x": "unknown_currency",
        "http://s/noid": "missing_item_id",
        "http://s/noprice": "no_price",
        "http://s/blocked": "page_kind",
        "http://s/bad": "bad_price",
        "http://s/time": "bad_timestamp",
    }
    msg = errors.set_index("url").message
    assert msg["http://s/x"] == "unknown currency 'XYZ' on http://s/x"
    assert "in-stock page shows no price" in msg["http://s/noprice"]
    assert set(obs.item_id) == {"A1", "T9"}
    assert errors.ds.dtype == "datetime64[ns]"


def test_accept_currencies_and_unknown_without_raw():
    df = _offers().iloc[[0]].copy()
    df["currency"] = "EUR"
    df["currency_raw"] = None
    obs, errors = offers_to_observations(df, accept_currencies={"USD"})
    assert obs.empty and errors.kind.tolist() == ["unknown_currency"]
    assert "'EUR'" in errors.message.iloc[0]
    df["currency"] = None
    _, errors = offers_to_observations(df)
    assert errors.message.iloc[0] == "unknown currency 'none' on http://s/a"


def test_ds_defaults_to_fetch_date_and_unknown_availability():
    df = _offers().drop(columns=["ds", "page_kind", "list_price"])
    df["availability"] = None
    df["fetched_at"] = ["2026-07-03T23:30:00+00:00", "2026-07-04T01:00:00+02:00", "2026-07-05T00:00:00Z"]
    obs, errors = offers_to_observations(df)
    assert errors.empty
    # both A1 fetches fall on 07-03 in UTC; 23:30Z is later than 01:00+02:00 (= 23:00Z)
    assert sorted(obs.ds.dt.strftime("%Y-%m-%d")) == ["2026-07-03", "2026-07-05"]
    assert obs.set_index("item_id").price["A1"] == 12.99
    # unknown availability: in stock iff a price is shown
    assert obs.set_index("item_id").in_stock.to_dict() == {"A1": True, "T9": False}


def test_missing_columns_raise_clear_error():
    with pytest.raises(CleanError, match=r"missing column\(s\) \['price'\]") as exc:
        offers_to_observations(_offers().drop(columns=["price"]))
    assert isinstance(exc.value, PriceIntelError)
    with pytest.raises(CleanError, match="missing column"):
        listings_from_observations(pd.DataFrame({"retailer": ["a"]}))


def test_empty_offers():
    obs, errors = offers_to_observations(_offers().iloc[0:0])
    assert obs.empty and errors.empty
    assert list(obs.columns) == OBSERVATION_COLUMNS


def test_listings_latest_non_null():
    df = _offers()
    df.loc[1, "mpn"] = None
    df.loc[1, "ds"] = pd.Timestamp("2026-07-02")
    obs, _ = offers_to_observations(df)
    lst = listings_from_observations(obs)
    assert list(lst.columns) == LISTING_COLUMNS
    a = lst.set_index("item_id").loc["A1"]
    assert a.title == "Widget v2" and a.mpn == "W-1"  # latest title, last non-null mpn
    t = lst.set_index("item_id").loc["T9"]
    assert t.gtin == "0012345678905" and t.mpn is None


@pytest.mark.parametrize(
    "text, hint, sep, amount, raw, iso",
    [
        ("2963yen", None, None, "2963", "yen", "JPY"),
        ("1 бат", None, None, "1", "бат", "THB"),  # a CLDR name (was unknown before CLDR names were read)
        ("1.198,- Kr", None, None, "1198", "Kr", "NOK"),  # "kr" alone: the CLDR default rule (was SEK by hand)
        ("US $1.23", None, None, "1.23", "US $", "USD"),
        ("45 E£", None, None, "45", "E£", "EGP"),  # a country-letter prefix of "£" derived from CLDR's "EG£"
        ("1 nzd", None, None, "1", "nzd", "NZD"),
        ("1 ر.س", None, None, "1", "ر.س", "SAR"),
        ("2 400", "2 069 рублей", None, "2400", "руб", "RUB"),
        ("99.99", "SKU:", None, "99.99", None, None),  # a hint that holds no currency adds none
        ("30.00", "out of stock", None, "30", None, None),
        ("1.000", None, ",", "1000", None, None),
        ("34.12 (40.94 inc VAT)", None, None, "34.12", None, None),
    ],
)
def test_parse_price_local_currencies(text, hint, sep, amount, raw, iso):
    p = parse_price(text, currency_hint=hint, decimal_separator=sep)
    assert p.amount == Decimal(amount)
    assert p.currency_raw == raw and p.currency == iso
