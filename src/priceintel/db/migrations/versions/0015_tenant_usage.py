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
"""


def upgrade() -> None:
    """Create tenant_usage with its policy."""
    op.execute(_UP)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE tenant_usage")
