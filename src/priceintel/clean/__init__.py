"""Clean extracted offers into the long observation frame: prices, currencies, stock, dedup.

- `priceintel.clean.currencies`: currency tables, `normalise_currency`, `currency_in_context`;
- `priceintel.clean.prices`: `parse_price` -> `ParsedPrice`, `format_amount`;
- `priceintel.clean.observations`: `offers_to_observations`, `listings_from_observations`, `methods_to_json`.

The names below are re-exported so `from priceintel import clean` + `clean.<name>` reads the whole stage.
"""

from priceintel.clean.currencies import (
    AMBIGUOUS_SIGNS,
    COMPOUND_CURRENCIES,
    CURRENCY_SYMBOLS,
    EXTRA_CURRENCIES,
    ISO_CURRENCIES,
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
    "COMPOUND_CURRENCIES",
    "CURRENCY_SYMBOLS",
    "ERROR_COLUMNS",
    "EXTRA_CURRENCIES",
    "ISO_CURRENCIES",
    "CleanError",
    "ParsedPrice",
    "currency_in_context",
    "format_amount",
    "listings_from_observations",
    "methods_to_json",
    "normalise_currency",
    "offers_to_observations",
    "parse_price",
]
