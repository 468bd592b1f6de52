"""Session versions of app users: a login cookie names the version it was issued under, and sign-out, a new
password or removal of the user end every open session at once (priceintel.apps.auth.end_sessions).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add app_user.session_version."""
    op.execute(
        """
        ALTER TABLE app_user ADD COLUMN session_version integer NOT NULL DEFAULT 1 CHECK (session_version > 0);
        COMMENT ON COLUMN app_user.session_version IS
            'bumped by sign-out and password changes: login cookies of an older version no longer sign in';
        """
    )


def downgrade() -> None:
    """Drop app_user.session_version."""
    op.execute("ALTER TABLE app_user DROP COLUMN IF EXISTS session_version")
