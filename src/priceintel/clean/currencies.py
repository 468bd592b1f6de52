"""Currency tables and their lookups: ISO codes, signs, local spellings, signs shared by several currencies.

The tables are declarative data (one entry a line); `normalise_currency` maps a written currency to
its ISO-4217 code and `currency_in_context` resolves a shared sign ("$", "kr", "¥") from the page.
"""

from __future__ import annotations

import re

from babel.numbers import list_currencies
from price_parser._currencies import CURRENCY_CODES as _PP_CODE_LIST

#: ISO-4217 codes we accept as-is (the common trading currencies)
ISO_CURRENCIES = frozenset(
    "USD EUR GBP JPY CNY CAD AUD NZD CHF SEK NOK DKK PLN CZK HUF RON BGN TRY RUB UAH INR PKR "
    "BRL MXN ARS CLP COP PEN ZAR KRW SGD HKD TWD THB MYR IDR PHP VND ILS AED SAR QAR EGP NGN KES".split()
)

#: every ISO-4217 code CLDR knows (Babel): what a stored price's currency may be
ALL_ISO_CURRENCIES = frozenset(list_currencies())

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
