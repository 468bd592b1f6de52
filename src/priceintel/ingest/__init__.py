"""Import our own data: the catalogue (into dim_product), daily sales (fact_sales) and the competitor watch list.

Every import reads a CSV/TSV/Excel/Parquet/Merchant Center file, checks each row, loads the valid rows in one
transaction with an `import_run` row (file sha256, counts, status), writes the rejected rows beside the input as
`<name>.rejects.csv` and archives the raw file under `data/imports/<kind>/`.
"""

from priceintel.ingest.catalog import import_catalog
from priceintel.ingest.result import ImportResult, IngestError, Issue
from priceintel.ingest.sales import import_sales
from priceintel.ingest.watch import add_watch, import_watches, list_watches, remove_watch

__all__ = [
    "ImportResult",
    "IngestError",
    "Issue",
    "import_catalog",
    "import_sales",
    "import_watches",
    "add_watch",
    "list_watches",
    "remove_watch",
]
