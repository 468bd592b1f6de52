"""Tenants isolated by the database itself: a `tenant` table, `tenant_id` on every tenant-owned table and
row-level security on each of them.

Every policy compares `tenant_id` with `priceintel_tenant()`, which reads the transaction's setting
`priceintel.tenant` (a tenant name). The database owner (and the worker role it switches to, `db.roles`) is
trusted to name a tenant; any other role (the apps' and the API's `<db>_app`) must also prove it with
`priceintel.tenant_token`, whose SHA-256 is stored in `tenant.token_hash` (`db.tenancy`): raw SQL run as the app
role cannot read or write another tenant's rows by setting a name. Without a tenant setting the owner works in
the default tenant (`tenant.is_default`) and the app role sees nothing.

Natural keys become per-tenant (a SKU, a retailer name, a watched URL, an alert's dedup key); user names stay
unique across tenants (a sign-in names no tenant). Existing rows go to tenant `default`. The app materialized
views hold every tenant's rows (they are refreshed by the owner) as `mv_app_*_all`, read only through views of
the old names that keep the current tenant's rows; plain views run as the caller (security_invoker), so the
policies apply to what they read. Needs PostgreSQL 15 or newer.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: every tenant-owned table; dim_date (the calendar), app_refresh and alembic_version are shared
TENANT_TABLES = (
    "dim_retailer", "dim_product", "dim_listing", "fact_price", "fact_sales", "product_match", "match_label",
    "scrape_run", "scrape_error", "pipeline_run", "schedule_run", "quality_result", "import_run",
    "watch", "watch_fetch", "alert", "alert_delivery", "forecast_run", "forecast_series", "forecast_value",
    "forecast_metric", "elasticity_run", "elasticity_estimate", "app_user", "api_key",
)  # fmt: skip
#: high-volume tables without a foreign key to tenant (a check per row on bulk loads); their tenant_id comes
#: from priceintel_tenant(), which only names existing tenants
_NO_FK = ("fact_price", "forecast_value", "watch_fetch", "forecast_metric")
#: natural keys that become unique per tenant: table -> (old constraint, columns)
_KEYS = {
    "dim_retailer": ("dim_retailer_retailer_key", "retailer"),
    "dim_product": ("dim_product_sku_key", "sku"),
    "watch": ("watch_url_key", "url"),
    "alert": ("alert_dedup_key_key", "dedup_key"),
}
#: the app materialized views in dependency order
_MVIEWS = ("mv_app_prices", "mv_app_prices_daily", "mv_app_listing_span", "mv_app_forecasts", "mv_app_elasticity")
_PLAIN_VIEWS = ("v_latest_price", "v_daily_price_stats", "v_price_vs_ours", "v_app_alerts")

_TENANT = """
CREATE TABLE tenant (
    tenant_id   serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    plan        text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    is_default  boolean NOT NULL DEFAULT false,
    token_hash  bytea,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ux_tenant_default ON tenant (is_default) WHERE is_default;
COMMENT ON TABLE tenant IS 'tenants (priceintel tenants add): every tenant-owned row carries a tenant_id';
COMMENT ON COLUMN tenant.token_hash IS
    'sha256 of the token a role other than the owner must present in priceintel.tenant_token (db.tenancy)';
INSERT INTO tenant (name, plan, is_default) VALUES ('default', 'enterprise', true);

CREATE FUNCTION priceintel_tenant() RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    wanted text := nullif(current_setting('priceintel.tenant', true), '');
    proof  text := nullif(current_setting('priceintel.tenant_token', true), '');
    found  integer;
    hash   bytea;
BEGIN
    IF pg_has_role(session_user, current_user, 'MEMBER') THEN  -- the owner, also after SET ROLE to its worker
        IF wanted IS NULL THEN
            SELECT tenant_id INTO found FROM tenant WHERE is_default;
        ELSE
            SELECT tenant_id INTO found FROM tenant WHERE name = wanted;
        END IF;
        IF found IS NULL THEN
            RAISE EXCEPTION 'no tenant %', coalesce(quote_literal(wanted), '(default)')
                USING ERRCODE = 'undefined_object', HINT = 'add it: priceintel tenants add NAME';
        END IF;
        RETURN found;
    END IF;
    IF wanted IS NULL THEN
        RETURN NULL;  -- no tenant, no rows
    END IF;
    SELECT tenant_id, token_hash INTO found, hash FROM tenant WHERE name = wanted;
    IF found IS NULL OR hash IS NULL OR proof IS NULL OR sha256(convert_to(proof, 'UTF8')) <> hash THEN
        RAISE EXCEPTION 'tenant %: no valid tenant token for role %', quote_literal(wanted), session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN found;
END $$;
COMMENT ON FUNCTION priceintel_tenant() IS
    'the tenant of this transaction (priceintel.tenant, proven by priceintel.tenant_token unless the owner asks)';
"""

_LOOKUPS = """
CREATE FUNCTION priceintel_user_tenant(username text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT t.name FROM app_user u JOIN tenant t ON t.tenant_id = u.tenant_id WHERE u.username = $1
$$;
COMMENT ON FUNCTION priceintel_user_tenant(text) IS 'the tenant of a user name (sign-in names no tenant)';
CREATE FUNCTION priceintel_api_key(key_id text)
RETURNS TABLE (tenant text, name text, scope text, secret_hash text, revoked boolean, stale boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT t.name, k.name, k.scope, k.secret_hash, k.revoked_at IS NOT NULL,
           k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'
    FROM api_key k JOIN tenant t ON t.tenant_id = k.tenant_id WHERE k.key_id = $1
$$;
REVOKE EXECUTE ON FUNCTION priceintel_user_tenant(text), priceintel_api_key(text) FROM PUBLIC;  -- db.roles grants
COMMENT ON FUNCTION priceintel_api_key(text) IS
    'an API key by id, with its tenant (a key names no tenant): one query checks a key; the hash of a 256-bit '
    'secret gives nothing away';
"""

_POLICY = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {t}
    USING (tenant_id = (SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()));
"""


def _mviews(tenant: bool) -> str:
    """The app materialized views: with tenant (`*_all`, a tenant_id column, keys led by it) or as in 0007/0009."""
    all_ = "_all" if tenant else ""

    def col(alias: str) -> str:
        return f"{alias}.tenant_id, " if tenant else ""

    def same(a: str, b: str) -> str:
        return f" AND {a}.tenant_id = {b}.tenant_id" if tenant else ""

    t = "tenant_id, " if tenant else ""
    return f"""
CREATE MATERIALIZED VIEW mv_app_prices{all_} AS
SELECT {col("fp")}fp.listing_id, fp.date_key, -fp.date_key AS neg_day, d.date AS ds,
       r.retailer, l.item_id, p.product_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category,
       fp.price::float8 AS price, fp.currency::text AS currency, fp.in_stock, fp.promo,
       fs.price::float8 AS our_price,
       CASE WHEN fs.price > 0 AND fp.price IS NOT NULL
            THEN round((fp.price / fs.price - 1) * 100, 2)::float8 END AS gap_pct
FROM fact_price fp
JOIN product_match pm ON pm.listing_id = fp.listing_id AND pm.status IN ('auto', 'confirmed'){same("pm", "fp")}
JOIN dim_product p ON p.product_id = pm.product_id{same("p", "fp")}
JOIN dim_listing l ON l.listing_id = fp.listing_id{same("l", "fp")}
JOIN dim_retailer r ON r.retailer_id = l.retailer_id{same("r", "fp")}
JOIN dim_date d ON d.date_key = fp.date_key
LEFT JOIN fact_sales fs ON fs.product_id = pm.product_id AND fs.date_key = fp.date_key{same("fs", "fp")};
CREATE UNIQUE INDEX ux_mv_app_prices ON mv_app_prices{all_} (listing_id, date_key);
CREATE INDEX ix_mv_app_prices_order ON mv_app_prices{all_} ({t}neg_day, sku, retailer, listing_id);
CREATE INDEX ix_mv_app_prices_sku ON mv_app_prices{all_} ({t}sku, neg_day, retailer, listing_id);
CREATE INDEX ix_mv_app_prices_category ON mv_app_prices{all_} ({t}category, neg_day, sku, retailer, listing_id);

CREATE MATERIALIZED VIEW mv_app_prices_daily{all_} AS
SELECT {t}date_key, ds, retailer, category,
       count(*) AS n_rows, count(price) AS n_priced, sum(price) AS price_sum,
       count(gap_pct) AS n_gap, sum(gap_pct) AS gap_sum,
       count(*) FILTER (WHERE in_stock) AS n_in_stock, count(*) FILTER (WHERE promo) AS n_promo,
       count(our_price) AS n_ours, sum(our_price) AS ours_sum
FROM mv_app_prices{all_}
GROUP BY {t}date_key, ds, retailer, category;
CREATE UNIQUE INDEX ux_mv_app_prices_daily ON mv_app_prices_daily{all_} ({t}date_key, retailer, category);

CREATE MATERIALIZED VIEW mv_app_listing_span{all_} AS
SELECT {col("mp")}mp.listing_id, mp.product_id, mp.sku, mp.retailer, mp.category,
       min(mp.ds) AS first_ds, max(mp.ds) AS last_ds, count(*) AS n_days,
       max(mp.ds) FILTER (WHERE mp.price IS NOT NULL) AS last_priced_ds,
       max(mp.date_key) FILTER (WHERE mp.price IS NOT NULL) AS last_priced_key
FROM mv_app_prices{all_} mp
GROUP BY {col("mp")}mp.listing_id, mp.product_id, mp.sku, mp.retailer, mp.category;
CREATE UNIQUE INDEX ux_mv_app_listing_span ON mv_app_listing_span{all_} (listing_id);
CREATE INDEX ix_mv_app_listing_span_sku ON mv_app_listing_span{all_} ({t}sku);

CREATE MATERIALIZED VIEW mv_app_forecasts{all_} AS
WITH latest AS (SELECT {t}max(run_id) AS run_id FROM forecast_run {"GROUP BY tenant_id" if tenant else ""})
SELECT {col("fv")}fv.run_id, fv.unique_id, fv.ds, r.retailer, l.listing_id, l.item_id, p.sku, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category, fs.chosen_model, fs.p_change,
       fv.yhat, fv."lo-80", fv."hi-80", fv."lo-95", fv."hi-95",
       sp.last_priced_ds AS last_ds, lp.price::float8 AS last_price,
       CASE WHEN lp.price > 0 THEN round(((fv.yhat / lp.price::float8 - 1) * 100)::numeric, 2)::float8 END
           AS change_pct
FROM latest
JOIN forecast_value fv ON fv.run_id = latest.run_id AND fv.model = 'chosen'
JOIN forecast_series fs ON fs.run_id = fv.run_id AND fs.unique_id = fv.unique_id{same("fs", "fv")}
JOIN dim_retailer r ON r.retailer = split_part(fv.unique_id, ':', 1){same("r", "fv")}
JOIN dim_listing l ON l.retailer_id = r.retailer_id AND l.item_id = substr(fv.unique_id, length(r.retailer) + 2)
    {same("l", "fv").strip()}
JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status IN ('auto', 'confirmed'){same("pm", "fv")}
JOIN dim_product p ON p.product_id = pm.product_id{same("p", "fv")}
LEFT JOIN mv_app_listing_span{all_} sp ON sp.listing_id = l.listing_id{same("sp", "fv")}
LEFT JOIN fact_price lp ON lp.listing_id = l.listing_id AND lp.date_key = sp.last_priced_key{same("lp", "fv")};
CREATE UNIQUE INDEX ux_mv_app_forecasts ON mv_app_forecasts{all_} ({t}unique_id, ds);
CREATE INDEX ix_mv_app_forecasts_order ON mv_app_forecasts{all_} ({t}sku, retailer, unique_id, ds);

CREATE MATERIALIZED VIEW mv_app_elasticity{all_} AS
SELECT {col("e")}e.run_id, er.window_start, er.window_end, er.created_at, e.sku, p.product_id, p.name, p.brand,
       COALESCE(p.category, '(none)') AS category,
       e.elasticity, e.se, e.ci_lo, e.ci_hi, e.elasticity_pooled, e.ci_lo_pooled, e.ci_hi_pooled,
       e.cross_elasticity, e.n, e.identified, e.note, p.unit_cost::float8 AS unit_cost,
       e.current_price, e.recommended_price, e.change_pct, e.expected_units, e.expected_profit, e.reason
FROM elasticity_estimate e
JOIN elasticity_run er ON er.run_id = e.run_id{same("er", "e")}
LEFT JOIN dim_product p ON p.sku = e.sku{same("p", "e")};
CREATE UNIQUE INDEX ux_mv_app_elasticity ON mv_app_elasticity{all_} (run_id, sku);
"""


def _alerts_view(tenant: bool) -> str:
    same = " AND p.tenant_id = a.tenant_id" if tenant else ""
    return f"""
CREATE VIEW v_app_alerts AS
SELECT a.alert_id, a.ds, a.severity, a.state, a.kind, a.rule, a.retailer, a.item_id, a.sku,
       p.name, p.brand, a.category, a.price::float8 AS price, a.reference_price::float8 AS reference_price,
       a.value, a.reason, a.created_at, a.updated_at
FROM alert a
LEFT JOIN dim_product p ON p.sku = a.sku{same};
COMMENT ON VIEW v_app_alerts IS 'alerts view (live: the alert manager changes states)';
"""


def _drop_mviews(tenant: bool) -> None:
    op.execute("DROP VIEW IF EXISTS v_app_alerts")
    for name in reversed(_MVIEWS):
        if tenant:
            op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name}{'_all' if tenant else ''}")


def upgrade() -> None:
    """Tenant table and functions, tenant_id (existing rows: `default`), per-tenant keys, policies, views."""
    op.execute(_TENANT)
    _drop_mviews(tenant=False)
    for table in TENANT_TABLES:
        fk = "" if table in _NO_FK else " REFERENCES tenant (tenant_id)"
        op.execute(f"ALTER TABLE {table} ADD COLUMN tenant_id integer NOT NULL DEFAULT 1{fk}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN tenant_id SET DEFAULT priceintel_tenant()")
        op.execute(_POLICY.format(t=table))
    for table, (old, column) in _KEYS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {old}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_tenant_{column}_key UNIQUE (tenant_id, {column})")
    op.execute(_LOOKUPS)
    op.execute("CREATE INDEX ix_app_user_tenant ON app_user (tenant_id)")
    op.execute("CREATE INDEX ix_api_key_tenant ON api_key (tenant_id)")
    op.execute(_POLICY.format(t="tenant"))  # a tenant sees its own row only
    op.execute(_mviews(tenant=True))
    for name in _MVIEWS:
        op.execute(
            f"CREATE VIEW {name} WITH (security_barrier = true) AS "  # the tenant filter runs before a caller's
            f"SELECT * FROM {name}_all WHERE tenant_id = (SELECT priceintel_tenant())"  # functions see a row
        )
        op.execute(f"COMMENT ON VIEW {name} IS 'the current tenant''s rows of {name}_all (app materialized view)'")
    op.execute(_alerts_view(tenant=True))
    for view in _PLAIN_VIEWS:
        op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")
    # the shared calendar: every tenant adds days, none may change one (a day is its key)
    op.execute("ALTER TABLE dim_date ADD CONSTRAINT dim_date_key_is_date CHECK (date_key = to_char(date, 'YYYYMMDD')::int)")


def downgrade() -> None:
    """One tenant again (fails on a per-tenant key two tenants share: remove the other tenants first)."""
    op.execute("ALTER TABLE dim_date DROP CONSTRAINT IF EXISTS dim_date_key_is_date")
    for view in _PLAIN_VIEWS:
        op.execute(f"ALTER VIEW IF EXISTS {view} RESET (security_invoker)")
    _drop_mviews(tenant=True)
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON tenant")
    op.execute("ALTER TABLE tenant DISABLE ROW LEVEL SECURITY")
    for table, (old, column) in _KEYS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_tenant_{column}_key")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {old} UNIQUE ({column})")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DROP COLUMN tenant_id")
    op.execute(_mviews(tenant=False))
    op.execute(_alerts_view(tenant=False))
    op.execute("DROP FUNCTION priceintel_api_key(text)")
    op.execute("DROP FUNCTION priceintel_user_tenant(text)")
    op.execute("DROP FUNCTION priceintel_tenant()")
    op.execute("DROP TABLE tenant")
