"""Price lineage: every stored price names where its number came from (`priceintel lineage PRICE_ID`).

A scraped price already named its page (`fact_price.page_sha256`, the archive's content address) and, when the
loader passed one, its `scrape_run` (started, finished, code version). This adds what was missing:

- `fact_price.extraction_method`: how the extractor read the price (`Offer.methods["price"]`: `jsonld`,
  `json:<path>`, `css:<selector>` / `xpath:<expr>`, `microdata`, `opengraph`, `heuristic:<rule>`; the stock
  status's method when the page shows no price), or `import` for a price imported from a file.
- `fact_price.import_run_id`: the `import_run` (file, its SHA-256, who imported it, when) of an imported price.
  No foreign key, like `tenant_id` on this table (0014): fact_price takes bulk loads, and a key would queue a
  check per row; the loader checks the run exists once per load, and `priceintel lineage` says when a
  referenced run is gone.
- `scrape_run.pipeline_run_id` (the load's `pipeline_run`) and `scrape_run.run_key` (the run id of the logs,
  `obs.logs.current()["run_id"]`: `run-…`, `schedule-N`): per run, not per price, so the fact table stays
  narrow; a price reaches them through its scrape run.

Loads fill these in the same staging upsert as the price (no trigger); an upsert that changes a price replaces
its lineage, one that leaves it unchanged keeps it (and fills what it lacked). Rows loaded before this revision
keep NULLs: "not recorded".

The PRICE ID a user copies is `<listing_id>-<YYYYMMDD>` (e.g. `17-20260702`): fact_price's primary key
(listing, day) written as text. No identity column: a new bigint and its unique index would rewrite the table,
draw a sequence value and maintain one more index on every insert of the largest table, to number what the key
already names. The composite id is stable across re-loads (an upsert keeps its key), says which day it is, is
built by the apps and the API from columns they already read (`listing_id`, `date_key`), and names one tenant's
row only (listing ids are unique across tenants; row-level security hides the others'). The new columns are on
tables that already have a tenant_id and the `tenant_isolation` policy of 0014, so they inherit it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_UP = """
ALTER TABLE fact_price
    ADD COLUMN extraction_method text,
    ADD COLUMN import_run_id     integer;
COMMENT ON COLUMN fact_price.extraction_method IS
    'how the price was read: the extractor''s method (jsonld, json:<path>, css:<selector>, microdata, '
    'heuristic:<rule>, …) or import; NULL: loaded before lineage was kept';
COMMENT ON COLUMN fact_price.import_run_id IS
    'the import_run of a price imported from a file (no foreign key: bulk loads check it once per load)';
COMMENT ON COLUMN fact_price.page_sha256 IS 'sha256 of the raw page the price was read from (the raw archive''s key)';

ALTER TABLE scrape_run
    ADD COLUMN pipeline_run_id integer REFERENCES pipeline_run (run_id) ON DELETE SET NULL,
    ADD COLUMN run_key         text;
COMMENT ON COLUMN scrape_run.pipeline_run_id IS 'the pipeline_run (load task) that stored this run''s prices';
COMMENT ON COLUMN scrape_run.run_key IS 'the run id of the logs (obs.logs: run-…, schedule-N) when one was bound';
"""

_DOWN = """
ALTER TABLE scrape_run DROP COLUMN IF EXISTS run_key, DROP COLUMN IF EXISTS pipeline_run_id;
ALTER TABLE fact_price DROP COLUMN IF EXISTS import_run_id, DROP COLUMN IF EXISTS extraction_method;
COMMENT ON COLUMN fact_price.page_sha256 IS NULL;
"""


def upgrade() -> None:
    """Add the lineage columns (nullable, no default: no table rewrite)."""
    op.execute(_UP)


def downgrade() -> None:
    """Drop them."""
    op.execute(_DOWN)
