"""Clean extracted offers into the long observation frame: prices, currencies, stock, dedup."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
from price_parser import Price
from price_parser._currencies import CURRENCY_CODES as _PP_CODE_LIST

from priceintel import PriceIntelError
from priceintel.items import IN_STOCK, LIMITED, LISTING_COLUMNS, OBSERVATION_COLUMNS, PREORDER


class CleanError(PriceIntelError):
    """The offers frame handed to the cleaner is malformed (missing columns, bad types)."""


#: ISO-4217 codes we accept as-is (the common trading currencies)
ISO_CURRENCIES = frozenset(
    "USD EUR GBP JPY CNY CAD AUD NZD CHF SEK NOK DKK PLN CZK HUF RON BGN TRY RUB UAH INR PKR "
    "BRL MXN ARS CLP COP PEN ZAR KRW SGD HKD TWD THB MYR IDR PHP VND ILS AED SAR QAR EGP NGN KES".split()
)

#: currency signs / local spellings -> ISO code ("$" is read as USD: the demo and US retailers)
CURRENCY_SYMBOLS = {
    "$": "USD",
    "US$": "USD",
    "USD$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "JP¥": "JPY",
    "円": "JPY",
    "元": "CNY",
    "CN¥": "CNY",
    "RMB": "CNY",
    "C$": "CAD",
    "CA$": "CAD",
    "CAN$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "NT$": "TWD",
    "R$": "BRL",
    "MX$": "MXN",
    "₹": "INR",
    "RS": "INR",
    "RS.": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "РУБ": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "₫": "VND",
    "฿": "THB",
    "₱": "PHP",
    "₴": "UAH",
    "₦": "NGN",
    "ZŁ": "PLN",
    "KČ": "CZK",
    "FT": "HUF",
    "LEI": "RON",
    "FR.": "CHF",
    "SFR.": "CHF",
    "R": "ZAR",
    "RM": "MYR",
    "RP": "IDR",
    "KR": "SEK",
    "KR.": "DKK",
}

_CODE_RE = re.compile(r"^[A-Z]{3}$")
_NOT_CODES = frozenset({"REG", "WAS", "NOW", "NEW", "OFF", "FOR", "VAT", "TAX", "AND", "THE"})

#: currency spellings price-parser does not know (local abbreviations, names, rare signs), matched
#: case-insensitively as the whole token next to the amount; values are ISO codes (None = ambiguous)
EXTRA_CURRENCIES: dict[str, str | None] = {
    # names and words
    "yen": "JPY",
    "yuan": "CNY",
    "renminbi": "CNY",
    "人民币": "CNY",
    "圆": "CNY",
    "元": "CNY",
    "pound": "GBP",
    "pounds": "GBP",
    "stg": "GBP",
    "quid": "GBP",
    "euro": "EUR",
    "euros": "EUR",
    "dollar": "USD",
    "dollars": "USD",
    "franc": "CHF",
    "francs": None,
    "peso": None,
    "pesos": None,
    "rupee": "INR",
    "rupees": "INR",
    "real": "BRL",
    "reais": "BRL",
    "rand": "ZAR",
    "baht": "THB",
    "บาท": "THB",
    "won": "KRW",
    "dong": "VND",
    "lira": "TRY",
    "shekel": "ILS",
    "nis": "ILS",
    "ש״ח": "ILS",
    'ש"ח': "ILS",
    "ש'ח": "ILS",
    "złoty": "PLN",
    "zloty": "PLN",
    "zl": "PLN",
    "forint": "HUF",
    "koruna": "CZK",
    "kuna": "HRK",
    "kn": "HRK",
    "lei": "RON",
    "leu": "RON",
    "lev": "BGN",
    "лв": "BGN",
    "лв.": "BGN",
    "dinar": None,
    "dirham": None,
    "riyal": None,
    "rial": None,
    "ruble": "RUB",
    "rouble": "RUB",
    "руб": "RUB",
    "руб.": "RUB",
    "р.": "RUB",
    "грн": "UAH",
    "грн.": "UAH",
    "тг": "KZT",
    "тг.": "KZT",
    "тенге": "KZT",
    "сом": "KGS",
    "сум": "UZS",
    "so'm": "UZS",
    "sʻ": "UZS",
    "сўм": "UZS",
    "ден": "MKD",
    "ден.": "MKD",
    "дин": "RSD",
    "дин.": "RSD",
    "din": "RSD",
    "din.": "RSD",
    "км": "BAM",
    "km": "BAM",
    "kr": None,
    "kr.": None,
    "kč": "CZK",
    "zł": "PLN",
    "ron": "RON",
    "gs": "PYG",
    "gs.": "PYG",
    "lps": "HNL",
    "lps.": "HNL",
    "c$": "NIO",
    "s/": "PEN",
    "bs.s": "VES",
    "r": None,
    "р": "RUB",
    # Arabic-script abbreviations
    "ر.س": "SAR",
    "ر.ع": "OMR",
    "ر.ق": "QAR",
    "ر.ي": "YER",
    "د.إ": "AED",
    "د.ا": "JOD",
    "د.أ": "JOD",
    "د.ب": "BHD",
    ".د.ب": "BHD",
    "د.ك": "KWD",
    "د.ع": "IQD",
    "ع.د": "IQD",
    "د.ل": "LYD",
    "د.ج": "DZD",
    "د.م": "MAD",
    "د.م.": "MAD",
    "د.ت": "TND",
    "ج.م": "EGP",
    "ج.س": "SDG",
    "ش.ج": "ILS",
    "ش.ص": "SOS",
    "دينار": None,
    "ريال": None,
    "درهم": None,
    "جنيه": "EGP",
    "ل.ل": "LBP",
    "ل.س": "SYP",
    "؋": "AFN",
    "﷼": None,
    # other scripts
    "ლ": "GEL",
    "₾": "GEL",
    "֏": "AMD",
    "ரூ": "LKR",
    "රු": "LKR",
    "रु": "NPR",
    "रू": "NPR",
    "৳": "BDT",
    "₮": "MNT",
    "៛": "KHR",
    "₭": "LAK",
    "ƒ": None,
    "₲": "PYG",
    "₵": "GHS",
    "₡": "CRC",
    "₸": "KZT",
    "₼": "AZN",
    "₿": "BTC",
    "ƀ": "BTC",
    "Ƀ": "BTC",
    "¢": None,
    "₣": None,
    # Latin abbreviations and single letters
    "kshs": "KES",
    "ksh": "KES",
    "ksh.": "KES",
    "ush": "UGX",
    "tsh": "TZS",
    "tsh.": "TZS",
    "fbu": "BIF",
    "fcfa": "XAF",
    "cfa": None,
    "gfr": "GNF",
    "fg": "GNF",
    "rf": "RWF",
    "frw": "RWF",
    "fdj": "DJF",
    "cf": "KMF",
    "esc": "CVE",
    "vt": "VUV",
    "chf": "CHF",
    "sfr": "CHF",
    "fr": None,
    "fr.": None,
    "dh": "MAD",
    "dhs": "AED",
    "rs": "INR",
    "rs.": "INR",
    "rp": "IDR",
    "rm": "MYR",
    "php": "PHP",
    "pkr": "PKR",
    "bs": None,
    "bs.": None,
    "bs.f": "VEF",
    "q": "GTQ",
    "l": None,
    "d": "GMD",
    "g": "HTG",
    "k": None,
    "p": "BWP",
    "t": None,
    "e": None,
    "le": "SLL",
    "id": None,
    "mk": "MWK",
    "nu.": "BTN",
    "nu": "BTN",
    "um": "MRU",
    "mt": "MZN",
    "mtn": "MZN",
    "ar": "MGA",
    "br": "ETB",
    "ብር": "ETB",
    "ﻙ.ﺩ": "KWD",
    "lm": None,
    "ls": None,
}
#: a sign price-parser finds, plus letters written next to it, that form another currency
COMPOUND_CURRENCIES: dict[str, str | None] = {
    "US $": "USD",
    "US$": "USD",
    "AU $": "AUD",
    "AU$": "AUD",
    "A $": "AUD",
    "CA $": "CAD",
    "C $": "CAD",
    "NZ $": "NZD",
    "HK $": "HKD",
    "S $": "SGD",
    "NT $": "TWD",
    "MX $": "MXN",
    "R $": "BRL",
    "$b": "BOB",
    "$B": "BOB",
    "RD$": "DOP",
    "RD $": "DOP",
    "N$": "NAD",
    "J$": "JMD",
    "TT$": "TTD",
    "BZ$": "BZD",
    "EC$": "XCD",
    "FJ$": "FJD",
    "SI$": "SBD",
    "WS$": "WST",
    "T$": "TOP",
    "Z$": "ZWL",
    "E£": "EGP",
    "E £": "EGP",
    "L£": "LBP",
    "S£": "SYP",
    "R₣": "RWF",
    "FC": "CDF",
}
_PP_CODES = frozenset(_PP_CODE_LIST) | ISO_CURRENCIES
_EXTRA_LOWER = {k.lower(): v for k, v in EXTRA_CURRENCIES.items()}
_RESIDUAL_STRIP = " \t\u00a0:;,-–—*/()[]"


@dataclass(frozen=True)
class ParsedPrice:
    """A price read from text: amount, ISO currency (None when unknown) and the currency as written."""

    amount: Decimal | None
    currency: str | None
    currency_raw: str | None
    #: items the amount buys when the text is a multi-buy ("2 for $5" -> amount 5, quantity 2)
    quantity: int | None = None
    #: unit of a unit price ("$0.25/oz" -> "oz")
    unit: str | None = None

    @property
    def text(self) -> str | None:
        """Amount as a normalised decimal string ("12.99"), None without an amount."""
        return format_amount(self.amount)


def format_amount(amount: Decimal | None) -> str | None:
    """Normalised decimal string: at least two decimals ("12.9" -> "12.90"), no exponent."""
    if amount is None:
        return None
    if amount.as_tuple().exponent >= -2:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


#: the dollar / peso family: currencies written "$" at home
_DOLLAR_SIGN = {
    "us": "USD",
    "ca": "CAD",
    "au": "AUD",
    "nz": "NZD",
    "mx": "MXN",
    "ar": "ARS",
    "cl": "CLP",
    "co": "COP",
    "uy": "UYU",
    "sg": "SGD",
    "hk": "HKD",
    "tw": "TWD",
    "do": "DOP",
    "jm": "JMD",
    "tt": "TTD",
    "bs": "BSD",
    "bb": "BBD",
    "bz": "BZD",
    "gy": "GYD",
    "na": "NAD",
    "fj": "FJD",
    "bn": "BND",
    "lr": "LRD",
    "sr": "SRD",
    "cu": "CUP",
    "ec": "USD",
    "sv": "USD",
    "pa": "USD",
    "pr": "USD",
}
#: signs shared by several currencies -> {country code (ccTLD or language region): ISO code}
AMBIGUOUS_SIGNS: dict[str, dict[str, str]] = {
    "$": _DOLLAR_SIGN,
    "kr": {"se": "SEK", "no": "NOK", "dk": "DKK", "is": "ISK", "fo": "DKK", "gl": "DKK"},
    "¥": {"jp": "JPY", "cn": "CNY"},
    "元": {"cn": "CNY", "tw": "TWD", "hk": "HKD"},
}


def currency_in_context(
    raw: str | None, iso: str | None, country: str | None = None, declared: str | None = None
) -> str | None:
    """ISO code of a sign several currencies share ("$", "kr", "¥"), read in the page's context.

    `declared` (an ISO code the page states elsewhere, e.g. schema.org priceCurrency or
    og:price:currency) wins when it is one of the sign's currencies; else the `country` (the
    domain's ccTLD or the region of <html lang>) picks one; else `iso` (the sign's default) stays.
    """
    if raw is None:
        return iso
    key = str(raw).strip().rstrip(".").lower()
    family = AMBIGUOUS_SIGNS.get(key) or AMBIGUOUS_SIGNS.get(str(raw).strip())
    if not family:
        return iso
    declared_iso = normalise_currency(declared) if declared else None
    if declared_iso is not None and (declared_iso in family.values() or declared_iso == iso):
        return declared_iso
    if country and country.lower() in family:
        return family[country.lower()]
    return iso


def normalise_currency(raw: str | None) -> str | None:
    """ISO-4217 code for a written currency ("$", "usd", "€", "EUR", "руб"), None when unknown."""
    if raw is None:
        return None
    token = str(raw).strip()
    upper = token.upper()
    if not token:
        return None
    if upper in ISO_CURRENCIES:
        return upper
    if upper in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[upper]
    if token in COMPOUND_CURRENCIES:
        return COMPOUND_CURRENCIES[token]
    iso = _EXTRA_LOWER.get(token.lower())
    if iso is None and _CODE_RE.match(upper) and upper not in _NOT_CODES and token == upper:
        return None
    return iso


def _residual_currency(text: str, amount_text: str | None, codes: bool = True) -> str | None:
    """A known extra currency token written right next to the amount ("2963yen", "1.198,- Kr").

    An ISO code in any case counts ("1 nzd"); with `codes`, also an unknown upper-case three-letter
    code standing alone next to the amount ("XYZ 12.00"), kept as written.
    """
    rest = text.replace(amount_text, " ", 1) if amount_text else text
    rest = rest.strip(_RESIDUAL_STRIP)
    if not rest:
        return None
    if rest.lower() in _EXTRA_LOWER or rest.upper() in _PP_CODES:
        return rest
    if codes and _CODE_RE.match(rest) and rest not in _NOT_CODES:
        return rest  # an unknown but well-formed ISO-looking code kept as written ("XYZ 12.00")
    words = rest.split()
    for word in (words[0], words[-1]) if len(words) > 1 else ():
        w = word.strip(_RESIDUAL_STRIP)
        if w.lower() in _EXTRA_LOWER and len(w) > 1:
            return w
    return None


def _compound(text: str, sign: str) -> str:
    """Widen a found sign with adjacent letters when they form a known compound ("US $", "$b", "E£")."""
    i = text.find(sign)
    if i < 0:
        return sign
    for k in range(3, 0, -1):  # prefixes like "AU ", "RD", "E"
        for sep in (" ", ""):
            start = i - k - len(sep)
            if start >= 0 and text[start:i] == text[start : start + k] + sep:
                cand = text[start:i] + sign
                if cand in COMPOUND_CURRENCIES and (start == 0 or not text[start - 1].isalpha()):
                    return cand
    after = text[i + len(sign) : i + len(sign) + 1]
    if after and (sign + after) in COMPOUND_CURRENCIES:
        return sign + after
    return sign


def parse_price(text: object, currency_hint: str | None = None, decimal_separator: str | None = None) -> ParsedPrice:
    """Parse a price text ("$1,234.50", "12,99 €", "2963yen", 12.5) into amount + ISO currency + raw currency.

    price-parser reads the amount (either decimal separator; `decimal_separator` forces one) and the
    common currency signs, from the text or else from `currency_hint`; we add local abbreviations
    and names (`EXTRA_CURRENCIES`) and compound signs ("US $", "E£"), kept exactly as written.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        hint = _hint_currency(currency_hint)
        return ParsedPrice(None, normalise_currency(hint), hint)
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        try:
            amount: Decimal | None = Decimal(str(text))
        except InvalidOperation:  # pragma: no cover - str() of a number is always parseable
            amount = None
        hint = _hint_currency(currency_hint)
        return ParsedPrice(amount, normalise_currency(hint), hint)
    s = str(text)
    special = _special_forms(s, currency_hint, decimal_separator)
    if special is not None:
        return special
    parsed = Price.fromstring(s, decimal_separator=decimal_separator)
    amount = parsed.amount
    if amount is not None and amount < 0:
        amount = None
    raw = parsed.currency
    if raw is not None:
        raw = _compound(s, raw)
    else:
        raw = _residual_currency(s, parsed.amount_text)
    if raw is None and currency_hint:
        raw = _hint_currency(currency_hint)
    return ParsedPrice(amount, normalise_currency(raw), _clean_raw(raw))


#: words introducing the current price of a was/now pair, in the languages shops use
_NOW_WORDS = re.compile(
    r"(?<![^\W\d_])(?:now|jetzt|nu|maintenant|ahora|agora|ora|teraz|nyt|nå)\b\s*:?\s*", re.IGNORECASE
)
#: words introducing a former / list price
_WAS_WORDS = re.compile(
    r"^\s*(?:was|before|statt|avant|antes|prima|era|przed|f[öo]rr|tidligere|aiemmin)\b", re.IGNORECASE
)
#: "2 for $5", "3 für 10 €", "2/$5": a multi-buy (quantity, then the price of all of them)
_MULTI_BUY = re.compile(r"^\s*(?P<n>\d{1,3})\s*(?:for|für|pour|por|per|voor|za|/)\s*(?P<price>.*\d.*)$", re.IGNORECASE)
#: "/oz", "per kg", "/100 g" after the amount: a unit price
_UNIT = re.compile(
    r"(?:/|\bper\s+|\bpro\s+|\bje\s+|\bpar\s+)\s*(?P<unit>(?:\d+\s*)?[^\W\d_]{1,6}\.?)\s*$", re.IGNORECASE
)


def _special_forms(s: str, hint: str | None, sep: str | None) -> ParsedPrice | None:
    """Was/now pairs, multi-buys and unit prices, which price-parser reads as their first number."""
    m = _MULTI_BUY.match(s)
    if m and any(c.isdigit() for c in m.group("price")):
        inner = parse_price(m.group("price"), hint, sep)
        if inner.amount is not None and (inner.currency_raw or "/" not in s[m.start("n") : m.start("price")]):
            return replace(inner, quantity=int(m.group("n")))
    now = [w for w in _NOW_WORDS.finditer(s) if any(c.isdigit() for c in s[w.end() :])]
    if now:
        inner = parse_price(s[now[-1].end() :], hint, sep)
        if inner.amount:  # a zero "now" is a placeholder ("Was: $124.95 Now: $0.00"): keep the other
            return inner
    elif _WAS_WORDS.match(s):
        first = Price.fromstring(s, decimal_separator=sep)
        if first.amount_text:
            rest = s[s.find(first.amount_text) + len(first.amount_text) :]
            inner = parse_price(rest, hint, sep) if any(c.isdigit() for c in rest) else None
            if inner is not None and inner.amount:
                return inner
    unit = _UNIT.search(s)
    if unit and any(c.isdigit() for c in s[: unit.start()]):
        inner = parse_price(s[: unit.start()], hint, sep)
        if inner.amount is not None:
            return replace(inner, unit=unit.group("unit").strip().rstrip(".").lower())
    return None


def _hint_currency(hint: str | None) -> str | None:
    """The currency in a separate hint text ("GBP", "Price: $ 34.44", "2 069 рублей"), as written."""
    if hint is None or not str(hint).strip():
        return None
    hint = str(hint)
    found = Price.fromstring(hint).currency
    if found is None:
        found = Price.fromstring(None, currency_hint=hint).currency
    if found is not None:
        return _compound(hint, found.strip())
    parsed = Price.fromstring(hint)
    return _residual_currency(hint, parsed.amount_text, codes=False)


def _clean_raw(raw: str | None) -> str | None:
    """Strip a raw currency token; None when empty."""
    if raw is None:
        return None
    raw = str(raw).strip()
    return raw or None


# --- offers -> observations ---------------------------------------------------------------

_REQUIRED = ["url", "retailer", "item_id", "price", "availability", "fetched_at"]
_OPTIONAL = [
    "list_price",
    "currency",
    "currency_raw",
    "title",
    "brand",
    "gtin",
    "mpn",
    "page_sha256",
    "page_kind",
    "ds",
]
ERROR_COLUMNS = ["url", "retailer", "ds", "kind", "message"]
_IN_STOCK_VALUES = {IN_STOCK, LIMITED, PREORDER}


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
    accepted = set(accept_currencies) if accept_currencies is not None else set(ISO_CURRENCIES)
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

    price_num = pd.to_numeric(df["price"], errors="coerce")
    list_num = pd.to_numeric(df["list_price"], errors="coerce")
    has_price_text = df["price"].notna() & (df["price"].astype(str).str.strip() != "")
    availability = df["availability"]
    known_avail = availability.notna()
    in_stock = np.where(known_avail, availability.isin(_IN_STOCK_VALUES), price_num.notna())
    in_stock = pd.Series(in_stock.astype(bool), index=df.index)
    currency = df["currency"].where(df["currency"].notna(), None)
    cur_ok = currency.isin(accepted)
    item_missing = df["item_id"].isna() | (df["item_id"].astype(str).str.strip() == "")

    kinds = pd.Series(None, index=df.index, dtype=object)
    msgs = pd.Series(None, index=df.index, dtype=object)

    def flag(mask: pd.Series, kind: str, make_msg) -> None:
        """Mark rows (not yet flagged) with an error kind and message."""
        mask = mask & kinds.isna()
        if mask.any():
            kinds[mask] = kind
            msgs[mask] = [make_msg(r) for r in df.loc[mask].itertuples(index=False)]

    page_kind = df["page_kind"].fillna("product")
    flag(
        ~page_kind.isin(["product", "no_price"]),
        "page_kind",
        lambda r: f"page is {r.page_kind!r}, not a product page: {r.url}",
    )
    flag(observed.isna(), "bad_timestamp", lambda r: f"unparseable fetched_at {r.fetched_at!r} on {r.url}")
    flag(item_missing, "missing_item_id", lambda r: f"no retailer item id extracted from {r.url}")
    flag(has_price_text & price_num.isna(), "bad_price", lambda r: f"unparseable price {r.price!r} on {r.url}")
    flag(price_num.isna() & in_stock, "no_price", lambda r: f"in-stock page shows no price: {r.url}")
    flag(
        price_num.notna() & ~cur_ok, "unknown_currency", lambda r: f"unknown currency {_currency_label(r)!r} on {r.url}"
    )

    bad = kinds.notna()
    errors = pd.DataFrame(
        {
            "url": df.loc[bad, "url"],
            "retailer": df.loc[bad, "retailer"],
            "ds": df.loc[bad, "ds"],
            "kind": kinds[bad],
            "message": msgs[bad],
        }
    ).reset_index(drop=True)
    errors = errors.astype({"ds": "datetime64[ns]"}) if len(errors) else _empty_errors()

    good = df.loc[~bad].copy()
    good["price"] = price_num[~bad].round(2)
    good["list_price"] = list_num[~bad].round(2)
    good["currency"] = currency[~bad]
    good["in_stock"] = in_stock[~bad].astype(bool)
    good["promo"] = (good["list_price"] > good["price"]).fillna(False).astype(bool)
    good["item_id"] = good["item_id"].astype(str)
    good = good.sort_values(["observed_at"], kind="stable")
    good = good.drop_duplicates(["retailer", "item_id", "ds"], keep="last")
    good = good.sort_values(["retailer", "item_id", "ds"], kind="stable").reset_index(drop=True)
    obs = good[OBSERVATION_COLUMNS].copy()
    obs["ds"] = obs["ds"].astype("datetime64[ns]")
    return obs, errors


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
