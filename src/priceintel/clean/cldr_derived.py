"""Spellings derived from the CLDR currency table by general rules (no list of strings; issue #18).

Each rule is applied to the whole table built by `priceintel.clean.cldr.currency_table`, adds only
spellings the table does not hold yet, never a spelling of a unit of measure (`unit_like`), and
records how many entries it added in `CurrencyTable.derived`. Derived symbols are counted with weight
0 (no locale writes them), so an attested spelling always ranks first in `currencies._order`.

1. `add_folded` (`fold_ascii`): the ASCII form of a Latin symbol, as typed on keyboards without its
   diacritics: NFKD with the combining marks dropped ("Kč" -> "Kc", "Lekë" -> "Leke"), and the
   Latin letters with stroke, which NFKD does not decompose, read as their base letter by their
   Unicode names ("LATIN SMALL LETTER L WITH STROKE" -> "l": "zł" -> "zl", "đ", "ø", "ħ").
   Symbols only (not the display names), forms of two characters or more, wholly ASCII ("đ" -> "d"
   would be a one-letter sign after every amount).
2. `add_plurals`: English plural of an abbreviation-like symbol (three or four Latin letters, not
   all capitals, not ending in "s"; the plurals of two-letter symbols read like words: "Les" of
   Sierra Leone's "Le", "Afs"): "Ksh" -> "Kshs", "TSh" -> "TShs"; read in any case like every
   symbol of two characters or more ("KShs"). The final full stop ("руб.") and the names' words and
   plural forms need no entry: `currencies._variants` and `CurrencyTable.add_names` already read them.
3. `add_country_prefixes`: a bare sign (`_bare`) several currencies share ("$", "£", "¥", "₩",
   "kr", "Rs") written after
   the first letter or the first two letters of the currency's ISO code or of a territory where it is
   legal tender ("E£" of EGP / EG, "J¥" of JPY / JP, "Nkr" of NOK / NO). A currency holds a shared
   sign when a locale writes it so, or writes it after that currency's code or territory prefix
   ("EG£" -> EGP holds "£"). A derived spelling several currencies share keeps all of them; the
   usual resolution picks one (code in the text, country, default).
4. `add_visual_order`: a right-to-left abbreviation of several dotted parts ("د.ع." of IQD, "ر.س." of
   SAR) with its parts in the opposite order ("ع.د"), as text copied from a page that stores
   Arabic or Hebrew in display (visual) order reads: the parts in left-to-right order on screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from priceintel.clean.cldr import CurrencyTable

_LATIN_LETTERS = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_STROKE_NAME = re.compile(r"LATIN (SMALL|CAPITAL) LETTER ([A-Z]) WITH STROKE")


@cache
def stroke_letters() -> dict[str, str]:
    """Latin letters with stroke (U+0080-U+024F) -> base letter, from their Unicode names ("ł" -> "l")."""
    out: dict[str, str] = {}
    for cp in range(0x80, 0x250):
        m = _STROKE_NAME.fullmatch(unicodedata.name(chr(cp), ""))
        if m:
            out[chr(cp)] = m.group(2).lower() if m.group(1) == "SMALL" else m.group(2)
    return out


def fold_ascii(text: str) -> str:
    """ASCII-folded form: NFKD without combining marks, letters with stroke as their base letter."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    strokes = stroke_letters()
    return "".join(strokes.get(c, c) for c in kept)


def _known(table: CurrencyTable, key: str) -> bool:
    return key in table.symbols or key.casefold() in table.folded or key.casefold() in table.names


def add_folded(table: CurrencyTable, unit_like: Callable[[str], bool]) -> int:
    """Rule 1: ASCII forms of every Latin symbol (weight 0); entries added.

    Names are not folded: folding the ~56,000 names of every locale would cost ~0.25 s of CPU per
    process for spellings ("zloty") that shops write with the symbol instead.
    """
    added = 0
    for key, codes in list(table.symbols.items()):
        ascii_form = fold_ascii(key)
        if ascii_form != key and len(ascii_form) > 1 and ascii_form.isascii() and _LATIN_LETTERS.search(key):
            if not _known(table, ascii_form) and not unit_like(ascii_form):
                for code in codes:
                    table.add_symbol(ascii_form, code, weight=0)
                added += 1
    return added


def add_plurals(table: CurrencyTable, unit_like: Callable[[str], bool]) -> int:
    """Rule 2: "Ksh" -> "Kshs" for abbreviation-like symbols (weight 0); entries added."""
    added = 0
    for key, codes in list(table.symbols.items()):
        if not 3 <= len(key) <= 4 or not key.isascii() or not key.isalpha() or key.isupper() or key[-1] in "sS":
            continue
        plural = key + "s"
        if not _known(table, plural) and not unit_like(plural):
            for code in codes:
                table.add_symbol(plural, code, weight=0)
            added += 1
    return added


def _bare(sign: str) -> bool:
    """Whether a sign is bare: no letter ("$", "£", "₩"), one non-ASCII letter ("ƒ", "원"), or a short
    word with at most a capital first letter ("kr", "Rs", "Br"). Not one ASCII letter ("L", "K", "R":
    "SL", "DK" would read like codes), a capitalised code ("SR", "FC") or a prefixed sign ("C$")."""
    if not any(c.isalpha() for c in sign):
        return True
    if len(sign) == 1:
        return not sign.isascii()
    word = sign.rstrip(".")
    return word.isalpha() and not any(c.isupper() for c in word[1:])


def _shared_signs(table: CurrencyTable) -> dict[str, set[str]]:
    """Bare signs written for two currencies legal tender today or more -> those currencies."""
    out: dict[str, set[str]] = {}
    for key, codes in table.symbols.items():
        current = {c for c in codes if c in table.current}
        if len(current) > 1 and _bare(key):
            out[key] = current
    return out


def _prefixes(code: str, territories: list[str]) -> set[str]:
    """First letter / two letters of an ISO code and of each territory code ("EGP", ["EG"] -> E, EG)."""
    return {p for word in (code, *territories) for p in (word[:1], word[:2])}


def add_country_prefixes(table: CurrencyTable, unit_like: Callable[[str], bool]) -> int:
    """Rule 3: country-letter prefixes of shared signs ("E£" -> EGP), weight 0; entries added."""
    shared = _shared_signs(table)
    holders: dict[str, set[str]] = {sign: set(codes) for sign, codes in shared.items()}
    prefixes = {code: _prefixes(code, table.territories.get(code, [])) for code in table.current}
    for key, written in table.symbols.items():  # "EG£": EGP writes "£" after its own prefix
        for sign in shared:
            if key.endswith(sign) and key != sign:
                head = key[: -len(sign)].strip()
                for code in written:
                    if code in table.current and head in prefixes[code] | {code}:
                        holders[sign].add(code)
    new: dict[str, set[str]] = {}
    for sign, holding in holders.items():
        for code in holding:
            for prefix in prefixes[code]:
                form = prefix + sign
                if not _known(table, form) and not unit_like(form):
                    new.setdefault(form, set()).add(code)
    for form, forms_codes in new.items():
        for code in sorted(forms_codes):
            table.add_symbol(form, code, weight=0)
    return len(new)


_RTL_LETTER = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_BIDI_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"))


def visual_order(symbol: str) -> str | None:
    """The dotted parts of a right-to-left abbreviation in the opposite order ("د.ع.‏" -> "ع.د"), None for a
    symbol of one part or not written in a right-to-left script (Hebrew, Arabic blocks)."""
    bare = symbol.translate(_BIDI_MARKS).strip().strip(".")
    parts = [p.strip() for p in bare.split(".")]
    if len(parts) < 2 or not all(parts) or not all(_RTL_LETTER.search(p) for p in parts):
        return None
    return ".".join(reversed(parts))


def add_visual_order(table: CurrencyTable, unit_like: Callable[[str], bool]) -> int:
    """Rule 4: right-to-left dotted abbreviations with their parts reversed (weight 0); entries added."""
    added = 0
    for key, codes in list(table.symbols.items()):
        reversed_form = visual_order(key)
        if reversed_form is None or _known(table, reversed_form) or unit_like(reversed_form):
            continue
        for code in codes:
            table.add_symbol(reversed_form, code, weight=0)
        added += 1
    return added


def add_derived(table: CurrencyTable, unit_like: Callable[[str], bool]) -> None:
    """Apply rules 1-4 in order (a folded symbol may take a plural / prefix) and record the counts."""
    table.derived["ascii_folding"] = add_folded(table, unit_like)
    table.derived["abbreviation_plurals"] = add_plurals(table, unit_like)
    table.derived["country_prefixes"] = add_country_prefixes(table, unit_like)
    table.derived["visual_order"] = add_visual_order(table, unit_like)
