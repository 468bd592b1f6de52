"""fact_price partitioned by month; the apps' price rollups maintained incrementally after each load.

**Partitions.** `fact_price` becomes a table partitioned by RANGE of `date_key` (YYYYMMDD), one partition per
calendar month (`fact_price_2026_07` holds 20260701 ≤ date_key < 20260801) and a DEFAULT partition for rows
outside them. Same columns, keys, checks and row-level security as before; the primary key (listing_id,
date_key) is a b-tree on every partition and `date_key` gets a BRIN index (the rows of a month arrive in day
order, so a few hundred bytes summarise a partition). `priceintel_price_partitions(lo, hi)` makes the missing
months from lo to hi (within 1990 to a year ahead; rows beyond stay in the DEFAULT partition): the loader calls
it for the months of the days it stages, and the load stage for this month and the next two in a short
transaction of its own (making a partition locks fact_price), so the partitions exist before the rows come;
rows that reached the DEFAULT partition (raw SQL, a restore) move into their month when it is made. Each partition has row-level security and the `tenant_isolation` policy of its own, because a
role that reads a partition directly does not pass the parent's policy. The function runs as the owner
(SECURITY DEFINER with a fixed search_path): the pipeline's worker role and the apps' role load prices but own
no table.

No foreign keys: each cost a lookup per inserted row (the key to `dim_listing` alone doubled the time of a
bulk insert). The loader checks, once per load and set-based, that every staged listing exists, makes the days
(`ensure_dates`) and checks the scrape or import run. Removing a listing still removes its prices: a
statement-level trigger on `dim_listing` deletes them (what ON DELETE CASCADE did, one statement per delete).

**Incremental app rollups.** The materialized views `mv_app_prices_all`, `mv_app_prices_daily_all` and
`mv_app_listing_span_all` (0007, 0014) could only be recomputed whole: 82 s after one day's load at
5,000 × 3 × 365. They become tables, `app_prices_all`, `app_prices_daily_all` and `app_listing_span_all`,
maintained by `db.views.refresh` from `app_pending`, the (listing, day) pairs whose app rows may have changed
(day NULL: every day of the listing; listing NULL: every listing that day; both NULL: everything). A statement
that writes more than 5,000 prices or sales (a bulk load) queues its days rather than each row. Statement-level triggers with transition
tables fill it, so every writer is covered, whatever its path (loads, the API's imports, the review app's
match decisions, cascading deletes): fact_price (the rows written, an update's old keys too), fact_sales (the
matched listings of the product, that day), product_match (the listing, every day), dim_product / dim_listing /
dim_retailer (when a column the rollups show changes), dim_date (a new day) and TRUNCATE (everything). Direct
writes to a partition bypass the parent's triggers (only the owner may make them): `priceintel db refresh
--full` then. A load that changes nothing writes no row, fires
with empty transition tables and leaves nothing to do.

Their definitions are the views `app_prices_source`, `app_prices_daily_source` and `app_listing_span_source`
(security_invoker: read as the app role they would show its own tenant only; the app role may not read them
anyway). The reader-facing per-tenant views keep their names (`mv_app_prices`, `mv_app_prices_daily`,
`mv_app_listing_span`), so no reader changes; being tables, the rollups have row-level security and the
`tenant_isolation` policy, so those views need no security barrier: the planner flattens them, and a page
(`ORDER BY … LIMIT`) reads the keyset index instead of sorting every row of the tenant. `mv_app_forecasts_all` (a materialized view: the latest run's
forecasts) now reads `app_listing_span_all`. `v_latest_price`, `v_daily_price_stats` and `v_price_vs_ours` are
made again over the new table with their definitions, options and comments unchanged.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: plain views over fact_price, made again with the same definition after the table is replaced
_PLAIN_VIEWS = ("v_latest_price", "v_daily_price_stats", "v_price_vs_ours")
#: the tenant of the row, as every tenant-owned table's policy checks it (0014)
_POLICY = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {t}
    USING (tenant_id = (SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()));
"""

_TABLE = """
CREATE TABLE fact_price (
    listing_id        integer NOT NULL,
    date_key          integer NOT NULL,
    observed_at       timestamptz NOT NULL,
    price             numeric(12,2) CHECK (price >= 0),
    list_price        numeric(12,2) CHECK (list_price >= 0),
    currency          char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    in_stock          boolean,
    promo             boolean,
    scrape_run_id     integer,
    page_sha256       text,
    tenant_id         integer NOT NULL DEFAULT priceintel_tenant(),
    extraction_method text,
    import_run_id     integer,
    PRIMARY KEY (listing_id, date_key),
    CHECK (price IS NULL OR currency IS NOT NULL),
    CHECK (date_key BETWEEN 19000101 AND 29991231)
) PARTITION BY RANGE (date_key);
COMMENT ON TABLE fact_price IS
    'one observation per listing per day; price NULL when the page shows none; partitioned by month of date_key';
COMMENT ON COLUMN fact_price.page_sha256 IS 'sha256 of the raw page the price was read from (the raw archive''s key)';
COMMENT ON COLUMN fact_price.extraction_method IS
    'how the price was read: the extractor''s method (jsonld, json:<path>, css:<selector>, microdata, '
    'heuristic:<rule>, …) or import; NULL: loaded before lineage was kept';
COMMENT ON COLUMN fact_price.import_run_id IS
    'the import_run of a price imported from a file (no foreign key: bulk loads check it once per load)';
COMMENT ON COLUMN fact_price.scrape_run_id IS
    'the scrape_run of a scraped price (no foreign key: the loader checks the run once per load)';
CREATE TABLE fact_price_default PARTITION OF fact_price DEFAULT;
CREATE INDEX ix_fact_price_date_key_brin ON fact_price USING brin (date_key);
"""

_PARTITIONS = """
CREATE FUNCTION priceintel_price_partitions(lo date, hi date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    m     date;
    part  text;
    a     integer;
    b     integer;
    made  integer := 0;
BEGIN
    IF lo IS NULL OR hi IS NULL OR hi < lo THEN
        RETURN 0;
    END IF;
    -- months from 1990 to a year ahead (beyond, rows stay in the default partition): a caller cannot make
    -- thousands of tables
    lo := GREATEST(lo, date '1990-01-01');
    hi := LEAST(hi, (current_date + interval '1 year')::date);
    m := date_trunc('month', lo)::date;
    WHILE m <= hi LOOP
        part := 'fact_price_' || to_char(m, 'YYYY_MM');
        IF to_regclass('public.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(7365120102);  -- one maker at a time; then look again
            IF to_regclass('public.' || part) IS NULL THEN
                a := to_char(m, 'YYYYMMDD')::integer;
                b := to_char(m + interval '1 month', 'YYYYMMDD')::integer;
                IF EXISTS (SELECT 1 FROM fact_price_default WHERE date_key >= a AND date_key < b) THEN
                    -- rows that came before their month: move them in (the same rows: no app change)
                    EXECUTE format('CREATE TABLE public.%I (LIKE public.fact_price INCLUDING DEFAULTS '
                                   'INCLUDING CONSTRAINTS)', part);
                    EXECUTE format('INSERT INTO public.%I SELECT * FROM public.fact_price_default '
                                   'WHERE date_key >= %s AND date_key < %s', part, a, b);
                    DELETE FROM fact_price_default WHERE date_key >= a AND date_key < b;
                    EXECUTE format('ALTER TABLE public.fact_price ATTACH PARTITION public.%I '
                                   'FOR VALUES FROM (%s) TO (%s)', part, a, b);
                ELSE
                    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.fact_price '
                                   'FOR VALUES FROM (%s) TO (%s)', part, a, b);
                END IF;
                EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part);
                EXECUTE format('CREATE POLICY tenant_isolation ON public.%I USING (tenant_id = '
                               '(SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()))',
                               part);
                made := made + 1;
            END IF;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;
REVOKE EXECUTE ON FUNCTION priceintel_price_partitions(date, date) FROM PUBLIC;  -- db.roles grants it
COMMENT ON FUNCTION priceintel_price_partitions(date, date) IS
    'make the missing monthly partitions of fact_price from lo to hi, within 1990 to a year ahead (rows waiting '
    'in the default move in); returns how many it made';
"""

_PENDING = """
CREATE TABLE app_pending (
    listing_id integer,
    date_key   integer,
    queued_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE app_pending IS
    'app rollup rows to recompute (db.views.refresh): a listing''s day; date_key NULL: every day of the listing; '
    'listing_id NULL: every listing that day; both NULL: everything. Filled by triggers, emptied by the refresh';

CREATE FUNCTION priceintel_pending_prices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 5000 THEN  -- a bulk load: queue its days (every listing of each)
        INSERT INTO app_pending (date_key) SELECT DISTINCT date_key FROM changed;
    ELSE
        INSERT INTO app_pending (listing_id, date_key) SELECT DISTINCT listing_id, date_key FROM changed;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_delete_listing_prices() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM fact_price f USING gone g WHERE f.listing_id = g.listing_id;
    RETURN NULL;
END $$;
CREATE TRIGGER delete_prices AFTER DELETE ON dim_listing REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION priceintel_delete_listing_prices();

CREATE FUNCTION priceintel_pending_sales() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 5000 THEN
        INSERT INTO app_pending (date_key) SELECT DISTINCT date_key FROM changed;
    ELSE
        INSERT INTO app_pending (listing_id, date_key)
        SELECT DISTINCT pm.listing_id, c.date_key FROM changed c JOIN product_match pm ON pm.product_id = c.product_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_pending_listings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (listing_id) SELECT DISTINCT listing_id FROM changed;
    RETURN NULL;
END $$;

-- row triggers that run only when a column the rollups show changes (WHEN, checked in C for every row): the
-- loads' updates of first/last seen days and of unchanged rows cost nothing
CREATE FUNCTION priceintel_pending_products() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (listing_id) SELECT listing_id FROM product_match WHERE product_id = NEW.product_id;
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_pending_listing_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (listing_id) VALUES (NEW.listing_id);
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_pending_retailers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (listing_id) SELECT listing_id FROM dim_listing WHERE retailer_id = NEW.retailer_id;
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_pending_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (date_key) SELECT date_key FROM changed;  -- a new day: its prices join it now
    RETURN NULL;
END $$;

CREATE FUNCTION priceintel_pending_all() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO app_pending (listing_id, date_key) VALUES (NULL, NULL);
    RETURN NULL;
END $$;
"""


def _triggers() -> str:
    """The statement-level triggers that fill app_pending (one per table and event: transition tables)."""
    out = []
    # an UPDATE queues the rows' new keys and their old ones (an update may move a row to another listing or day)
    for table, fn in (("fact_price", "prices"), ("fact_sales", "sales"), ("product_match", "listings")):
        for name, event, rows in (("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"),
                                  ("update_old", "UPDATE", "OLD"), ("delete", "DELETE", "OLD")):  # fmt: skip
            out.append(
                f"CREATE TRIGGER app_pending_{name} AFTER {event} ON {table} "
                f"REFERENCING {rows} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION priceintel_pending_{fn}();"
            )
    out.append(
        "CREATE TRIGGER app_pending_insert AFTER INSERT ON dim_date REFERENCING NEW TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION priceintel_pending_days();"
    )
    for table, fn, columns in (("dim_product", "products", "sku, name, brand, category"),
                               ("dim_listing", "listing_keys", "item_id, retailer_id"),
                               ("dim_retailer", "retailers", "retailer")):  # fmt: skip
        old = ", ".join(f"OLD.{c}" for c in columns.split(", "))
        new = ", ".join(f"NEW.{c}" for c in columns.split(", "))
        same = f"{old} IS DISTINCT FROM {new}" if "," not in columns else f"ROW({old}) IS DISTINCT FROM ROW({new})"
        out.append(
            f"CREATE TRIGGER app_pending_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({same}) EXECUTE FUNCTION priceintel_pending_{fn}();"
        )
    for table in ("fact_price", "fact_sales", "product_match", "dim_product", "dim_listing", "dim_retailer"):
        out.append(
            f"CREATE TRIGGER app_pending_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION priceintel_pending_all();"
        )
    return "\n".join(out)


_SOURCES = """
CREATE VIEW app_prices_source WITH (security_invoker = true) AS
SELECT fp.tenant_id, fp.listing_id, fp.date_key, -fp.date_key AS neg_day, d.date AS ds,
       r.retailer, l.item_id, p.product_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category,
       fp.price::float8 AS price, fp.currency::text AS currency, fp.in_stock, fp.promo,
       fs.price::float8 AS our_price,
       CASE WHEN fs.price > 0 AND fp.price IS NOT NULL
            THEN round((fp.price / fs.price - 1) * 100, 2)::float8 END AS gap_pct
FROM fact_price fp
JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status IN ('auto', 'confirmed')
     AND pm.tenant_id = fp.tenant_id
JOIN dim_product p ON p.product_id = pm.product_id AND p.tenant_id = fp.tenant_id
JOIN dim_listing l ON l.listing_id = fp.listing_id AND l.tenant_id = fp.tenant_id
JOIN dim_retailer r ON r.retailer_id = l.retailer_id AND r.tenant_id = fp.tenant_id
JOIN dim_date d ON d.date_key = fp.date_key
LEFT JOIN fact_sales fs ON fs.product_id = pm.product_id AND fs.date_key = fp.date_key AND fs.tenant_id = fp.tenant_id;
COMMENT ON VIEW app_prices_source IS 'what app_prices_all holds: one row per matched listing and day (db.views)';

CREATE TABLE app_prices_all AS SELECT * FROM app_prices_source WITH NO DATA;
-- byte order (code point order in UTF-8): the wide keyset indexes compare with memcmp, not the locale
ALTER TABLE app_prices_all ALTER retailer TYPE text COLLATE "C", ALTER item_id TYPE text COLLATE "C",
    ALTER sku TYPE text COLLATE "C", ALTER category TYPE text COLLATE "C";
ALTER TABLE app_prices_all ADD PRIMARY KEY (listing_id, date_key);
CREATE INDEX ix_app_prices_order ON app_prices_all (tenant_id, neg_day, sku, retailer, listing_id);
CREATE INDEX ix_app_prices_sku ON app_prices_all (tenant_id, sku, neg_day, retailer, listing_id);
CREATE INDEX ix_app_prices_category ON app_prices_all (tenant_id, category, neg_day, sku, retailer, listing_id);
CREATE INDEX ix_app_prices_day ON app_prices_all (date_key);  -- the refresh finds a queued day's rows
COMMENT ON TABLE app_prices_all IS
    'prices view, every tenant: one row per matched listing and day with our price and the gap; kept by '
    'db.views.refresh from app_pending (read through mv_app_prices)';

CREATE VIEW app_prices_daily_source WITH (security_invoker = true) AS
SELECT tenant_id, date_key, ds, retailer, category,
       count(*) AS n_rows, count(price) AS n_priced, sum(price) AS price_sum,
       count(gap_pct) AS n_gap, sum(gap_pct) AS gap_sum,
       count(*) FILTER (WHERE in_stock) AS n_in_stock, count(*) FILTER (WHERE promo) AS n_promo,
       count(our_price) AS n_ours, sum(our_price) AS ours_sum
FROM app_prices_all
GROUP BY tenant_id, date_key, ds, retailer, category;
COMMENT ON VIEW app_prices_daily_source IS 'what app_prices_daily_all holds (db.views)';
CREATE TABLE app_prices_daily_all AS SELECT * FROM app_prices_daily_source WITH NO DATA;
ALTER TABLE app_prices_daily_all ADD PRIMARY KEY (tenant_id, date_key, retailer, category);
COMMENT ON TABLE app_prices_daily_all IS
    'prices view aggregated per day, retailer and category, every tenant; kept by db.views.refresh';

CREATE VIEW app_listing_span_source WITH (security_invoker = true) AS
SELECT tenant_id, listing_id, product_id, sku, retailer, category,
       min(ds) AS first_ds, max(ds) AS last_ds, count(*) AS n_days,
       max(ds) FILTER (WHERE price IS NOT NULL) AS last_priced_ds,
       max(date_key) FILTER (WHERE price IS NOT NULL) AS last_priced_key
FROM app_prices_all
GROUP BY tenant_id, listing_id, product_id, sku, retailer, category;
COMMENT ON VIEW app_listing_span_source IS 'what app_listing_span_all holds (db.views)';
CREATE TABLE app_listing_span_all AS SELECT * FROM app_listing_span_source WITH NO DATA;
ALTER TABLE app_listing_span_all ADD PRIMARY KEY (listing_id);
CREATE INDEX ix_app_listing_span_sku ON app_listing_span_all (tenant_id, sku);
COMMENT ON TABLE app_listing_span_all IS
    'per matched listing, every tenant: first and last observed day, last day with a price; kept by db.views.refresh';

CREATE MATERIALIZED VIEW mv_app_forecasts_all AS
WITH latest AS (SELECT tenant_id, max(run_id) AS run_id FROM forecast_run GROUP BY tenant_id)
SELECT fv.tenant_id, fv.run_id, fv.unique_id, fv.ds, r.retailer, l.listing_id, l.item_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category, fs.chosen_model, fs.p_change,
       fv.yhat, fv."lo-80", fv."hi-80", fv."lo-95", fv."hi-95",
       sp.last_priced_ds AS last_ds, lp.price::float8 AS last_price,
       CASE WHEN lp.price > 0 THEN round(((fv.yhat / lp.price::float8 - 1) * 100)::numeric, 2)::float8 END
           AS change_pct
FROM latest
JOIN forecast_value fv ON fv.run_id = latest.run_id AND fv.model = 'chosen'
JOIN forecast_series fs ON fs.run_id = fv.run_id AND fs.unique_id = fv.unique_id AND fs.tenant_id = fv.tenant_id
JOIN dim_retailer r ON r.retailer = split_part(fv.unique_id, ':', 1) AND r.tenant_id = fv.tenant_id
JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = substr(fv.unique_id, length(r.retailer) + 2)
    AND l.tenant_id = fv.tenant_id
JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status IN ('auto', 'confirmed')
    AND pm.tenant_id = fv.tenant_id
JOIN dim_product p ON p.product_id = pm.product_id AND p.tenant_id = fv.tenant_id
LEFT JOIN app_listing_span_all sp ON sp.listing_id = l.listing_id AND sp.tenant_id = fv.tenant_id
LEFT JOIN fact_price lp ON lp.listing_id = l.listing_id AND lp.date_key = sp.last_priced_key
    AND lp.tenant_id = fv.tenant_id;
CREATE UNIQUE INDEX ux_mv_app_forecasts ON mv_app_forecasts_all (tenant_id, unique_id, ds);
CREATE INDEX ix_mv_app_forecasts_order ON mv_app_forecasts_all (tenant_id, sku, retailer, unique_id, ds);
"""

#: reader-facing per-tenant view -> the relation holding every tenant's rows
_READERS = {
    "mv_app_prices": "app_prices_all",
    "mv_app_prices_daily": "app_prices_daily_all",
    "mv_app_listing_span": "app_listing_span_all",
    "mv_app_forecasts": "mv_app_forecasts_all",
}
#: over a materialized view (no row-level security): a security barrier keeps a caller's functions from seeing
#: another tenant's rows before the filter
_READER = """
CREATE VIEW {name} WITH (security_barrier = true) AS
SELECT * FROM {held} WHERE tenant_id = (SELECT priceintel_tenant());
COMMENT ON VIEW {name} IS 'the current tenant''s rows of {held}';
"""
#: over a rollup table: the table's own policy guards it, so the view is a plain one the planner flattens (a
#: barrier view is planned apart from the query: its ORDER BY … LIMIT could not use the keyset indexes)
_TABLE_READER = """
CREATE VIEW {name} WITH (security_invoker = true) AS
SELECT * FROM {held} WHERE tenant_id = (SELECT priceintel_tenant());
COMMENT ON VIEW {name} IS 'the current tenant''s rows of {held} (its row-level security applies to the caller)';
"""


def _plain_views() -> list[tuple[str, str, list[str], str | None]]:
    """(name, definition, options, comment) of each plain view over fact_price, as stored."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            """SELECT c.relname, pg_get_viewdef(c.oid), COALESCE(c.reloptions, '{}'), obj_description(c.oid)
               FROM pg_class c WHERE c.relname = ANY(:names) AND c.relnamespace = 'public'::regnamespace"""
        ),
        {"names": list(_PLAIN_VIEWS)},
    ).all()
    return [(r[0], r[1], list(r[2]), r[3]) for r in rows]


def _make_plain_views(views: list[tuple[str, str, list[str], str | None]]) -> None:
    for name, definition, options, comment in views:
        with_ = f" WITH ({', '.join(options)})" if options else ""
        op.execute(f"CREATE VIEW {name}{with_} AS {definition}")
        if comment:
            op.execute(f"COMMENT ON VIEW {name} IS '" + comment.replace("'", "''") + "'")


def _copy_prices(source: str) -> None:
    """fact_price (new) <- source, through partitions made for its months first."""
    op.execute(
        f"SELECT priceintel_price_partitions(m, m) FROM (SELECT DISTINCT to_date((date_key / 100 * 100 + 1)::text, "
        f"'YYYYMMDD') AS m FROM {source}) x"
    )
    op.execute(
        f"INSERT INTO fact_price SELECT listing_id, date_key, observed_at, price, list_price, currency, in_stock, "
        f"promo, scrape_run_id, page_sha256, tenant_id, extraction_method, import_run_id FROM {source} "
        f"ORDER BY date_key, listing_id"
    )


def upgrade() -> None:
    """Partition fact_price by month, move its rows, make the incremental app tables and their triggers."""
    views = _plain_views()
    for name in _READERS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for name in ("mv_app_forecasts_all", "mv_app_listing_span_all", "mv_app_prices_daily_all", "mv_app_prices_all"):
        op.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name}")
    for name in _PLAIN_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("ALTER TABLE fact_price RENAME TO fact_price_heap")
    op.execute("ALTER INDEX fact_price_pkey RENAME TO fact_price_heap_pkey")
    op.execute(_TABLE)
    op.execute(_POLICY.format(t="fact_price"))
    op.execute(_POLICY.format(t="fact_price_default"))
    op.execute(_PARTITIONS)
    # the months of the stored rows, and this month and the next two
    op.execute("SELECT priceintel_price_partitions(date_trunc('month', now())::date, (now() + interval '2 months')::date)")
    _copy_prices("fact_price_heap")
    op.execute("DROP TABLE fact_price_heap")
    op.execute(_PENDING)
    op.execute(_triggers())
    op.execute(_SOURCES)
    for name, held in _READERS.items():
        if held.startswith("app_"):
            op.execute(_POLICY.format(t=held))
            op.execute(_TABLE_READER.format(name=name, held=held))
        else:
            op.execute(_READER.format(name=name, held=held))
    _make_plain_views(views)
    op.execute("INSERT INTO app_prices_all SELECT * FROM app_prices_source")
    op.execute("INSERT INTO app_prices_daily_all SELECT * FROM app_prices_daily_source")
    op.execute("INSERT INTO app_listing_span_all SELECT * FROM app_listing_span_source")
    op.execute("ANALYZE app_prices_all, app_prices_daily_all, app_listing_span_all")
    op.execute("REFRESH MATERIALIZED VIEW mv_app_forecasts_all")
    op.execute("DELETE FROM app_pending")  # the copy's triggers: already applied by the fill


def _tenants_migration():
    """Migration 0014's module (its app materialized views, restored by the downgrade)."""
    path = next(Path(__file__).parent.glob("0014_*.py"))
    spec = importlib.util.spec_from_file_location("priceintel_migration_0014", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    """One unpartitioned fact_price and the materialized views of 0014 again."""
    views = _plain_views()
    for name in _READERS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_app_forecasts_all")
    for name in ("app_listing_span", "app_prices_daily", "app_prices"):
        op.execute(f"DROP TABLE IF EXISTS {name}_all")
        op.execute(f"DROP VIEW IF EXISTS {name}_source")
    for name in _PLAIN_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("DROP TABLE app_pending")
    op.execute("DROP TRIGGER IF EXISTS delete_prices ON dim_listing")
    op.execute("DROP FUNCTION IF EXISTS priceintel_delete_listing_prices()")
    for table in ("fact_sales", "product_match", "dim_product", "dim_listing", "dim_retailer", "dim_date"):
        for event in ("insert", "update", "update_old", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS app_pending_{event} ON {table}")
    op.execute("ALTER TABLE fact_price RENAME TO fact_price_parts")
    op.execute("ALTER INDEX fact_price_pkey RENAME TO fact_price_parts_pkey")
    op.execute(
        """CREATE TABLE fact_price (
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
    tenant_id     integer NOT NULL DEFAULT priceintel_tenant(),
    extraction_method text,
    import_run_id integer,
    PRIMARY KEY (listing_id, date_key),
    CHECK (price IS NULL OR currency IS NOT NULL)
);
CREATE INDEX ix_fact_price_date_key ON fact_price (date_key);
COMMENT ON TABLE fact_price IS 'one observation per listing per day; price NULL when the page shows none';
INSERT INTO fact_price SELECT p.listing_id, p.date_key, p.observed_at, p.price, p.list_price, p.currency, p.in_stock,
       p.promo, s.scrape_run_id, p.page_sha256, p.tenant_id, p.extraction_method, p.import_run_id
FROM fact_price_parts p JOIN dim_listing l ON l.listing_id = p.listing_id
LEFT JOIN scrape_run s ON s.scrape_run_id = p.scrape_run_id;
DROP TABLE fact_price_parts CASCADE;
DROP FUNCTION priceintel_price_partitions(date, date);"""
    )
    for fn in ("prices", "sales", "listings", "products", "listing_keys", "retailers", "days", "all"):
        op.execute(f"DROP FUNCTION IF EXISTS priceintel_pending_{fn}()")
    op.execute(_POLICY.format(t="fact_price"))
    tenants = _tenants_migration()
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_app_elasticity_all CASCADE")
    op.execute(tenants._mviews(tenant=True))
    for name in tenants._MVIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(_READER.format(name=name, held=f"{name}_all"))
    _make_plain_views(views)
