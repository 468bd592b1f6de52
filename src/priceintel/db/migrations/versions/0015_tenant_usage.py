"""Usage metered per tenant per day (`db.usage`): API requests, exports, pages fetched, and the products and watched
URLs tracked at the day's last count; under the same row-level security as every tenant-owned table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_UP = """
CREATE TABLE tenant_usage (
    tenant_id     integer NOT NULL DEFAULT priceintel_tenant() REFERENCES tenant (tenant_id),
    day           date NOT NULL,
    requests      bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    exports       bigint NOT NULL DEFAULT 0 CHECK (exports >= 0),
    pages_fetched bigint NOT NULL DEFAULT 0 CHECK (pages_fetched >= 0),
    products      integer CHECK (products >= 0),
    watches       integer CHECK (watches >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);
COMMENT ON TABLE tenant_usage IS
    'per tenant and UTC day: API requests, exports, pages fetched; products and active watches at the last count';
ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = (SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()));

-- usage only grows: the apps and the API add to their tenant's day through this function, never write the table
CREATE FUNCTION priceintel_add_usage(d date, requests bigint, exports bigint, pages bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    t integer := priceintel_tenant();
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'usage: no tenant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF least(requests, exports, pages) < 0 THEN
        RAISE EXCEPTION 'usage: amounts are added, never taken away' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO tenant_usage AS u (tenant_id, day, requests, exports, pages_fetched, products, watches)
    VALUES (t, d, requests, exports, pages,
            (SELECT count(*) FROM dim_product WHERE tenant_id = t),
            (SELECT count(*) FROM watch WHERE tenant_id = t AND active))
    ON CONFLICT (tenant_id, day) DO UPDATE SET
        requests = u.requests + excluded.requests,
        exports = u.exports + excluded.exports,
        pages_fetched = u.pages_fetched + excluded.pages_fetched,
        products = excluded.products, watches = excluded.watches, updated_at = now();
END $$;
COMMENT ON FUNCTION priceintel_add_usage(date, bigint, bigint, bigint) IS
    'add to the transaction''s tenant''s usage of a day, and count its products and active watches';
"""


def upgrade() -> None:
    """Create tenant_usage with its policy."""
    op.execute(_UP)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP FUNCTION priceintel_add_usage(date, bigint, bigint, bigint)")
    op.execute("DROP TABLE tenant_usage")
