"""Our own data: import runs (lineage of every imported file), the competitor watch list and its fetches, and the
own-price / availability / url columns of dim_product that a retailer's catalogue brings.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_UP = """
CREATE TABLE import_run (
    import_run_id  serial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('catalog', 'sales', 'watch')),
    path           text NOT NULL,
    sha256         text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'partial', 'failed')),
    strict         boolean NOT NULL DEFAULT false,
    rows_total     integer,
    rows_inserted  integer,
    rows_updated   integer,
    rows_unchanged integer,
    rows_rejected  integer,
    rejects_path   text,
    message        text,
    code_version   text
);
COMMENT ON TABLE import_run IS 'one import of a file of our own data (catalog, sales, watch list): sha256, counts, outcome';
COMMENT ON COLUMN import_run.rejects_path IS 'CSV of the rejected rows (row, column, value, reason), beside the input';

CREATE TABLE watch (
    watch_id      serial PRIMARY KEY,
    retailer      text NOT NULL CHECK (retailer <> ''),
    url           text NOT NULL UNIQUE CHECK (url ~ '^https?://'),
    sku           text,
    active        boolean NOT NULL DEFAULT true,
    status        text NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'ok', 'failing', 'blocked', 'moved', 'gone')),
    status_reason text,
    status_since  timestamptz,
    import_run_id integer REFERENCES import_run (import_run_id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE watch IS 'competitor product pages we watch; sku = our product it is compared with (optional)';
COMMENT ON COLUMN watch.active IS 'false once removed (watch remove); the history stays until purged';
CREATE INDEX ix_watch_sku ON watch (sku);

CREATE TABLE watch_fetch (
    watch_id      integer NOT NULL REFERENCES watch (watch_id) ON DELETE CASCADE,
    fetched_at    timestamptz NOT NULL,
    date_key      integer NOT NULL,
    http_status   integer,
    final_url     text,
    outcome       text NOT NULL
                  CHECK (outcome IN ('ok', 'no_price', 'not_found', 'redirected', 'blocked', 'error')),
    price         numeric(12,2),
    currency      char(3),
    page_sha256   text,
    scrape_run_id integer REFERENCES scrape_run (scrape_run_id) ON DELETE SET NULL,
    message       text,
    PRIMARY KEY (watch_id, fetched_at)
);
COMMENT ON TABLE watch_fetch IS 'every fetch of a watched page: outcome, price found, page hash';

ALTER TABLE dim_product
    ADD COLUMN own_price     numeric(12,2) CHECK (own_price >= 0),
    ADD COLUMN currency      char(3),
    ADD COLUMN availability  text,
    ADD COLUMN url           text,
    ADD COLUMN import_run_id integer REFERENCES import_run (import_run_id) ON DELETE SET NULL;
COMMENT ON COLUMN dim_product.own_price IS 'our current selling price (sale price when the feed has one), in currency';
COMMENT ON COLUMN dim_product.import_run_id IS 'the catalog import that last changed this row';
"""

_DOWN = [
    "ALTER TABLE dim_product DROP COLUMN IF EXISTS import_run_id, DROP COLUMN IF EXISTS url, "
    "DROP COLUMN IF EXISTS availability, DROP COLUMN IF EXISTS currency, DROP COLUMN IF EXISTS own_price",
    "DROP TABLE IF EXISTS watch_fetch",
    "DROP TABLE IF EXISTS watch",
    "DROP TABLE IF EXISTS import_run",
]


def upgrade() -> None:
    """Create import_run, watch, watch_fetch; add own-data columns to dim_product."""
    op.execute(_UP)


def downgrade() -> None:
    """Drop the own-data columns and tables."""
    for statement in _DOWN:
        op.execute(statement)
