"""One identity for the apps and the REST API: a role per user (admin / analyst / viewer), API keys, and who
made each change (alert states, match verdicts, watches, imports); imports of competitor prices observed
elsewhere (import_run kind `prices`).

Users who could open the apps before this migration could do everything there, so they become admins. An API
key is shown once when created; only the SHA-256 of its random secret is stored (the secret is 256 random bits,
so a fast hash is enough), with its scope (read / write / admin), who created it and when it was last used.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_UP = """
ALTER TABLE app_user ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'analyst', 'viewer'));
ALTER TABLE app_user ALTER COLUMN role SET DEFAULT 'analyst';
COMMENT ON COLUMN app_user.role IS
    'admin: everything incl. users and API keys; analyst: reads and data actions; viewer: reads only';

CREATE TABLE api_key (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.@ -]{1,64}$'),
    scope        text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash  text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text
);
COMMENT ON TABLE api_key IS
    'REST API keys (priceintel keys create): pik_<key_id>_<secret> shown once, only sha256(secret) stored';

ALTER TABLE alert ADD COLUMN state_by text;
COMMENT ON COLUMN alert.state_by IS 'who last acknowledged or resolved it (user:NAME, key:NAME, cli, pipeline)';
ALTER TABLE match_label ADD COLUMN labelled_by text;
COMMENT ON COLUMN match_label.labelled_by IS 'who gave the verdict (user:NAME, key:NAME, cli)';
ALTER TABLE watch ADD COLUMN changed_by text;
COMMENT ON COLUMN watch.changed_by IS 'who last added, changed or stopped the watch (user:NAME, key:NAME, cli, import)';

ALTER TABLE import_run DROP CONSTRAINT import_run_kind_check;
ALTER TABLE import_run ADD CONSTRAINT import_run_kind_check CHECK (kind IN ('catalog', 'sales', 'watch', 'prices'));

-- the latest observation per listing by one index probe a listing (was DISTINCT ON over every price: a filter
-- on sku could not reach below it, so one product's latest prices read all 5.5M rows at 5,000 products)
CREATE OR REPLACE VIEW v_latest_price AS
SELECT fp.listing_id, r.retailer, l.item_id, l.url, l.title,
       p.sku, pm.status AS match_status,
       fp.date_key, d.date AS ds, fp.observed_at, fp.price, fp.list_price, fp.currency,
       fp.in_stock, fp.promo, fp.scrape_run_id
FROM dim_listing l
JOIN dim_retailer r ON r.retailer_id = l.retailer_id
LEFT JOIN product_match pm ON pm.listing_id = l.listing_id AND pm.status IN ('auto', 'confirmed')
LEFT JOIN dim_product p ON p.product_id = pm.product_id
CROSS JOIN LATERAL (
    SELECT f.* FROM fact_price f WHERE f.listing_id = l.listing_id
    ORDER BY f.date_key DESC, f.observed_at DESC LIMIT 1
) fp
JOIN dim_date d ON d.date_key = fp.date_key;
ALTER TABLE import_run ADD COLUMN imported_by text;
COMMENT ON COLUMN import_run.imported_by IS 'who imported it (user:NAME, key:NAME; empty: the command line)';
"""

_DOWN = """
CREATE OR REPLACE VIEW v_latest_price AS
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
ALTER TABLE import_run DROP COLUMN IF EXISTS imported_by;
DELETE FROM import_run WHERE kind = 'prices';
ALTER TABLE import_run DROP CONSTRAINT import_run_kind_check;
ALTER TABLE import_run ADD CONSTRAINT import_run_kind_check CHECK (kind IN ('catalog', 'sales', 'watch'));
ALTER TABLE watch DROP COLUMN IF EXISTS changed_by;
ALTER TABLE match_label DROP COLUMN IF EXISTS labelled_by;
ALTER TABLE alert DROP COLUMN IF EXISTS state_by;
DROP TABLE IF EXISTS api_key;
ALTER TABLE app_user DROP COLUMN IF EXISTS role;
"""


def upgrade() -> None:
    """Add app_user.role and api_key."""
    op.execute(_UP)


def downgrade() -> None:
    """Drop api_key and app_user.role."""
    op.execute(_DOWN)
