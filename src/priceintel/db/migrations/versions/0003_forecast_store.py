"""Forecast storage: tournament runs (model set, parameters, code version), per-series choices,
forecasts with 80/95% intervals, and backtest metrics.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE forecast_run (
    run_id        serial PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    name          text NOT NULL CHECK (name <> ''),
    freq          text NOT NULL,
    horizon       integer NOT NULL CHECK (horizon > 0),
    n_windows     integer NOT NULL CHECK (n_windows > 0),
    step          integer NOT NULL CHECK (step > 0),
    season_length integer NOT NULL CHECK (season_length > 0),
    models        jsonb NOT NULL,
    params        jsonb NOT NULL,
    summary       jsonb,
    timing        jsonb,
    n_series      integer NOT NULL DEFAULT 0,
    code_version  text NOT NULL
);
COMMENT ON TABLE forecast_run IS 'one forecast tournament: model set, parameters, split, headline figures, code version';

CREATE TABLE forecast_series (
    run_id       integer NOT NULL REFERENCES forecast_run (run_id) ON DELETE CASCADE,
    unique_id    text NOT NULL,
    chosen_model text NOT NULL,
    p_change     double precision CHECK (p_change BETWEEN 0 AND 1),
    length       integer,
    is_constant  boolean,
    PRIMARY KEY (run_id, unique_id)
);
COMMENT ON TABLE forecast_series IS 'per series: the model chosen on backtest windows and P(value changes within the horizon)';

CREATE TABLE forecast_value (
    run_id    integer NOT NULL REFERENCES forecast_run (run_id) ON DELETE CASCADE,
    unique_id text NOT NULL,
    model     text NOT NULL,
    ds        date NOT NULL,
    yhat      double precision,
    lo_80     double precision,
    hi_80     double precision,
    lo_95     double precision,
    hi_95     double precision,
    PRIMARY KEY (run_id, unique_id, model, ds)
);
COMMENT ON TABLE forecast_value IS 'future values with calibrated 80/95% intervals: model = chosen or a naive baseline';

CREATE TABLE forecast_metric (
    run_id      integer NOT NULL REFERENCES forecast_run (run_id) ON DELETE CASCADE,
    unique_id   text NOT NULL,
    model       text NOT NULL,
    horizon     integer NOT NULL CHECK (horizon > 0),
    n           integer NOT NULL,
    mae         double precision,
    rmse        double precision,
    smape       double precision,
    mase        double precision,
    coverage_80 double precision,
    coverage_95 double precision,
    width_80    double precision,
    width_95    double precision,
    winkler_80  double precision,
    winkler_95  double precision,
    PRIMARY KEY (run_id, unique_id, model, horizon)
);
COMMENT ON TABLE forecast_metric IS 'out-of-sample backtest metrics per series (unique_id = __all__: overall), model and lead-time bucket';
"""


def upgrade() -> None:
    """Create the forecast tables."""
    op.execute(_TABLES)


def downgrade() -> None:
    """Drop the forecast tables."""
    for t in ("forecast_metric", "forecast_value", "forecast_series", "forecast_run"):
        op.execute(f"DROP TABLE IF EXISTS {t}")
