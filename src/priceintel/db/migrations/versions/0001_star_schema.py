"""Star schema: dimensions, price/sales facts, run bookkeeping, analytic views.

Revision ID: 0001
Revises:
Create Date: 2026-07-01
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: views first (they depend on tables), then tables in reverse dependency order
_DROP = [
    "DROP VIEW IF EXISTS v_daily_price_stats",
    "DROP VIEW IF EXISTS v_price_vs_ours",
    "DROP VIEW IF EXISTS v_latest_price",
    "DROP TABLE IF EXISTS scrape_error",
    "DROP TABLE IF EXISTS fact_sales",
    "DROP TABLE IF EXISTS fact_price",
    "DROP TABLE IF EXISTS pipeline_run",
    "DROP TABLE IF EXISTS scrape_run",
    "DROP TABLE IF EXISTS product_match",
    "DROP TABLE IF EXISTS dim_listing",
    "DROP TABLE IF EXISTS dim_product",
    "DROP TABLE IF EXISTS dim_retailer",
    "DROP TABLE IF EXISTS dim_date",
]

_TABLES = """
CREATE TABLE dim_date (
    date_key   integer PRIMARY KEY,
    date       date NOT NULL UNIQUE,
    year       smallint NOT NULL,
    quarter    smallint NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    month      smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    day        smallint NOT NULL CHECK (day BETWEEN 1 AND 31),
    dow        smallint NOT NULL CHECK (dow BETWEEN 1 AND 7),
    iso_week   smallint NOT NULL CHECK (iso_week BETWEEN 1 AND 53),
    is_weekend boolean NOT NULL,
    CONSTRAINT dim_date_key_matches_date
        CHECK (date_key = year * 10000 + month * 100 + day)
);
COMMENT ON TABLE dim_date IS 'calendar; date_key = YYYYMMDD, dow is ISO (1 = Monday)';

CREATE TABLE dim_retailer (
    retailer_id serial PRIMARY KEY,
    retailer    text NOT NULL UNIQUE CHECK (retailer <> ''),
    name        text,
    base_url    text
);

CREATE TABLE dim_product (
    product_id serial PRIMARY KEY,
    sku        text NOT NULL UNIQUE CHECK (sku <> ''),
    name       text NOT NULL,
    brand      text,
    category   text,
    gtin       text,
    mpn        text,
    size       text,
    unit_cost  numeric(12,2) CHECK (unit_cost >= 0),
    map_price  numeric(12,2) CHECK (map_price >= 0),
    msrp       numeric(12,2) CHECK (msrp >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE dim_product IS 'our catalogue';

CREATE TABLE dim_listing (
    listing_id  serial PRIMARY KEY,
    retailer_id integer NOT NULL REFERENCES dim_retailer (retailer_id),
    item_id     text NOT NULL CHECK (item_id <> ''),
    url         text,
    title       text,
    brand       text,
    gtin        text,
    mpn         text,
    first_seen  date,
    last_seen   date,
    UNIQUE (retailer_id, item_id),
    CHECK (first_seen <= last_seen)
);
COMMENT ON TABLE dim_listing IS 'one retailer product page; item_id is the retailer''s own id';

CREATE TABLE product_match (
    listing_id integer PRIMARY KEY REFERENCES dim_listing (listing_id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES dim_product (product_id) ON DELETE CASCADE,
    method     text,
    score      real,
    status     text NOT NULL DEFAULT 'auto'
               CHECK (status IN ('auto', 'review', 'confirmed', 'rejected')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN product_match.status IS 'confirmed/rejected are human labels: loaders never overwrite them with auto/review';

CREATE TABLE scrape_run (
    scrape_run_id serial PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    retailer      text,
    pages         integer NOT NULL DEFAULT 0,
    offers        integer NOT NULL DEFAULT 0,
    errors        integer NOT NULL DEFAULT 0,
    error_summary jsonb,
    code_version  text
);

CREATE TABLE pipeline_run (
    run_id       serial PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'failed')),
    task         text NOT NULL,
    params       jsonb,
    counts       jsonb,
    errors       jsonb,
    code_version text
);

CREATE TABLE fact_price (
    listing_id    integer NOT NULL REFERENCES dim_listing (listing_id) ON DELETE CASCADE,
    date_key      integer NOT NULL REFERENCES dim_date (date_key),
    observed_at   timestamptz NOT NULL,
    price         numeric(12,2) CHECK (price >= 0),
    list_price    numeric(12,2) CHECK (list_price >= 0),
    currency      char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    in_stock      boolean,
    promo         boolean,
    scrape_run_id integer REFERENCES scrape_run (scrape_run_id) ON DELETE SET NULL,
    page_sha256   text,
    PRIMARY KEY (listing_id, date_key),
    CHECK (price IS NULL OR currency IS NOT NULL)
);
COMMENT ON TABLE fact_price IS 'one observation per listing per day; price NULL when the page shows none';

CREATE TABLE fact_sales (
    product_id integer NOT NULL REFERENCES dim_product (product_id) ON DELETE CASCADE,
    date_key   integer NOT NULL REFERENCES dim_date (date_key),
    units      integer NOT NULL CHECK (units >= 0),
    revenue    numeric(14,2),
    price      numeric(12,2) CHECK (price >= 0),
    promo      boolean,
    PRIMARY KEY (product_id, date_key)
);
COMMENT ON TABLE fact_sales IS 'our own daily sales and shelf price';

CREATE TABLE scrape_error (
    id            serial PRIMARY KEY,
    scrape_run_id integer REFERENCES scrape_run (scrape_run_id) ON DELETE CASCADE,
    url           text,
    retailer      text,
    kind          text NOT NULL,
    message       text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ix_fact_price_date_key ON fact_price (date_key);
CREATE INDEX ix_fact_sales_date_key ON fact_sales (date_key);
CREATE INDEX ix_dim_listing_retailer_id ON dim_listing (retailer_id);
CREATE INDEX ix_product_match_product_id ON product_match (product_id);
CREATE INDEX ix_scrape_error_scrape_run_id ON scrape_error (scrape_run_id);
"""

_VIEWS = """
CREATE VIEW v_latest_price AS
SELECT DISTINCT ON (fp.listing_id)
       fp.listing_id, r.retailer, l.item_id, l.url, l.title,
       p.sku, pm.status AS match_status,
       fp.date_key, d.date AS ds, fp.observed_at, fp.price, fp.list_price, fp.currency,
       fp.in_stock, fp.promo, fp.scrape_run_id
FROM fact_price fp
JOIN dim_listing l ON l.listing_id = fp.listing_id
JOIN dim_retailer r ON r.retailer_id = l.retailer_id
JOIN dim_date d ON d.date_key = fp.date_key
LEFT JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status IN ('auto', 'confirmed')
LEFT JOIN dim_product p ON p.product_id = pm.product_id
ORDER BY fp.listing_id, fp.date_key DESC, fp.observed_at DESC;
COMMENT ON VIEW v_latest_price IS 'latest observation per listing; sku when matched (auto or confirmed)';

CREATE VIEW v_price_vs_ours AS
SELECT fs.product_id, p.sku, fs.date_key, d.date AS ds, fs.price AS our_price,
       r.retailer, fp.listing_id, fp.price AS competitor_price, fp.in_stock, fp.promo,
       (fp.price / NULLIF(fs.price, 0))::double precision AS price_index
FROM fact_sales fs
JOIN dim_product p ON p.product_id = fs.product_id
JOIN dim_date d ON d.date_key = fs.date_key
JOIN product_match pm ON pm.product_id = fs.product_id AND pm.status IN ('auto', 'confirmed')
JOIN fact_price fp ON fp.listing_id = pm.listing_id AND fp.date_key = fs.date_key
JOIN dim_listing l ON l.listing_id = fp.listing_id
JOIN dim_retailer r ON r.retailer_id = l.retailer_id;
COMMENT ON VIEW v_price_vs_ours IS 'per product, day and competitor listing: price index = competitor / our price';

CREATE VIEW v_daily_price_stats AS
SELECT pm.product_id, p.sku, fp.date_key, d.date AS ds,
       min(fp.price) AS min_price,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY fp.price))::numeric(12,2) AS median_price,
       max(fp.price) AS max_price,
       count(DISTINCT l.retailer_id) AS n_retailers,
       count(*) AS n_listings
FROM fact_price fp
JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status IN ('auto', 'confirmed')
JOIN dim_product p ON p.product_id = pm.product_id
JOIN dim_listing l ON l.listing_id = fp.listing_id
JOIN dim_date d ON d.date_key = fp.date_key
WHERE fp.price IS NOT NULL
GROUP BY pm.product_id, p.sku, fp.date_key, d.date;
COMMENT ON VIEW v_daily_price_stats IS 'per product and day: min/median/max competitor price over priced observations';
"""


def upgrade() -> None:
    """Create tables, indexes and views."""
    op.execute(_TABLES)
    op.execute(_VIEWS)


def downgrade() -> None:
    """Drop views and tables."""
    for statement in _DROP:
        op.execute(statement)
