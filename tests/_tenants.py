"""Two tenants with the same SKU and retailer but their own prices, products, alerts and users (tests of the
isolation by row-level security: `db/test_tenancy.py`, `api/test_tenants_api.py`)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from priceintel.db import load, tenancy, views

#: tenant -> (the product name, its price, a SKU only that tenant has)
WORLD = {"acme": ("acme kettle", 10.0, "ACME-ONLY"), "globex": ("globex kettle", 20.0, "GLOBEX-ONLY")}


def load_two_tenants(owner: sa.Engine) -> None:
    """Add tenants `acme` and `globex`, each with products SKU-1 and its own SKU, one matched amazon listing of
    SKU-1 priced on 2026-07-01, our price that day and one new alert; refresh the app views."""
    for tenant, (name, price, own_sku) in WORLD.items():
        tenancy.ensure_tenant(owner, tenant)
        with tenancy.scope(tenant), owner.begin() as conn:
            load.ensure_dates(conn, "2026-07-01", "2026-07-01")
            load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon"], "name": ["Amazon"]}))
            load.upsert_products(conn, pd.DataFrame({"sku": ["SKU-1", own_sku], "name": [name, f"{name} 2"]}))
            load.upsert_listings(
                conn,
                pd.DataFrame(
                    {"retailer": ["amazon"], "item_id": ["B001"], "url": ["https://a.example/B001"], "title": ["k"]}
                ),
            )
            load.load_matches(
                conn,
                pd.DataFrame(
                    {"retailer": ["amazon"], "item_id": ["B001"], "sku": ["SKU-1"], "score": [1.0],
                     "status": ["auto"], "method": ["gtin"]}
                ),
            )  # fmt: skip
            load.load_prices(
                conn,
                pd.DataFrame(
                    {"retailer": ["amazon"], "item_id": ["B001"], "ds": pd.to_datetime(["2026-07-01"]),
                     "observed_at": pd.to_datetime(["2026-07-01T08:00Z"]), "price": [price], "currency": ["USD"],
                     "in_stock": [True], "promo": [False]}
                ),
            )  # fmt: skip
            load.load_sales(
                conn,
                pd.DataFrame({"sku": ["SKU-1"], "ds": pd.to_datetime(["2026-07-01"]), "units": [3], "price": [12.0]}),
            )
            conn.execute(
                sa.text("""INSERT INTO alert (dedup_key, rule, kind, severity, ds, retailer, item_id, sku, reason)
                           VALUES ('k1', 'drop', 'price_drop', 'warning', '2026-07-01', 'amazon', 'B001', 'SKU-1',
                                   :r)"""),
                {"r": f"{tenant} price fell"},
            )
    views.refresh(owner)
