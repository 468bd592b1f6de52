"""The REST API as programs meet it: a real uvicorn server on loopback over the pipeline's database, connected as
the database's app role; API keys, bearer tokens, roles and scopes, JSON errors, keyset pages, CSV, writes
that record who made them, and a property-based walk over every GET route that must never answer 5xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _api_server import serve
from priceintel import config
from priceintel.api import keys, tokens
from priceintel.api.app import create_app
from priceintel.apps import auth
from priceintel.apps.serve import app_database_url
from priceintel.db.engine import get_engine

pytestmark = pytest.mark.slow

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def owner(pipeline_env, pipeline_db):
    """The pipeline database as its owner, with one user per role and one key per scope."""
    engine = get_engine(pipeline_db)
    for name, role in (("api-admin", "admin"), ("api-analyst", "analyst"), ("api-viewer", "viewer")):
        auth.add_user(engine, name, PASSWORD, replace=True, role=role)
    return engine


@pytest.fixture(scope="module")
def api_keys(owner) -> dict[str, str]:
    return {scope: keys.create_key(owner, f"test {scope}", scope, created_by="test")[1] for scope in keys.SCOPES}


@pytest.fixture(scope="module")
def api_settings() -> config.ApiSettings:
    return config.ApiSettings(secret=SECRET, access_minutes=5, refresh_hours=1, rate_per_minute=0)


@pytest.fixture(scope="module")
def base(owner, pipeline_db, api_settings) -> Iterator[str]:
    app = create_app(app_database_url(pipeline_db), api_settings)
    assert app.state.engine.url.username.endswith("_app")  # the app role, never the owner
    with serve(app) as url:
        yield url


@pytest.fixture()
def client(base) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == r.status_code, body
    return body["error"]["message"]


def test_health_and_readiness(client, base, capsys):
    from priceintel import cli

    assert cli.main(["probe", base, base + "/health"]) == 0  # the uptime probe sees the API up
    assert capsys.readouterr().out.count("up    ") == 2
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    from priceintel.db import migrate

    assert ready.json()["migrations"] == migrate.head()


def test_who_gets_in(client, owner, api_keys):
    r = client.get("/v1/products")
    assert r.status_code == 401 and "authentication required" in error_of(r)
    assert r.headers["www-authenticate"] == "Bearer"
    for bad in ("pik_000000000000_" + "A" * 43, "pik_nonsense", "not.a.jwt", api_keys["read"][:-1] + "?"):
        r = client.get("/v1/products", headers=bearer(bad))
        assert r.status_code == 401, bad
    # the key in the X-API-Key header works too; a bearer token there does not
    assert client.get("/v1/me", headers={"X-API-Key": api_keys["read"]}).json() == {
        "kind": "key", "name": "test read", "access": "read", "tenant": "demo"}
    r = client.get("/v1/me", headers={"X-API-Key": "eyJhbGciOiJIUzI1NiJ9.e30.x"})
    assert r.status_code == 401 and "X-API-Key takes an API key" in error_of(r)
    # a revoked key stops at once
    key_id, key = keys.create_key(owner, "short-lived", "read", created_by="test")
    assert client.get("/v1/me", headers=bearer(key)).status_code == 200
    assert keys.revoke_key(owner, key_id, revoked_by="test") is True
    r = client.get("/v1/me", headers=bearer(key))
    assert r.status_code == 401 and "revoked" in error_of(r)
    listed = keys.list_keys(owner).set_index("key_id")
    assert listed.loc[key_id, "revoked_by"] == "test" and listed.loc[key_id, "last_used_at"] is not None
    assert "secret_hash" not in listed.columns


def test_scopes_and_roles(client, api_keys, owner):
    read = bearer(api_keys["read"])
    products = client.get("/v1/products", headers=read)
    assert products.status_code == 200 and len(products.json()["items"]) > 0
    r = client.post("/v1/watches", headers=read, json=[{"url": "https://shop.example/p/1"}])
    assert r.status_code == 403 and "needs write access" in error_of(r)
    r = client.get("/v1/keys", headers=bearer(api_keys["write"]))
    assert r.status_code == 403 and "needs admin access" in error_of(r)
    assert client.get("/v1/keys", headers=bearer(api_keys["admin"])).status_code == 200
    # users: the role decides, read from the database on every request
    viewer = client.post("/v1/auth/token", json={"username": "api-viewer", "password": PASSWORD}).json()
    assert viewer["role"] == "viewer"
    assert client.get("/v1/alerts", headers=bearer(viewer["access_token"])).status_code == 200
    r = client.post("/v1/alerts/1/acknowledge", headers=bearer(viewer["access_token"]))
    assert r.status_code == 403 and "user:api-viewer (role read)" in error_of(r)
    auth.set_role(owner, "api-viewer", "analyst")
    try:
        r = client.post("/v1/watches", headers=bearer(viewer["access_token"]), json=[{"url": "nope"}])
        assert r.status_code == 200 and r.json()["errors"][0]["index"] == 0  # now allowed; the row is refused
    finally:
        auth.set_role(owner, "api-viewer", "viewer")
    assert client.post("/v1/watches", headers=bearer(viewer["access_token"]), json=[{"url": "nope"}]).status_code == 403


def test_tokens_sign_in_refresh_and_end(client, owner, api_settings):
    r = client.post("/v1/auth/token", json={"username": "api-analyst", "password": "wrong password"})
    assert r.status_code == 401 and error_of(r) == "wrong username or password"
    r = client.post("/v1/auth/token", json={"username": "nobody-here", "password": PASSWORD})
    assert r.status_code == 401 and error_of(r) == "wrong username or password"  # the same for unknown users
    got = client.post("/v1/auth/token", json={"username": "api-analyst", "password": PASSWORD}).json()
    assert got["token_type"] == "bearer" and got["expires_in"] == 300 and got["role"] == "analyst"
    assert client.get("/v1/me", headers=bearer(got["access_token"])).json() == {
        "kind": "user", "name": "api-analyst", "access": "write", "tenant": "demo"}
    # a refresh token is no access token, and the other way round
    r = client.get("/v1/me", headers=bearer(got["refresh_token"]))
    assert r.status_code == 401 and "refresh token was given" in error_of(r)
    assert client.post("/v1/auth/refresh", json={"refresh_token": got["access_token"]}).status_code == 401
    again = client.post("/v1/auth/refresh", json={"refresh_token": got["refresh_token"]})
    assert again.status_code == 200 and client.get("/v1/me", headers=bearer(again.json()["access_token"])).is_success
    # an expired token, and one signed with another key
    account = auth.account_of(owner, "api-analyst")
    old, _ = tokens.issue(account, "access", api_settings, now=time.time() - 3600)
    r = client.get("/v1/me", headers=bearer(old))
    assert r.status_code == 401 and "expired" in error_of(r)
    forged, _ = tokens.issue(account, "access", config.ApiSettings(secret="another-" + "y" * 40))
    assert client.get("/v1/me", headers=bearer(forged)).status_code == 401
    # signing out of the apps (a new session version) ends every token of the user
    assert auth.end_sessions(owner, "api-analyst")
    for token in (got["access_token"], again.json()["access_token"]):
        r = client.get("/v1/me", headers=bearer(token))
        assert r.status_code == 401 and "session has ended" in error_of(r)
    assert client.post("/v1/auth/refresh", json={"refresh_token": got["refresh_token"]}).status_code == 401


def test_failed_sign_ins_slow_down(base, owner, pipeline_db, api_settings):
    with serve(create_app(app_database_url(pipeline_db), api_settings)) as url, httpx.Client(base_url=url) as c:
        codes = [c.post("/v1/auth/token", json={"username": "api-admin", "password": f"guess {i}"}).status_code
                 for i in range(8)]
        assert codes[0] == 401 and codes[-1] == 429, codes
        r = c.post("/v1/auth/token", json={"username": "api-admin", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right password waits


def test_rate_limit_answers_429_with_retry_after(owner, pipeline_db, api_keys):
    limited = config.ApiSettings(secret=SECRET, rate_per_minute=3)
    with serve(create_app(app_database_url(pipeline_db), limited)) as url, httpx.Client(base_url=url) as c:
        codes = [c.get("/v1/me", headers=bearer(api_keys["read"])).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/me", headers=bearer(api_keys["read"]))
        assert r.status_code == 429 and r.headers["retry-after"] == "20" and "rate limit" in error_of(r)
        # another caller has a bucket of its own
        assert c.get("/v1/me", headers=bearer(api_keys["write"])).status_code == 200


def _statements_sent(traces: list) -> int:
    """Statements a client sent in libpq traces (each ends in a Query or, extended protocol, a Sync message)."""
    n = 0
    for path in traces:
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            n += len(parts) > 3 and parts[1] == "F" and parts[3].split(" ")[0] in ("Query", "Sync")
    return n


def test_the_json_routes_take_seven_database_round_trips(owner, pipeline_db, api_keys, api_settings, tmp_path):
    """Latest prices and a product's history, as JSON: a pool ping and the key lookup (autocommit), a pool ping,
    BEGIN, the tenant, one statement (the sku checked in it), COMMIT; they took 10 and 15 round trips before (the
    tenant's plan, looked up every 30 s, is kept for the test's time)."""
    from sqlalchemy import event
    from starlette.testclient import TestClient

    app = create_app(app_database_url(pipeline_db), api_settings)
    app.state.meter.due = lambda: False  # the usage counts are written every few seconds: not in this count
    traces: list = []

    def trace(dbapi_conn, record, proxy):  # every connection the requests check out, traced once
        if "trace" not in record.info:
            record.info["trace"] = path = tmp_path / f"pq-{len(traces)}.txt"
            record.info["file"] = path.open("w")
            dbapi_conn.pgconn.trace(record.info["file"].fileno())
            traces.append(path)

    h = bearer(api_keys["read"])
    with TestClient(app) as c:
        sku = c.get("/v1/products", headers=h).json()["items"][0]["sku"]
        app.state.plans = {t: (plan, float("inf")) for t, (plan, _) in app.state.plans.items()}  # no re-read
        app.state.engine.dispose()  # new connections, all traced (the engine is shared with earlier tests)
        event.listen(app.state.engine, "checkout", trace)
        try:
            for path in (f"/v1/prices/latest?sku={sku}", f"/v1/products/{sku}/history"):
                for _ in range(10):  # connections traced, statements prepared (psycopg prepares at the 5th use)
                    assert c.get(path, headers=h).status_code == 200
                before = _statements_sent(traces)
                for _ in range(10):
                    assert c.get(path, headers=h).status_code == 200
                assert (_statements_sent(traces) - before) / 10 == 7, path
        finally:
            event.remove(app.state.engine, "checkout", trace)
            app.state.engine.dispose()  # the traced connections go


def test_keyset_pages_cover_the_view_once_and_csv_matches(client, api_keys):
    h = bearer(api_keys["read"])
    first = client.get("/v1/prices", headers=h, params={"limit": 1}).json()["items"][0]
    params = {"sku": first["sku"], "limit": 7}
    seen, after, pages = [], None, 0
    while True:
        body = client.get("/v1/prices", headers=h, params={**params, **({"after": after} if after else {})}).json()
        seen += [(r["ds"], r["retailer"], r["listing_id"]) for r in body["items"]]
        pages += 1
        if not body["has_more"]:
            assert body["next"] is None
            break
        after = body["next"]
    assert pages > 1 and len(seen) == len(set(seen))
    assert seen == sorted(seen, key=lambda k: (-int(k[0].replace("-", "")), k[1], k[2]))  # newest first
    csv = client.get("/v1/prices", headers=h, params={"sku": first["sku"], "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.split("\r\n")
    assert lines[0].startswith("ds,retailer,sku") and len([x for x in lines[1:] if x]) == len(seen)
    # the same rows as Parquet, typed (dates, numbers), streamed as row groups
    import io

    import pyarrow.parquet as pq

    pqt = client.get("/v1/prices", headers=h, params={"sku": first["sku"], "format": "parquet"})
    assert pqt.status_code == 200 and pqt.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="prices.parquet"' in pqt.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(pqt.content))
    assert table.num_rows == len(seen) and str(table.schema.field("ds").type) == "date32[day]"
    got = sorted((r["ds"].isoformat(), r["retailer"], r["listing_id"]) for r in table.to_pylist())
    assert got == sorted(seen)
    assert str(table.schema.field("price").type) == "double"
    # a filter that matches nothing: an empty page, and a CSV with the header alone
    empty = client.get("/v1/prices", headers=h, params={"sku": first["sku"], "start": "1990-01-01",
                                                         "end": "1990-01-02"})
    assert empty.json() == {"items": [], "next": None, "has_more": False}


def test_bad_input_is_a_clear_json_error(client, api_keys):
    h = bearer(api_keys["read"])
    cases = {
        "/v1/prices?limit=0": (422, "query.limit"),
        "/v1/prices?limit=abc": (422, "query.limit"),
        "/v1/prices?start=2026-13-01": (422, "query.start"),
        "/v1/prices?start=2026-07-02&end=2026-07-01": (400, "after filter end"),
        "/v1/prices?after=bm90LWEtY3Vyc29y": (400, "after"),
        "/v1/prices?after=WzFd": (400, "does not fit view"),
        "/v1/prices?retailer=nowhere": (400, "nowhere"),
        "/v1/products/NO-SUCH-SKU/history": (404, "unknown sku"),
        "/v1/alerts?format=xml": (422, "query.format"),
        "/v1/nothing-here": (404, "no such endpoint"),
    }
    for path, (status, words) in cases.items():
        r = client.get(path, headers=h)
        assert r.status_code == status and words in error_of(r), (path, r.status_code, r.text)
    r = client.post("/v1/watches", headers={**bearer(api_keys["write"]), "content-type": "application/json"},
                    content=b"{not json")
    assert r.status_code == 422 and "body" in error_of(r)


def test_writes_record_who_made_them(client, owner, api_keys):
    w = bearer(api_keys["write"])
    r = client.post("/v1/watches", headers=w, json=[
        {"url": "https://shop.example/p/api-1", "retailer": "example"},
        {"url": "ftp://shop.example/p/2"},
        {"url": "https://shop.example/p/api-3", "retailer": "example", "sku": "NO-SUCH-SKU"},
    ])
    body = r.json()
    assert r.status_code == 200 and [e["index"] for e in body["errors"]] == [1, 2]
    watch_id = body["watches"][0]["watch_id"]
    with owner.connect() as conn:
        assert conn.execute(sa.text("SELECT changed_by FROM watch WHERE watch_id = :w"),
                            {"w": watch_id}).scalar() == "key:test write"
    assert client.delete(f"/v1/watches/{watch_id}", headers=w).json() == {"watch_id": watch_id, "stopped": True}
    assert client.delete("/v1/watches/999999", headers=w).status_code == 404
    # an alert of our own, acknowledged then resolved through the API
    with owner.begin() as conn:
        alert_id = conn.execute(sa.text(
            "INSERT INTO alert (dedup_key, rule, kind, severity, ds, reason) "
            "VALUES ('api-test', 'api', 'price_drop', 'info', current_date, 'test') RETURNING alert_id")).scalar()
    try:
        r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=w)
        assert r.json() == {"alert_id": alert_id, "state": "acknowledged", "changed": True, "by": "key:test write"}
        assert client.post(f"/v1/alerts/{alert_id}/resolve", headers=w).json()["changed"] is True
        with owner.connect() as conn:
            row = conn.execute(sa.text("SELECT state, state_by, resolved_by FROM alert WHERE alert_id = :a"),
                               {"a": alert_id}).one()
        assert tuple(row) == ("resolved", "key:test write", "key:test write")
        assert client.post("/v1/alerts/2147483647/resolve", headers=w).status_code == 404
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("DELETE FROM alert WHERE alert_id = :a"), {"a": alert_id})
    # a match decision: unknown listings are per-row errors
    r = client.post("/v1/matches/decisions", headers=w, json=[
        {"retailer": "nowhere", "item_id": "1", "sku": "X", "same_product": True}])
    assert r.status_code == 200 and "not in dim_listing" in r.json()["errors"][0]["message"]


def test_match_decision_through_the_api(client, owner, api_keys):
    # a listing of our own waiting for review (the demo run's queue is shared with other tests)
    with owner.begin() as conn:
        sku, product_id = conn.execute(sa.text("SELECT sku, product_id FROM dim_product ORDER BY sku LIMIT 1")).one()
        retailer, retailer_id = conn.execute(sa.text(
            "SELECT retailer, retailer_id FROM dim_retailer ORDER BY retailer LIMIT 1")).one()
        listing_id = conn.execute(sa.text(
            "INSERT INTO dim_listing (retailer_id, item_id, title) VALUES (:r, 'api-review-1', 'A thing') "
            "RETURNING listing_id"), {"r": retailer_id}).scalar()
        conn.execute(sa.text("INSERT INTO product_match (listing_id, product_id, method, score, status) "
                             "VALUES (:l, :p, 'fuzzy', 0.51, 'review')"), {"l": listing_id, "p": product_id})
    try:
        queue = client.get("/v1/matches/review", headers=bearer(api_keys["read"]), params={"limit": 1000})
        assert any(q["item_id"] == "api-review-1" for q in queue.json()["items"])
        r = client.post("/v1/matches/decisions", headers=bearer(api_keys["write"]), json=[
            {"retailer": retailer, "item_id": "api-review-1", "sku": sku, "same_product": True}])
        assert r.json()["decisions"][0]["status"] == "confirmed" and not r.json()["errors"]
        with owner.connect() as conn:
            label = conn.execute(sa.text("SELECT labelled_by, source, label FROM match_label WHERE listing_id = :l"),
                                 {"l": listing_id}).one()
            status = conn.execute(sa.text("SELECT status FROM product_match WHERE listing_id = :l"),
                                  {"l": listing_id}).scalar()
        assert tuple(label) == ("key:test write", "api", True) and status == "confirmed"
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("DELETE FROM dim_listing WHERE listing_id = :l"), {"l": listing_id})


def test_keys_made_and_revoked_through_the_api(client, api_keys):
    admin = bearer(api_keys["admin"])
    made = client.post("/v1/keys", headers=admin, json={"name": "partner feed", "scope": "read"})
    assert made.status_code == 201 and made.json()["key"].startswith("pik_")
    assert client.get("/v1/me", headers=bearer(made.json()["key"])).json()["name"] == "partner feed"
    listed = client.get("/v1/keys", headers=admin).json()["items"]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert any(k["key_id"] == made.json()["key_id"] and k["created_by"] == "key:test admin" for k in listed)
    assert client.delete(f"/v1/keys/{made.json()['key_id']}", headers=admin).json()["changed"] is True
    assert client.get("/v1/me", headers=bearer(made.json()["key"])).status_code == 401
    r = client.post("/v1/keys", headers=admin, json={"name": "bad\nname", "scope": "read"})
    assert r.status_code == 400 and "key name" in error_of(r)
    assert client.post("/v1/keys", headers=admin, json={"name": "x", "scope": "root"}).status_code == 422


def test_every_read_route_answers_json_or_csv(client, api_keys):
    h = bearer(api_keys["read"])
    sku = client.get("/v1/products", headers=h).json()["items"][0]["sku"]
    for path in ("/v1/products", f"/v1/products/{quote(sku)}/history", "/v1/prices/latest", "/v1/price-index",
                 "/v1/forecasts", "/v1/elasticities", "/v1/alerts", "/v1/watches", "/v1/matches/review"):
        r = client.get(path, headers=h)
        assert r.status_code == 200 and isinstance(r.json()["items"], list), path
        c = client.get(path, headers=h, params={"format": "csv"})
        assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv"), path
    # a download's file name is safe whatever the name asked for (quotes, non-Latin letters)
    from priceintel.api.routes import attachment

    header = attachment('Ölfilter "x"/ü')["Content-Disposition"]
    assert header == "attachment; filename=\"lfilter_x.csv\"; filename*=UTF-8''%C3%96lfilter%20%22x%22%2F%C3%BC.csv"
    hist = client.get(f"/v1/products/{quote(sku)}/history", headers=h, params={"start": "2000-01-01"}).json()
    assert hist["items"] and {"retailer", "ds", "price"} <= set(hist["items"][0])
    runs = client.get("/v1/runs", headers=h).json()
    assert runs["pipeline"] and runs["pipeline"][0]["status"] in ("success", "failed", "running")


def test_openapi_document_is_committed_and_current(base):
    import json

    served = httpx.get(f"{base}/openapi.json").json()
    committed = json.loads((config.PROJ_ROOT / "docs" / "openapi.json").read_text())
    assert served == committed, "docs/openapi.json is out of date: run `python -m priceintel.api.openapi`"
    assert httpx.get(f"{base}/docs").status_code == 200


_WORDS = st.sampled_from(["", "a", "amazon", "2026-07-01", "-1", "0", "1", "99999999999", "x" * 300, "%00",
                          "é", "null", "[1]", "WzFd", "true", "2026-02-30", "' OR 1=1 --"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["/v1/products", "/v1/prices", "/v1/forecasts", "/v1/elasticities", "/v1/alerts",
                              "/v1/prices/latest", "/v1/price-index", "/v1/watches", "/v1/matches/review",
                              "/v1/runs", "/v1/products/{w}/history", "/v1/keys"]),
       params=st.dictionaries(st.sampled_from(["start", "end", "retailer", "category", "sku", "after", "limit",
                                               "format", "include_inactive"]), _WORDS, max_size=4),
       word=_WORDS)
def test_no_input_makes_a_5xx(client, api_keys, route, params, word):
    path = route.replace("{w}", quote(word, safe="") or "x")
    r = client.get(path, headers=bearer(api_keys["admin"]), params=params)
    assert r.status_code < 500, (path, params, r.status_code, r.text[:300])
    if r.status_code >= 400:
        error_of(r)  # every error is the JSON shape with a message


def test_streamed_downloads_at_once_are_bounded(owner, pipeline_db, api_settings, api_keys):
    import threading

    from priceintel.api.routes import _Once

    app = create_app(app_database_url(pipeline_db), api_settings)
    app.state.exports = threading.BoundedSemaphore(1)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        h = bearer(api_keys["read"])
        for _ in range(3):  # each finished download gives its slot back
            assert c.get("/v1/alerts", headers=h, params={"format": "csv"}).status_code == 200
        app.state.exports.acquire()  # a download in progress elsewhere
        r = c.get("/v1/alerts", headers=h, params={"format": "csv"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "too many downloads" in error_of(r)
        app.state.exports.release()
        assert c.get("/v1/alerts", headers=h, params={"format": "csv"}).status_code == 200
    calls: list[int] = []
    once = _Once(lambda: calls.append(1))
    once()
    once()
    del once
    dropped = _Once(lambda: calls.append(2))
    del dropped  # a stream dropped before its first chunk still gives its slot back
    assert calls == [1, 2]
