"""App users: who may open the Voila apps (argon2 password hashes, never plain text).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create app_user."""
    op.execute("""
CREATE TABLE app_user (
    user_id       serial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
COMMENT ON TABLE app_user IS 'users of the Voila apps; password_hash is an argon2id hash (priceintel users add NAME)';
""")


def downgrade() -> None:
    """Drop app_user."""
    op.execute("DROP TABLE IF EXISTS app_user")
