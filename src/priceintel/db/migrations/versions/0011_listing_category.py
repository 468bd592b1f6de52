"""Listing categories: the category of our catalogue that a competitor listing matching none of our products was
put in by the text classifier trained on our own titles (`match.categorize`), with its confidence, so category
positioning counts the competitors' whole assortment, not only the listings we match.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add dim_listing.category and category_confidence."""
    op.execute(
        """
        ALTER TABLE dim_listing
            ADD COLUMN category            text,
            ADD COLUMN category_confidence real CHECK (category_confidence BETWEEN 0 AND 1);
        COMMENT ON COLUMN dim_listing.category IS
            'our catalogue category of an unmatched listing (text classifier on our titles); matched: see dim_product';
        """
    )


def downgrade() -> None:
    """Drop the listing category columns."""
    op.execute("ALTER TABLE dim_listing DROP COLUMN IF EXISTS category_confidence, DROP COLUMN IF EXISTS category")
