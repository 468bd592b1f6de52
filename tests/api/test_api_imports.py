"""The API's imports and alert rules, on a real server over the session database (as its app role): prices
observed elsewhere (JSON and CSV, errors per row, idempotent, who imported), catalogue and sales CSV, rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from _api_server import serve
from priceintel import config
from priceintel.api import keys
from priceintel.api.app import create_app
from priceintel.apps.serve import app_database_url
from priceintel.db import tenancy

RULES = """rules:
  - name: big-drops
    kind: price_drop
    threshold: 10
"""


@pytest.fixture(scope="module")
def server(pg_url, pg_engine, tmp_path_factory) -> Iterator[tuple[str, dict, sa.Engine]]:
    """(base URL, {scope: key}, owner engine) of an API on the session database."""
    with tenancy.as_owner(), pg_engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE api_key")
    made = {s: keys.create_key(pg_engine, f"imports {s}", s, created_by="test")[1] for s in ("read", "write")}
    settings = config.ApiSettings(secret="imports-" + "z" * 40, rate_per_minute=0)
    app = create_app(app_database_url(pg_url), settings)
    with serve(app) as url:
        yield url, made, pg_engine


@pytest.fixture()
def api(server, clean_db, monkeypatch, tmp_path) -> Iterator[tuple[httpx.Client, dict, sa.Engine]]:
    url, made, engine = server
    with tenancy.as_owner(), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE import_run RESTART IDENTITY CASCADE")
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path / "data"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("PRICEINTEL_ALERT_RULES", str(rules))
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client, made, engine


def _auth(key: str, **headers: str) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


def test_observations_as_json_with_errors_per_object(api, tmp_path):
    client, made, engine = api
    rows = [
        {"retailer": "amazon", "item_id": "B01", "date": "2026-07-01", "price": 12.99, "currency": "USD",
         "in_stock": True, "title": "Blender"},
        {"retailer": "amazon", "item_id": "B01", "date": "2026-07-02", "price": "11.49 USD"},
        {"retailer": "amazon", "item_id": "B02", "date": "yesterday-ish", "price": "1 USD"},
        {"retailer": "walmart", "item_id": "W9", "date": "2026-07-01", "price": "€9,50"},
    ]
    r = client.post("/v1/observations", headers=_auth(made["write"]), json=rows)
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "partial" and body["counts"]["inserted"] == 3 and body["counts"]["rejected"] == 1
    assert body["rejected"] == [{"row": 4, "index": 2, "column": "date", "value": "yesterday-ish",
                                 "reason": "unreadable date 'yesterday-ish' (use YYYY-MM-DD)"}]
    # the same objects again: nothing changes
    again = client.post("/v1/observations", headers=_auth(made["write"]), json=rows).json()
    assert again["counts"]["unchanged"] == 3 and again["counts"]["inserted"] == 0
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT kind, imported_by, path FROM import_run ORDER BY 1")).all()
        prices = conn.execute(sa.text("SELECT count(*) FROM fact_price")).scalar()
    assert [(k, b) for k, b, _ in runs] == [("prices", "key:imports write")] * 2 and prices == 3
    uploads = tmp_path / "data" / "imports" / "uploads"
    assert all(Path(p).parent == uploads and Path(p).is_file() for *_, p in runs)  # the body is kept as a file


def test_observations_as_csv_strict_and_refusals(api, monkeypatch):
    client, made, _ = api
    csv = "retailer,item_id,date,price\namazon,B1,2026-07-01,5.00 USD\namazon,B2,2026-07-01,n/a\n"
    r = client.post("/v1/observations", headers=_auth(made["write"], **{"content-type": "text/csv"}),
                    content=csv, params={"strict": "true"})
    assert r.status_code == 400 and "rejected" in r.json()["error"]["message"]
    r = client.post("/v1/observations", headers=_auth(made["write"], **{"content-type": "text/csv"}), content=csv)
    assert r.json()["counts"]["inserted"] == 1
    cases = [
        ({"content-type": "application/json"}, b"{oops", 400, "not valid JSON"),
        ({"content-type": "application/json"}, b"[]", 400, "non-empty JSON list"),
        ({"content-type": "application/json"}, b'[1, 2]', 400, "list of objects"),
        ({"content-type": "application/xml"}, b"<x/>", 415, "text/csv"),
        ({"content-type": "text/csv"}, b"   ", 400, "empty"),
        ({"content-type": "text/csv"}, b"a,b\n1,2\n", 400, "no retailer, item_id, date, price column"),
    ]
    for headers, content, status, words in cases:
        r = client.post("/v1/observations", headers=_auth(made["write"], **headers), content=content)
        assert r.status_code == status and words in r.json()["error"]["message"], (content, r.text)
    r = client.post("/v1/observations", headers=_auth(made["read"]), json=[{"retailer": "x"}])
    assert r.status_code == 403
    # an object without any value is named, not silently dropped
    r = client.post("/v1/observations", headers=_auth(made["write"]),
                    json=[{"retailer": "amazon", "item_id": "B9", "date": "2026-07-01", "price": "1 USD"},
                          {"retailer": None, "price": ""}])
    assert r.status_code == 400 and "index 1 hold no value" in r.json()["error"]["message"]
    # a body over the limit is refused while it is read (the server runs in this process: a small limit)
    from priceintel.api import imports

    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 64)
    r = client.post("/v1/catalogue", headers=_auth(made["write"], **{"content-type": "text/csv"}),
                    content=b"id,title\n" + b"A1,Blender\n" * 20)
    assert r.status_code == 413 and "over" in r.json()["error"]["message"]
    r = client.post("/v1/observations", headers=_auth(made["write"]), json=[{"retailer": "x" * 100}])
    assert r.status_code == 413


def test_catalogue_and_sales_imports(api):
    client, made, engine = api
    csv = {"content-type": "text/csv"}
    cat = client.post("/v1/catalogue", headers=_auth(made["write"], **csv),
                      content="id,title,price\nA1,Blender,15.00 USD\nA2,Toaster,oops\n")
    assert cat.status_code == 200 and cat.json()["counts"]["inserted"] == 1, cat.text
    assert "oops" in cat.json()["rejected"][0]["reason"] and cat.json()["rejected"][0]["row"] == 3
    sales = client.post("/v1/sales", headers=_auth(made["write"], **csv),
                        content="sku,date,units\nA1,2026-07-01,3\nZZ,2026-07-01,1\n")
    body = sales.json()
    assert body["counts"]["inserted"] == 1 and "unknown sku 'ZZ'" in body["rejected"][0]["reason"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fact_sales")).scalar() == 1
        assert set(conn.execute(sa.text("SELECT imported_by FROM import_run")).scalars()) == {"key:imports write"}


def test_alert_rules_read_replace_and_switch(api):
    client, made, _ = api
    got = client.get("/v1/alert-rules", headers=_auth(made["read"])).json()
    assert got["text"] == RULES and got["rules"][0]["name"] == "big-drops"
    bad = client.put("/v1/alert-rules", headers=_auth(made["write"]), json={"text": "rules:\n  - name: x\n"})
    assert bad.status_code == 400 and "invalid alert rules" in bad.json()["error"]["message"]
    assert client.get("/v1/alert-rules", headers=_auth(made["read"])).json()["text"] == RULES  # unchanged
    new = RULES.replace("10", "15")
    put = client.put("/v1/alert-rules", headers=_auth(made["write"]), json={"text": new})
    assert put.status_code == 200 and put.json()["rules"][0]["threshold"] == 15
    off = client.patch("/v1/alert-rules/big-drops", headers=_auth(made["write"]), json={"enabled": False})
    assert off.json()["rules"][0]["enabled"] is False
    missing = client.patch("/v1/alert-rules/nope", headers=_auth(made["write"]), json={"enabled": True})
    assert missing.status_code == 404 and "no alert rule named 'nope'" in missing.json()["error"]["message"]
    assert client.put("/v1/alert-rules", headers=_auth(made["read"]), json={"text": new}).status_code == 403
