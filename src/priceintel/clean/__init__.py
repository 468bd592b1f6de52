"""Clean extracted offers into the long observation frame: prices, currencies, stock, dedup.

- `priceintel.clean.cldr`: every currency spelling (symbols, codes, names) and unit of CLDR, via Babel;
- `priceintel.clean.cldr_derived`: spellings derived from that table by general rules ("zl", "KShs", "E£");
- `priceintel.clean.currencies`: `currency_candidates`, `normalise_currency`, `currency_in_context`;
- `priceintel.clean.prices`: `parse_price` -> `ParsedPrice`, `format_amount`;
- `priceintel.clean.observations`: `offers_to_observations`, `listings_from_observations`, `methods_to_json`.

The names below are re-exported so `from priceintel import clean` + `clean.<name>` reads the whole stage.
"""

from priceintel.clean.currencies import (
    AMBIGUOUS_SIGNS,
    ISO_CURRENCIES,
    currency_candidates,
    currency_in_context,
    normalise_currency,
)
from priceintel.clean.observations import (
    ERROR_COLUMNS,
    CleanError,
    listings_from_observations,
    methods_to_json,
    offers_to_observations,
)
from priceintel.clean.prices import ParsedPrice, format_amount, parse_price

__all__ = [
    "AMBIGUOUS_SIGNS",
    "ERROR_COLUMNS",
    "ISO_CURRENCIES",
    "CleanError",
    "ParsedPrice",
    "currency_candidates",
    "currency_in_context",
    "format_amount",
    "listings_from_observations",
    "methods_to_json",
    "normalise_currency",
    "offers_to_observations",
    "parse_price",
]
