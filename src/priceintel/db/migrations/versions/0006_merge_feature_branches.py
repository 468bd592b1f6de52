"""Merge the feature branches (match labels, forecast store, alerts/quality/schedule) into one head.

Revision ID: 0006
Revises: 0002, 0003, 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = ("0002", "0003", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: this revision only joins the branches."""


def downgrade() -> None:
    """Nothing to change: downgrading splits back into the branches."""
