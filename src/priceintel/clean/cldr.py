"""Currency and unit spellings from the Unicode CLDR data that Babel installs (no hand-written lists).

`currency_table()` reads, once per process (lazily, then cached), every locale Babel knows
(`babel.localedata.locale_identifiers()`):

- the currency symbols (`currency_symbols`, e.g. "$", "US$", "kr", "zł", "лв.", "₽", "Q");
- the ISO-4217 codes (`babel.numbers.list_currencies()`);
- the display names and their plural forms (`currency_names`, `currency_names_plural`, e.g.
  "euros", "yen", "российских рублей"), plus each name's first and last word ("рублей", "dollars"),
  of the currencies legal tender today (historic ones are read by symbol and code only).

plus the symbols of price-parser's own currency table (`price_parser._currencies.CURRENCIES`, compiled
from ISO-4217 and xe.com by its authors), which the amount parser already recognises. Two writing
conventions derive further spellings from the CLDR names, with no list: Hebrew acronyms of multi-word
names ("ש״ח" of "שקל חדש", `_add_hebrew_acronyms`) and Cyrillic contractions of a name's noun ("тг."
of "тенге", "грн" of "гривня", `cyrillic_contraction`). Three more rules, applied to the whole table
(`priceintel.clean.cldr_derived.add_derived`), add the ASCII folds of Latin symbols ("zl" of "zł"),
plurals of abbreviation-like symbols ("Kshs" of "Ksh") and country-letter prefixes of shared signs
("E£" of EGP), counted in `CurrencyTable.derived`.

Symbols are keyed by their NFKC form (full-width "＄" reads as "$"); names and codes, and symbols of
two characters or more, also by their case-folded form. A spelling may belong to several currencies
("$", "kr", "¥", "£"): every candidate is kept, with the number of locales writing it that way, and
`default_currency` picks one (see there). Installed Babel has no narrow ("symbol-alt-narrow")
symbols in its locale data, so only the standard symbols are read.

`unit_spellings()` does the same for units of measure: the short, narrow and long forms of CLDR's
length, mass, volume and area units and of "percent", in the languages listed in `UNIT_LOCALES`.
"""

from __future__ import annotations

import pickle
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import wraps
from typing import Any, TypeVar

from babel.core import get_global
from babel.localedata import load, locale_identifiers, resolve_locale_filename
from babel.numbers import get_territory_currencies, list_currencies
from price_parser._currencies import CURRENCIES as _PP_CURRENCIES

from priceintel.clean.cldr_derived import add_derived

#: CLDR unit categories whose units measure a quantity of goods (never a price)
UNIT_CATEGORIES = ("length-", "mass-", "volume-", "area-", "concentr-percent")
#: languages whose unit spellings are read (the large e-commerce languages; one locale each)
UNIT_LOCALES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "uk", "sv", "cs", "tr", "he", "ja", "zh")
#: count conventions that are no CLDR unit: pieces / packs / count / each ("ct" also CLDR carat),
#: as declared on packages (NIST Handbook 130, "count" net-quantity declarations) and the multiplication
#: sign of "12 x 500 ml"; '"' is the ASCII inch mark (CLDR writes the double prime ″)
COUNT_WORDS = ("pcs", "pc", "pieces", "piece", "pack", "packs", "pk", "ct", "count", "ea", "x", "×", '"')


_T = TypeVar("_T")
#: one build at a time (re-entrant: the currency table asks for the unit spellings while it is built)
_BUILD_LOCK = threading.RLock()


def _built_once(build: Callable[[], _T]) -> Callable[[], _T]:
    """`build()`, run on first use and kept for the process. Threads that ask while it runs (the live scraper's
    fetch threads on their first price) wait for that one build; with `functools.cache` alone each of them
    built its own table at the same time."""
    kept: list[_T] = []

    @wraps(build)
    def get() -> _T:
        if not kept:
            with _BUILD_LOCK:
                if not kept:
                    kept.append(build())
        return kept[0]

    return get


#: bidirectional marks CLDR writes around Arabic / Hebrew symbols ("ر.س.\u200f"): no part of a spelling
_BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def nfkc(text: str) -> str:
    """NFKC form (full-width "＄１２" -> "$12"), no bidi marks, no-break and thin spaces read as spaces."""
    return _BIDI.sub("", unicodedata.normalize("NFKC", text)).replace("\u00a0", " ").replace("\u202f", " ")


#: full-width and half-width forms (U+FF00-U+FFEF), read through NFKC in whole texts
_WIDTH_FORMS = re.compile("[\uff00-\uffef]+")
_DIGIT = re.compile(r"\d")
_CYRILLIC = re.compile("[\u0400-\u04ff]+")


#: the spaces CLDR and shops write inside prices (no-break, narrow no-break, thin), read as " "
_SPACES = re.compile("[\u00a0\u2007\u2009\u202f]")


def width_normalise(text: str) -> str:
    """Full-width / half-width forms in NFKC ("￥１,２００" -> "¥1,200"), bidi marks dropped, no-break
    and thin spaces as " "; the rest as written."""
    text = _WIDTH_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
    return _SPACES.sub(" ", _BIDI.sub("", text))


def normalise_text(text: str) -> str:
    """`width_normalise`, then the non-ASCII separators CLDR numbers use read as "," / "." ("1⹁234.50")."""
    text = width_normalise(text)
    seps = currency_table().separators
    if any(c in seps for c in text):
        text = "".join(seps.get(c, c) for c in text)
    return text


def fold(text: str) -> str:
    """Case-folded NFKC form: the key of names and codes."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.casefold().strip()


@dataclass
class CurrencyTable:
    """Every written form of every currency CLDR knows, with its candidates."""

    #: NFKC symbol (case as written) -> {ISO code: number of locales writing it so}
    symbols: dict[str, dict[str, int]] = field(default_factory=dict)
    #: case-folded symbol of two characters or more ("kr", "ft") -> {ISO code: locales}
    folded: dict[str, dict[str, int]] = field(default_factory=dict)
    #: case-folded name, plural, name word or ISO code ("euros", "yen", "usd") -> {ISO code: 0}
    names: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ISO code -> its symbol in English ("USD" -> "$", "JPY" -> "¥"): the first default
    english: dict[str, str] = field(default_factory=dict)
    #: the currencies legal tender today -> in how many territories
    current: dict[str, int] = field(default_factory=dict)
    #: last words of Cyrillic names ("тенге", "гривня", "рубль") -> {ISO code: locales}, for contractions
    cyrillic_words: dict[str, dict[str, int]] = field(default_factory=dict)
    #: non-ASCII group / decimal separators of CLDR number formats -> "," / "." ("⹁", "٫"; "," when both)
    separators: dict[str, str] = field(default_factory=dict)
    #: ISO code legal tender today -> the territories where it is (CLDR territory currencies)
    territories: dict[str, list[str]] = field(default_factory=dict)
    #: derivation rule (`priceintel.clean.cldr_derived`) -> number of table entries it added
    derived: dict[str, int] = field(default_factory=dict)
    #: seconds spent building the table (wall clock, and CPU time of this process)
    build_seconds: float = 0.0
    build_cpu_seconds: float = 0.0

    def add_symbol(self, symbol: str, code: str, weight: int = 1) -> None:
        """Record one (symbol, currency) pair of one locale (`weight` 0: another source, no locale)."""
        key = nfkc(symbol).strip()
        if not key or key == "\u200b" or key == "¤":
            return
        per = self.symbols.setdefault(key, {})
        per[code] = per.get(code, 0) + weight
        if len(key) > 1:
            folded = self.folded.setdefault(key.casefold(), {})
            folded[code] = folded.get(code, 0) + weight

    def add_word(self, key: str, code: str) -> None:
        """Record a case-folded name, name word or code (counted once per locale naming it so)."""
        per = self.names.setdefault(key, {})
        per[code] = per.get(code, 0) + 1

    def add_names(self, data: dict, codes_names: list[tuple[str, str]]) -> None:
        """Record display names, and each one's first and last word when it has several.

        A word that is part of a territory name in the same language ("new" of "New Zealand",
        "états-unis") is no currency on its own and is skipped; so are names with digits (historic
        "(1990–1998)" forms).
        """
        place_words = {w for name in data.get("territories", {}).values() for w in name.casefold().split()}
        seen: set[tuple[str, str]] = set()
        for code, name in codes_names:
            key = fold(name)
            if (key, code) in seen or not key or _DIGIT.search(key):
                continue
            seen.add((key, code))
            self.add_word(key, code)
            words = key.split()
            if len(words) > 1:
                for word in {words[0].strip("()"), words[-1].strip("()")} - place_words:
                    if len(word) > 2 and word.isalpha() and (word, code) not in seen:
                        seen.add((word, code))
                        self.add_word(word, code)
                        if word == words[-1] and _CYRILLIC.fullmatch(word):  # the noun: "казахский тенге"
                            per = self.cyrillic_words.setdefault(word, {})
                            per[code] = per.get(code, 0) + 1


def _own_data(locale_id: str) -> dict:
    """A locale's own CLDR data, without its parents', read from Babel's file.

    Not through `babel.localedata.load(..., merge_inherited=False)`: that would leave the unmerged
    data in Babel's cache, and every later `Locale` of the process would miss its inherited data.
    """
    with open(resolve_locale_filename(locale_id), "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - Babel's own installed locale data


def _read_locale(table: CurrencyTable, locale_id: str) -> None:
    """Add one locale's own (not inherited) symbols and names."""
    data = _own_data(locale_id)
    for code, symbol in data.get("currency_symbols", {}).items():
        table.add_symbol(symbol, code)
    for symbols in data.get("number_symbols", {}).values():
        for kind, ascii_sign in (("group", ","), ("decimal", ".")):
            sign = symbols.get(kind, "") if hasattr(symbols, "get") else ""
            if len(sign) == 1 and not sign.isascii() and not sign.isspace():
                table.separators.setdefault(sign, ascii_sign)
                if table.separators[sign] != ascii_sign:
                    table.separators[sign] = ","  # group here, decimal there: price-parser tells which
    current = table.current
    names = [(code, name) for code, name in data.get("currency_names", {}).items() if code in current]
    for code, forms in data.get("currency_names_plural", {}).items():
        if code in current:
            names.extend((code, name) for name in forms.values())
    if names:
        table.add_names(data, names)


#: the gershayim of Hebrew acronyms and the two ASCII marks typed for it
_GERSHAYIM = ("\u05f4", '"', "'")
_HEBREW = re.compile("[\u05d0-\u05ea]+")


def _add_hebrew_acronyms(table: CurrencyTable) -> None:
    """Hebrew acronyms of CLDR's Hebrew currency names ("שקל חדש" -> "ש״ח"), counted as names.

    Hebrew writes the acronym of a multi-word name from the words' first letters with gershayim
    before the last one (the Academy of the Hebrew Language's punctuation rules); keyboards type '"'
    or "'" for it.
    """
    data = _own_data("he")
    names = [(c, n) for c, n in data.get("currency_names", {}).items() if c in table.current]
    names += [
        (c, n)
        for c, forms in data.get("currency_names_plural", {}).items()
        if c in table.current
        for n in forms.values()
    ]
    for code, name in names:
        words = name.split()
        if len(words) >= 2 and all(_HEBREW.fullmatch(w) for w in words):
            initials = "".join(w[0] for w in words)
            if unit_like(initials[:-1] + _GERSHAYIM[0] + initials[-1]):
                continue  # "ק״ג" is the kilogram before any currency
            for mark in _GERSHAYIM:
                table.add_word(initials[:-1] + mark + initials[-1], code)


def _current_currencies() -> dict[str, list[str]]:
    """Currencies legal tender today -> their territories (CLDR supplemental data)."""
    today = date.today()
    out: dict[str, list[str]] = {}
    for territory in get_global("territory_currencies"):
        for code in get_territory_currencies(territory, today, tender=True):
            out.setdefault(code, []).append(territory)
    return out


@_built_once
def currency_table() -> CurrencyTable:
    """The table, built on first use from every Babel locale and then cached for the process."""
    t0, c0 = time.perf_counter(), time.process_time()
    territories = _current_currencies()
    table = CurrencyTable(current={c: len(t) for c, t in territories.items()}, territories=territories)
    for locale_id in locale_identifiers():
        _read_locale(table, locale_id)
    for code in list_currencies():
        table.add_word(code.casefold(), code)
    for code, info in _PP_CURRENCIES.items():
        for symbol in [info.get("s", ""), info.get("sn", ""), *info.get("sn2", [])]:
            if symbol and symbol != code:
                table.add_symbol(symbol, code, weight=0)
        table.add_word(code.casefold(), code)
    _add_hebrew_acronyms(table)
    add_derived(table, unit_like)
    english = load("en")["currency_symbols"]
    table.english = {code: nfkc(sym) for code, sym in english.items()}
    table.build_seconds = round(time.perf_counter() - t0, 3)
    table.build_cpu_seconds = round(time.process_time() - c0, 3)
    return table


def _unit_forms(pattern_set: Any) -> list[str]:
    """The unit spellings of one CLDR unit ("{0} kg", "{0}kg", "{0} kilograms" -> "kg", "kilograms")."""
    forms: list[str] = []
    for width in ("short", "narrow", "long"):
        entry: Any = pattern_set[width] if width in pattern_set else None
        if isinstance(entry, tuple):  # (Alias, own patterns)
            entry = entry[-1]
        if entry is None or not hasattr(entry, "items"):  # an unresolved alias to another width
            continue
        for key, pattern in entry.items():
            if key != "per" and "{0}" in pattern:
                forms.append(nfkc(pattern.replace("{0}", "")).strip())
    return [f for f in forms if f]


@_built_once
def unit_spellings() -> frozenset[str]:
    """Spellings of units of measure (CLDR length/mass/volume/area/percent + `COUNT_WORDS`), as written."""
    out: set[str] = set(COUNT_WORDS)
    for locale_id in UNIT_LOCALES:
        patterns = load(locale_id)["unit_patterns"]
        for unit, pattern_set in patterns.items():
            if unit.startswith(UNIT_CATEGORIES):
                out.update(_unit_forms(pattern_set))
    return frozenset(out)


def cyrillic_contraction(key: str) -> dict[str, int]:
    """{ISO code: locales} of a Cyrillic contraction of a CLDR currency name word ("тг." -> тенге, "грн" -> гривня).

    Russian and Ukrainian abbreviate a word by truncation ("руб.") or contraction, keeping its first
    letter and some later letters in order ("тг.", "грн", "млн"; GOST 7.0.12-2011, which lays down the
    abbreviation of Russian words). A token of 2-4 Cyrillic letters, with or without the final full stop,
    counts when its letters appear in that order in the last word of a name (the noun: "казахский
    тенге") that starts with the same letter.
    """
    key = key.casefold().rstrip(".")
    if not 2 <= len(key) <= 4 or not _CYRILLIC.fullmatch(key):
        return {}
    out: dict[str, int] = {}
    for word, codes in currency_table().cyrillic_words.items():
        if word[0] == key[0] and len(word) > len(key) and _in_order(key[1:], word[1:]):
            for code, n in codes.items():
                out[code] = out.get(code, 0) + n
    return out


def _in_order(letters: str, word: str) -> bool:
    """Whether `letters` appear in `word` in this order (a subsequence)."""
    it = iter(word)
    return all(c in it for c in letters)


def unit_like(token: str) -> bool:
    """Whether `token` is spelt like a unit of measure in any case ("g", "KG", "L", "fl oz", "%", "pcs")."""
    key = nfkc(token).strip().rstrip(".").strip()
    if _HEBREW.search(key):  # Hebrew acronyms typed with '"' or "'" for the gershayim ("מ\"ל")
        key = key.replace('"', _GERSHAYIM[0]).replace("'", _GERSHAYIM[0])
    return bool(key) and (key in unit_spellings() or key.lower() in _lower_units())


@_built_once
def _lower_units() -> frozenset[str]:
    return frozenset(u.lower() for u in unit_spellings())
