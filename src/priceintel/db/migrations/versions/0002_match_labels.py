"""Human match labels: every confirmation or rejection of a (listing, product) pair, kept for training.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE match_label (
    listing_id integer NOT NULL REFERENCES dim_listing (listing_id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES dim_product (product_id) ON DELETE CASCADE,
    label      boolean NOT NULL,
    source     text NOT NULL DEFAULT 'review' CHECK (source <> ''),
    score      real,
    labelled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (listing_id, product_id)
);
COMMENT ON TABLE match_label IS 'human labels of listing/product pairs (true = same product); training data of the matcher';
CREATE INDEX ix_match_label_product_id ON match_label (product_id);
"""


def upgrade() -> None:
    """Create the label table."""
    op.execute(_TABLES)


def downgrade() -> None:
    """Drop the label table."""
    op.execute("DROP TABLE IF EXISTS match_label")
