"""Errors of the database layer: each message names the problem and where it happened."""

from __future__ import annotations

from priceintel import PriceIntelError


class DatabaseError(PriceIntelError):
    """PostgreSQL is unreachable, misconfigured or failed (message names the server or step)."""


class LoadError(PriceIntelError):
    """A frame cannot be loaded: the message names the table, column, count and first bad rows."""


class QueryError(PriceIntelError):
    """A query asked for something that is not in the database (e.g. an unknown sku)."""
