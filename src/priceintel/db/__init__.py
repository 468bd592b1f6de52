"""PostgreSQL system of record: embedded server, engines, Alembic migrations, loaders, queries."""

from priceintel.db.engine import (
    check_connection,
    create_database,
    drop_database,
    get_engine,
    get_url,
    normalize_url,
    redact_url,
)
from priceintel.db.errors import DatabaseError, LoadError, QueryError
from priceintel.db.load import (
    ensure_dates,
    finish_run,
    load_matches,
    load_prices,
    load_sales,
    record_errors,
    record_scrape_run,
    start_run,
    upsert_listings,
    upsert_products,
    upsert_retailers,
)
from priceintel.db.migrate import current, downgrade, upgrade
from priceintel.db.queries import (
    daily_price_stats,
    latest_prices,
    list_products,
    price_history,
    price_vs_ours,
    table_counts,
)
from priceintel.db.server import start_embedded, status, stop_embedded

__all__ = [
    "DatabaseError",
    "LoadError",
    "QueryError",
    "start_embedded",
    "stop_embedded",
    "status",
    "get_url",
    "get_engine",
    "check_connection",
    "normalize_url",
    "redact_url",
    "create_database",
    "drop_database",
    "upgrade",
    "downgrade",
    "current",
    "ensure_dates",
    "upsert_retailers",
    "upsert_products",
    "upsert_listings",
    "load_matches",
    "load_prices",
    "load_sales",
    "start_run",
    "finish_run",
    "record_scrape_run",
    "record_errors",
    "list_products",
    "price_history",
    "latest_prices",
    "price_vs_ours",
    "daily_price_stats",
    "table_counts",
]
