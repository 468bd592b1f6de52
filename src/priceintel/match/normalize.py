"""Text normalisation for matching: titles, sizes and model numbers read the same way on every side.

`normalize_title` lower-cases and strips entities, accents and punctuation and unifies units
("12oz" → "12 oz", "6-pack" → "6 ct"); `extract_size` reads the first size in g / ml / cm / ct;
`extract_model_numbers` lists model-number-like tokens.
"""

from __future__ import annotations

import html
import re
import unicodedata

import numpy as np

_UNIT_CANON = {
    "fl oz": "fl oz",
    "floz": "fl oz",
    "fluid ounce": "fl oz",
    "fluid ounces": "fl oz",
    "fl ounce": "fl oz",
    "fl ounces": "fl oz",
    "oz": "oz",
    "ounce": "oz",
    "ounces": "oz",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "g": "g",
    "gr": "g",
    "gram": "g",
    "grams": "g",
    "kg": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "mg": "mg",
    "ml": "ml",
    "milliliter": "ml",
    "milliliters": "ml",
    "millilitre": "ml",
    "millilitres": "ml",
    "l": "l",
    "liter": "l",
    "liters": "l",
    "litre": "l",
    "litres": "l",
    "ltr": "l",
    "gal": "gal",
    "gallon": "gal",
    "gallons": "gal",
    "qt": "qt",
    "quart": "qt",
    "quarts": "qt",
    "ct": "ct",
    "count": "ct",
    "cnt": "ct",
    "pk": "ct",
    "pack": "ct",
    "pcs": "ct",
    "pieces": "ct",
    "ft": "ft",
    "feet": "ft",
    "foot": "ft",
    "inch": "inch",
    "inches": "inch",
    "cm": "cm",
    "mm": "mm",
}
_UNIT_ALT = "|".join(sorted((re.escape(u).replace(r"\ ", r"\.?\s*") for u in _UNIT_CANON), key=len, reverse=True))
_NUM_UNIT_RE = re.compile(rf"(\d+(?:\.\d+)?)\s*-?\s*({_UNIT_ALT})\.?(?![a-z])")
_PACK_OF_RE = re.compile(r"\b(?:pack|case|box|set) of (\d+)\b")
_FL_RE = re.compile(r"(?<![a-z])fl\.?\s*oz\b|(?<![a-z])fluid\s+ounces?\b|(?<![a-z])floz\b")
_SYMBOLS_RE = re.compile(r"[™®©℠]")
_PUNCT_RE = re.compile(r"(?<!\d)\.|\.(?!\d)|[^a-z0-9.\s]")

#: unit → (canonical unit, factor): mass in g, volume in ml, length in cm, counts in ct
_CONVERT = {
    "oz": ("g", 28.349523125),
    "lb": ("g", 453.59237),
    "g": ("g", 1.0),
    "kg": ("g", 1000.0),
    "mg": ("g", 0.001),
    "fl oz": ("ml", 29.5735295625),
    "ml": ("ml", 1.0),
    "l": ("ml", 1000.0),
    "gal": ("ml", 3785.411784),
    "qt": ("ml", 946.352946),
    "ct": ("ct", 1.0),
    "ft": ("cm", 30.48),
    "inch": ("cm", 2.54),
    "cm": ("cm", 1.0),
    "mm": ("cm", 0.1),
}


def _unit_sub(m: re.Match) -> str:
    """'12oz' / '12 Ounce' / '6-pack' → '12 oz' / '6 ct'."""
    unit = re.sub(r"[\s.]+", " ", m.group(2)).strip()
    unit = _UNIT_CANON.get(unit, _UNIT_CANON.get(unit.replace(" ", ""), unit))
    return f" {m.group(1)} {unit} "


def normalize_title(s: object) -> str:
    """Lowercase, entity/accents/punctuation stripped, units unified ("12oz" → "12 oz", "6-pack" → "6 ct")."""
    if s is None or (isinstance(s, float) and not np.isfinite(s)):
        return ""
    t = _SYMBOLS_RE.sub(" ", html.unescape(html.unescape(str(s))))
    t = unicodedata.normalize("NFKD", t)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).lower()
    t = t.replace("&", " and ").replace("×", " x ")
    t = _FL_RE.sub(" fl oz ", t)
    t = _PACK_OF_RE.sub(r" \1 ct ", t)
    t = _NUM_UNIT_RE.sub(_unit_sub, t)
    t = _PUNCT_RE.sub(" ", t)
    return " ".join(t.split())  # = re.sub(r"\s+", " ", t).strip(): one whitespace set


_SIZE_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) (fl oz|oz|lb|kg|mg|g|ml|l|gal|qt|ct|ft|inch|cm|mm)(?![a-z])")


def extract_size(s: object) -> tuple[float, str] | None:
    """First size in a title as (value, unit) in g / ml / cm / ct; a measure beats a count."""
    found = _SIZE_RE.findall(normalize_title(s))
    if not found:
        return None
    measures = [(v, u) for v, u in found if _CONVERT[u][0] != "ct"]
    v, u = (measures or found)[0]
    unit, factor = _CONVERT[u]
    return round(float(v) * factor, 4), unit


_MODEL_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*(?![A-Za-z0-9])")
_SIZE_TOKEN_RE = re.compile(rf"^\d+(?:\.\d+)?(?:{_UNIT_ALT})$", re.I)


def extract_model_numbers(s: object) -> list[str]:
    """Model-number-like tokens (letters and digits, ≥ 4 chars, not a size), upper-cased, no dashes."""
    if s is None or (isinstance(s, float) and not np.isfinite(s)):
        return []
    text = html.unescape(str(s))
    out: list[str] = []
    for tok in _MODEL_RE.findall(text):
        flat = re.sub(r"[-/]", "", tok).upper()
        if (
            len(flat) >= 4
            and re.search(r"\d", flat)
            and re.search(r"[A-Z]", flat)
            and not _SIZE_TOKEN_RE.match(tok.replace("-", ""))
            and flat not in out
        ):
            out.append(flat)
    return out
