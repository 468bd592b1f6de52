"""The history of each listing's attributes (a type-2 slowly changing dimension) and the load watermark.

**dim_listing_history.** One row (a *version*) per listing and period in which its tracked attributes (title,
url, seller, in_stock) stayed the same. `valid_from` is the first day the listing was observed with them,
`valid_to` the first day it was observed with others (exclusive); NULL for the current version, so
`daterange(valid_from, valid_to) @> day` (a NULL bound is unbounded) or `listing_as_of(day)` finds the version in
effect on a day. `last_seen` is the last day the version was observed. Periods are days of observation, never
the wall-clock time of a load: a back-filled import of old days lands where those days belong. The periods of a
listing never overlap (an exclusion constraint) and follow each other without a gap; at most one is current.

Versions are written by `priceintel_listing_history_observe(...)` (called by `db.load.upsert_listings` with each
row's observation day), which merges observations into the history and sets dim_listing's tracked columns to
the current version: the listing as it was on its newest observed day. The rules (docs/history.md): a NULL
attribute in an observation is unknown and keeps the value in effect; the later load of a day replaces that
day; an observation among known days splits the version it falls in, and holds until the next known
observation. A statement-level trigger on dim_listing captures a change of the tracked columns made any other
way (raw SQL): it starts a new version on today's date, or the day after the newest observed day when the
history already reaches past today. Inserting dim_listing rows directly (a tenant restore) records nothing:
the restore brings the history rows with it.

The functions run as the owner (SECURITY DEFINER, fixed search_path): the apps' role upserts dim_listing (the
API's imports) but may not write the history; `_observe` only accepts listings of the caller's tenant.

Existing listings are back-filled: their days in fact_price (with each day's availability) and their title
and url as they stand, so the availability history starts complete and the other attributes start as known
at the upgrade.

**load_watermark.** The newest observation (observed_at) the pipeline's load has stored, per tenant, source
and retailer (`db.watermark`).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import math

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_POLICY = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {t}
    USING (tenant_id = (SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()));
"""
#: observations per call of the merge in the back-fill (whole listings per call)
_CHUNK = 50_000

_TABLES = """
ALTER TABLE dim_listing ADD COLUMN seller text, ADD COLUMN in_stock boolean;
COMMENT ON COLUMN dim_listing.seller IS 'who sells on the page (marketplaces), as of the newest observed day';
COMMENT ON COLUMN dim_listing.in_stock IS 'availability as of the newest observed day (fact_price.in_stock per day)';

CREATE TABLE dim_listing_history (
    listing_id  integer NOT NULL REFERENCES dim_listing (listing_id) ON DELETE CASCADE,
    valid_from  date NOT NULL,
    valid_to    date,
    last_seen   date NOT NULL,
    title       text,
    url         text,
    seller      text,
    in_stock    boolean,
    tenant_id   integer NOT NULL DEFAULT priceintel_tenant(),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (listing_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (last_seen >= valid_from AND (valid_to IS NULL OR last_seen < valid_to)),
    -- a listing's periods never overlap (int4range equality: no btree_gist extension needed)
    CONSTRAINT dim_listing_history_no_overlap EXCLUDE USING gist (
        int4range(listing_id, listing_id, '[]') WITH =, daterange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX ux_dim_listing_history_current ON dim_listing_history (listing_id) WHERE valid_to IS NULL;
CREATE INDEX ix_dim_listing_history_tenant ON dim_listing_history (tenant_id);
COMMENT ON TABLE dim_listing_history IS
    'type-2 history of each listing''s title, url, seller and availability: one row per period in which they '
    'stayed the same (days of observation); valid_to NULL: the current version (listing_as_of(day))';
COMMENT ON COLUMN dim_listing_history.valid_from IS 'first day the listing was observed with these values';
COMMENT ON COLUMN dim_listing_history.valid_to IS
    'first day it was observed with other values (exclusive); NULL for the current version';
COMMENT ON COLUMN dim_listing_history.last_seen IS 'last day the listing was observed with these values';
COMMENT ON COLUMN dim_listing_history.recorded_at IS 'when this version row was written';

CREATE TABLE load_watermark (
    tenant_id   integer NOT NULL DEFAULT priceintel_tenant() REFERENCES tenant (tenant_id),
    source      text NOT NULL,
    retailer    text NOT NULL,
    observed_at timestamptz NOT NULL,
    n_rows      bigint NOT NULL DEFAULT 0,
    run_id      integer,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source, retailer)
);
COMMENT ON TABLE load_watermark IS
    'the newest observation (observed_at) each source''s load stored per retailer: the next load stages only '
    'newer observations and those the warehouse lacks (db.watermark)';
COMMENT ON COLUMN load_watermark.n_rows IS 'observations the load that moved the watermark stored';
COMMENT ON COLUMN load_watermark.run_id IS 'the pipeline_run of that load';
"""

_MERGE = """
CREATE FUNCTION priceintel_listing_history_merge(
    ids integer[], days date[], titles text[], urls text[], sellers text[], stocks boolean[], inherit boolean)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    added integer;
    found_rows integer;
BEGIN
    IF to_regclass('pg_temp.priceintel_lh_obs') IS NULL THEN
        CREATE TEMP TABLE priceintel_lh_obs (listing_id integer, day date, title text, url text, seller text,
                                             in_stock boolean) ON COMMIT DROP;
        CREATE TEMP TABLE priceintel_lh_old (LIKE public.dim_listing_history INCLUDING DEFAULTS) ON COMMIT DROP;
        CREATE TEMP TABLE priceintel_lh_new (LIKE public.dim_listing_history INCLUDING DEFAULTS) ON COMMIT DROP;
    ELSIF EXISTS (  -- tables of these names the caller made (with a trigger, say) would run its code as the owner
        SELECT 1 FROM unnest(ARRAY['pg_temp.priceintel_lh_obs', 'pg_temp.priceintel_lh_old',
                                   'pg_temp.priceintel_lh_new']) AS t(name)
        LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
        WHERE c.oid IS NULL OR c.relowner <> current_user::text::regrole
           OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid)
           OR EXISTS (SELECT 1 FROM pg_rewrite w WHERE w.ev_class = c.oid)) THEN
        RAISE EXCEPTION 'listing history: its temporary tables were not made by this function'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    TRUNCATE pg_temp.priceintel_lh_obs, pg_temp.priceintel_lh_old, pg_temp.priceintel_lh_new;
    -- the observations: one per listing and day (of repeats, the last given)
    INSERT INTO pg_temp.priceintel_lh_obs
    SELECT DISTINCT ON (o.listing_id, o.day) o.listing_id, o.day, o.title, o.url, o.seller, o.in_stock
    FROM unnest(ids, days, titles, urls, sellers, stocks) WITH ORDINALITY
         AS o(listing_id, day, title, url, seller, in_stock, ord)
    WHERE o.listing_id IS NOT NULL AND o.day IS NOT NULL
    ORDER BY o.listing_id, o.day, o.ord DESC;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows = 0 THEN
        RETURN 0;
    END IF;
    IF found_rows > 1000 THEN  -- a temporary table has no statistics until analysed: plan the joins below on real sizes
        ANALYZE pg_temp.priceintel_lh_obs;
    END IF;
    -- the versions rebuilt: from the one before the version in effect on the listing's earliest new day on
    INSERT INTO pg_temp.priceintel_lh_old
    SELECT h.* FROM (SELECT listing_id, min(day) AS day FROM pg_temp.priceintel_lh_obs GROUP BY listing_id) m
    LEFT JOIN dim_listing_history c
           ON c.listing_id = m.listing_id AND c.valid_from <= m.day AND (c.valid_to IS NULL OR c.valid_to > m.day)
    JOIN dim_listing_history h
      ON h.listing_id = m.listing_id AND (h.valid_to IS NULL OR h.valid_to >= COALESCE(c.valid_from, m.day));
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows > 1000 THEN
        ANALYZE pg_temp.priceintel_lh_old;
    END IF;
    -- their known days (first and last observed) and the new days (a new observation of a known day wins),
    -- NULL values taking the value in effect (inherit), grouped into runs of equal values: the new versions
    INSERT INTO pg_temp.priceintel_lh_new (listing_id, valid_from, valid_to, last_seen, title, url, seller, in_stock,
                                           tenant_id)
    WITH points AS (
        SELECT DISTINCT ON (listing_id, day) listing_id, day, title, url, seller, in_stock
        FROM (SELECT listing_id, day, 1 AS src, title, url, seller, in_stock FROM pg_temp.priceintel_lh_obs
              UNION ALL
              SELECT listing_id, valid_from, 0, title, url, seller, in_stock FROM pg_temp.priceintel_lh_old
              UNION ALL
              SELECT listing_id, last_seen, 0, title, url, seller, in_stock FROM pg_temp.priceintel_lh_old) p
        ORDER BY listing_id, day, src DESC
    ), counted AS (
        SELECT p.*, count(title) OVER w AS gt, count(url) OVER w AS gu, count(seller) OVER w AS gs,
               count(in_stock) OVER w AS gi
        FROM points p WINDOW w AS (PARTITION BY listing_id ORDER BY day)
    ), filled AS (
        SELECT listing_id, day,
               CASE WHEN inherit THEN COALESCE(title, first_value(title) OVER (PARTITION BY listing_id, gt ORDER BY day),
                    first_value(title) OVER (PARTITION BY listing_id ORDER BY title IS NULL, day)) ELSE title END
                   AS title,
               CASE WHEN inherit THEN COALESCE(url, first_value(url) OVER (PARTITION BY listing_id, gu ORDER BY day),
                    first_value(url) OVER (PARTITION BY listing_id ORDER BY url IS NULL, day)) ELSE url END AS url,
               CASE WHEN inherit THEN COALESCE(seller,
                    first_value(seller) OVER (PARTITION BY listing_id, gs ORDER BY day),
                    first_value(seller) OVER (PARTITION BY listing_id ORDER BY seller IS NULL, day)) ELSE seller END
                   AS seller,
               CASE WHEN inherit THEN COALESCE(in_stock,
                    first_value(in_stock) OVER (PARTITION BY listing_id, gi ORDER BY day),
                    first_value(in_stock) OVER (PARTITION BY listing_id ORDER BY in_stock IS NULL, day))
                    ELSE in_stock END AS in_stock
        FROM counted
    ), marked AS (
        SELECT f.*, CASE WHEN lag(day) OVER w IS NOT NULL
                          AND ROW(title, url, seller, in_stock) IS NOT DISTINCT FROM
                              ROW(lag(title) OVER w, lag(url) OVER w, lag(seller) OVER w, lag(in_stock) OVER w)
                         THEN 0 ELSE 1 END AS brk
        FROM filled f WINDOW w AS (PARTITION BY listing_id ORDER BY day)
    ), runs AS (
        SELECT m.*, sum(brk) OVER (PARTITION BY listing_id ORDER BY day) AS run FROM marked m
    ), versions AS (
        SELECT listing_id, run, min(day) AS valid_from, max(day) AS last_seen, title, url, seller, in_stock
        FROM runs GROUP BY listing_id, run, title, url, seller, in_stock
    )
    SELECT v.listing_id, v.valid_from, lead(v.valid_from) OVER (PARTITION BY v.listing_id ORDER BY v.valid_from),
           v.last_seen, v.title, v.url, v.seller, v.in_stock, l.tenant_id
    FROM versions v JOIN dim_listing l ON l.listing_id = v.listing_id;
    -- apply the difference: versions gone, versions whose end or last day moved, new versions (in this order,
    -- so that no two periods overlap at any point)
    DELETE FROM dim_listing_history h USING pg_temp.priceintel_lh_old o
    WHERE h.listing_id = o.listing_id AND h.valid_from = o.valid_from
      AND NOT EXISTS (SELECT 1 FROM pg_temp.priceintel_lh_new n
                      WHERE n.listing_id = o.listing_id AND n.valid_from = o.valid_from
                        AND ROW(n.title, n.url, n.seller, n.in_stock) IS NOT DISTINCT FROM
                            ROW(o.title, o.url, o.seller, o.in_stock));
    UPDATE dim_listing_history h SET valid_to = n.valid_to, last_seen = n.last_seen
    FROM pg_temp.priceintel_lh_new n
    WHERE h.listing_id = n.listing_id AND h.valid_from = n.valid_from
      AND ROW(h.title, h.url, h.seller, h.in_stock) IS NOT DISTINCT FROM ROW(n.title, n.url, n.seller, n.in_stock)
      AND ROW(h.valid_to, h.last_seen) IS DISTINCT FROM ROW(n.valid_to, n.last_seen);
    INSERT INTO dim_listing_history (listing_id, valid_from, valid_to, last_seen, title, url, seller, in_stock,
                                     tenant_id)
    SELECT n.listing_id, n.valid_from, n.valid_to, n.last_seen, n.title, n.url, n.seller, n.in_stock, n.tenant_id
    FROM pg_temp.priceintel_lh_new n
    WHERE NOT EXISTS (SELECT 1 FROM dim_listing_history h
                      WHERE h.listing_id = n.listing_id AND h.valid_from = n.valid_from)
    ORDER BY n.listing_id, n.valid_from;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END $$;
REVOKE EXECUTE ON FUNCTION priceintel_listing_history_merge(integer[], date[], text[], text[], text[], boolean[],
                                                           boolean) FROM PUBLIC;
COMMENT ON FUNCTION priceintel_listing_history_merge(integer[], date[], text[], text[], text[], boolean[], boolean) IS
    'merge observations (listing, day, title, url, seller, in_stock) into dim_listing_history; inherit: a NULL '
    'value keeps the value in effect. Internal: no tenant check (priceintel_listing_history_observe has one)';

CREATE FUNCTION priceintel_listing_history_sync(ids integer[]) RETURNS integer[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH changed AS (
        UPDATE dim_listing l SET title = h.title, url = h.url, seller = h.seller, in_stock = h.in_stock
        FROM unnest(ids) AS u(i) JOIN dim_listing_history h ON h.listing_id = u.i AND h.valid_to IS NULL
        WHERE l.listing_id = u.i
          AND ROW(l.title, l.url, l.seller, l.in_stock) IS DISTINCT FROM ROW(h.title, h.url, h.seller, h.in_stock)
        RETURNING l.listing_id)
    SELECT COALESCE(array_agg(listing_id ORDER BY listing_id), '{}') FROM changed
$$;
REVOKE EXECUTE ON FUNCTION priceintel_listing_history_sync(integer[]) FROM PUBLIC;
COMMENT ON FUNCTION priceintel_listing_history_sync(integer[]) IS
    'set dim_listing''s tracked columns to the current version of each listing; returns the listings changed';

CREATE FUNCTION priceintel_listing_history_observe(
    ids integer[], days date[], titles text[], urls text[], sellers text[], stocks boolean[])
RETURNS TABLE (added integer, synced integer[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    listings integer[];
BEGIN
    SELECT array_agg(DISTINCT i) INTO listings FROM unnest(ids) AS u(i) WHERE i IS NOT NULL;
    IF listings IS NULL THEN
        RETURN QUERY SELECT 0, '{}'::integer[];
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(listings) AS u(i) LEFT JOIN dim_listing l ON l.listing_id = u.i
               WHERE l.tenant_id IS DISTINCT FROM (SELECT priceintel_tenant())) THEN
        RAISE EXCEPTION 'listing history: every listing must be one of this tenant''s'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    added := priceintel_listing_history_merge(ids, days, titles, urls, sellers, stocks, true);
    synced := priceintel_listing_history_sync(listings);
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION priceintel_listing_history_observe(integer[], date[], text[], text[], text[], boolean[]) IS
    'record observations of this tenant''s listings (listing, day, title, url, seller, in_stock; NULL: unknown) '
    'in dim_listing_history and set dim_listing to each listing''s current version (db.load.upsert_listings)';

CREATE FUNCTION priceintel_listing_history_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
SET enable_nestloop = off AS $$  -- transition tables have no statistics: a nested loop over them is quadratic
BEGIN
    -- a change of the tracked columns that the history does not hold yet (the loaders' own changes it does)
    PERFORM priceintel_listing_history_merge(
        array_agg(n.listing_id), array_agg(GREATEST(current_date, h.last_seen + 1)), array_agg(n.title),
        array_agg(n.url), array_agg(n.seller), array_agg(n.in_stock), false)
    FROM new_rows n JOIN old_rows o ON o.listing_id = n.listing_id
    LEFT JOIN dim_listing_history h ON h.listing_id = n.listing_id AND h.valid_to IS NULL
    WHERE ROW(n.title, n.url, n.seller, n.in_stock) IS DISTINCT FROM ROW(o.title, o.url, o.seller, o.in_stock)
      AND ROW(n.title, n.url, n.seller, n.in_stock) IS DISTINCT FROM ROW(h.title, h.url, h.seller, h.in_stock)
    HAVING count(*) > 0;
    RETURN NULL;
END $$;
"""

_AS_OF = """
CREATE FUNCTION listing_as_of(on_day date)
RETURNS TABLE (listing_id integer, retailer text, item_id text, title text, url text, seller text, in_stock boolean,
               valid_from date, valid_to date, last_seen date)
LANGUAGE sql STABLE AS $$
    SELECT h.listing_id, r.retailer, l.item_id, h.title, h.url, h.seller, h.in_stock, h.valid_from, h.valid_to,
           h.last_seen
    FROM dim_listing_history h
    JOIN dim_listing l ON l.listing_id = h.listing_id
    JOIN dim_retailer r ON r.retailer_id = l.retailer_id
    WHERE h.valid_from <= on_day AND (h.valid_to IS NULL OR on_day < h.valid_to)
$$;
COMMENT ON FUNCTION listing_as_of(date) IS
    'every listing as it was on a day (its version in effect): SELECT * FROM listing_as_of(''2026-07-03'') '
    'WHERE retailer = ''amazon'' AND item_id = ''B001''; read as the caller (its tenant''s rows only)';
"""

_TRIGGER = """
CREATE TRIGGER listing_history_capture AFTER UPDATE ON dim_listing
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION priceintel_listing_history_capture();
"""


def _backfill() -> None:
    """Every existing listing's history: its days in fact_price with their availability and its title and url
    as they stand; a listing without prices, one observation on its last (else first) seen day, else today."""
    conn = op.get_bind()
    n = conn.exec_driver_sql("SELECT count(*) FROM fact_price").scalar() or 0
    k = max(1, math.ceil(n / _CHUNK))
    op.execute(
        f"""SELECT priceintel_listing_history_merge(array_agg(fp.listing_id), array_agg(to_date(fp.date_key::text,
                   'YYYYMMDD')), array_agg(l.title), array_agg(l.url), array_agg(CAST(NULL AS text)),
                   array_agg(fp.in_stock), true)
            FROM fact_price fp JOIN dim_listing l ON l.listing_id = fp.listing_id
            GROUP BY fp.listing_id % {k}"""
    )
    op.execute(
        """SELECT priceintel_listing_history_merge(array_agg(l.listing_id),
                  array_agg(COALESCE(l.last_seen, l.first_seen, current_date)), array_agg(l.title), array_agg(l.url),
                  array_agg(CAST(NULL AS text)), array_agg(CAST(NULL AS boolean)), true)
           FROM dim_listing l WHERE NOT EXISTS (SELECT 1 FROM dim_listing_history h WHERE h.listing_id = l.listing_id)
           HAVING count(*) > 0"""
    )
    op.execute("SELECT priceintel_listing_history_sync(array_agg(listing_id)) FROM dim_listing HAVING count(*) > 0")


def upgrade() -> None:
    """Tables, policies, functions, the back-fill of existing listings, then the capture trigger."""
    op.execute(_TABLES)
    op.execute(_POLICY.format(t="dim_listing_history"))
    op.execute(_POLICY.format(t="load_watermark"))
    op.execute(_MERGE)
    op.execute(_AS_OF)
    _backfill()
    op.execute(_TRIGGER)


def downgrade() -> None:
    """Drop the history, the watermark and dim_listing's seller and in_stock."""
    op.execute("DROP TRIGGER IF EXISTS listing_history_capture ON dim_listing")
    op.execute("DROP FUNCTION IF EXISTS listing_as_of(date)")
    op.execute("DROP FUNCTION IF EXISTS priceintel_listing_history_capture()")
    op.execute(
        "DROP FUNCTION IF EXISTS priceintel_listing_history_observe(integer[], date[], text[], text[], text[], "
        "boolean[])"
    )
    op.execute("DROP FUNCTION IF EXISTS priceintel_listing_history_sync(integer[])")
    op.execute(
        "DROP FUNCTION IF EXISTS priceintel_listing_history_merge(integer[], date[], text[], text[], text[], "
        "boolean[], boolean)"
    )
    op.execute("DROP TABLE IF EXISTS load_watermark")
    op.execute("DROP TABLE IF EXISTS dim_listing_history")
    op.execute("ALTER TABLE dim_listing DROP COLUMN IF EXISTS in_stock, DROP COLUMN IF EXISTS seller")
