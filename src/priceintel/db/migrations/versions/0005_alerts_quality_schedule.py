"""Alerts (with deliveries), data-quality results and scheduled-run history.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_DROP = [
    "DROP TABLE IF EXISTS alert_delivery",
    "DROP TABLE IF EXISTS alert",
    "DROP TABLE IF EXISTS quality_result",
    "DROP TABLE IF EXISTS schedule_run",
]

_TABLES = """
CREATE TABLE alert (
    alert_id        serial PRIMARY KEY,
    dedup_key       text NOT NULL UNIQUE CHECK (dedup_key <> ''),
    rule            text NOT NULL,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    delivery        text NOT NULL DEFAULT 'immediate' CHECK (delivery IN ('immediate', 'digest')),
    channels        text[] NOT NULL DEFAULT '{}',
    ds              date NOT NULL,
    episode_start   date,
    listing_id      integer,
    retailer        text,
    item_id         text,
    sku             text,
    category        text,
    price           numeric(12,2),
    reference_price numeric(12,2),
    value           double precision,
    reason          text NOT NULL,
    details         jsonb,
    state           text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'acknowledged', 'resolved')),
    resolved_by     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE alert IS 'one alert per dedup_key (rule, kind, listing, day or episode start): re-runs never duplicate';
CREATE INDEX ix_alert_state ON alert (state);
CREATE INDEX ix_alert_rule_listing ON alert (rule, listing_id, ds);

CREATE TABLE alert_delivery (
    delivery_id serial PRIMARY KEY,
    alert_id    integer REFERENCES alert (alert_id) ON DELETE CASCADE,
    channel     text NOT NULL,
    kind        text NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'digest', 'quality', 'run')),
    subject     text,
    status      text NOT NULL CHECK (status IN ('sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    error       text,
    digest_date date,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE alert_delivery IS 'every delivery attempt batch per alert and channel; sent rows stop re-sending';
CREATE UNIQUE INDEX ux_alert_delivery_sent ON alert_delivery (alert_id, channel) WHERE status = 'sent';
CREATE INDEX ix_alert_delivery_alert ON alert_delivery (alert_id);

CREATE TABLE quality_result (
    id          serial PRIMARY KEY,
    run_key     text NOT NULL,
    stage       text NOT NULL,
    check_name  text NOT NULL,
    table_name  text,
    column_name text,
    severity    text NOT NULL CHECK (severity IN ('warning', 'critical')),
    passed      boolean NOT NULL,
    failed_rows integer NOT NULL DEFAULT 0,
    detail      text,
    checked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_quality_result_run ON quality_result (run_key);

CREATE TABLE schedule_run (
    run_id      serial PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
    trigger     text NOT NULL DEFAULT 'manual',
    cron        text,
    pid         integer,
    host        text,
    env_file    text,
    tasks       jsonb,
    error       text
);
COMMENT ON TABLE schedule_run IS 'history of scheduled runs; a run found running with a dead pid becomes interrupted';
"""


def upgrade() -> None:
    """Create the alert, delivery, quality and schedule tables."""
    op.execute(_TABLES)


def downgrade() -> None:
    """Drop them."""
    for statement in _DROP:
        op.execute(statement)
