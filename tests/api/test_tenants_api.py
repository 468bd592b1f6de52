"""Tenants through the REST API and the apps' data layer: two tenants with the same SKU, retailer and item in one
database; each caller reaches its own tenant's rows only, whatever it asks for, and every refusal is the right
status with no data (anonymous, another tenant's key, a revoked key, an expired token, a viewer writing, over the
rate limit). The apps' views and exports, run as the app role in a kernel bound to one tenant, the same."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import httpx
import pytest

from _api_server import serve
from _fixtures_pg import migrated_database
from _tenants import WORLD, load_two_tenants
from priceintel import config
from priceintel.api import keys, tokens
from priceintel.api.app import create_app
from priceintel.apps import auth
from priceintel.apps import views as dashboard
from priceintel.apps.serve import app_database_url
from priceintel.db import tenancy
from priceintel.db.engine import get_engine

pytestmark = pytest.mark.slow

SETTINGS = config.ApiSettings(secret="tenants-" + "q" * 40, access_minutes=5, refresh_hours=1, rate_per_minute=0)
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def world(pg_server_url) -> Iterator[dict]:
    """Database with tenants acme and globex; per tenant a read, a write and a revoked key, an admin and a viewer."""
    with migrated_database(pg_server_url, "priceintel_tenants_api") as (url, owner):
        yield from _world(url, owner)


def _world(url: str, owner) -> Iterator[dict]:
    load_two_tenants(owner)
    made: dict = {}
    for tenant in WORLD:
        with tenancy.scope(tenant):
            made[tenant] = {s: keys.create_key(owner, f"{tenant} {s}", s, created_by="test")[1] for s in keys.SCOPES}
            revoked_id, made[tenant]["revoked"] = keys.create_key(owner, f"{tenant} old", "read", created_by="test")
            keys.revoke_key(owner, revoked_id, revoked_by="test")
        auth.add_user(owner, f"{tenant}-admin", PASSWORD, role="admin", tenant=tenant)
        auth.add_user(owner, f"{tenant}-viewer", PASSWORD, role="viewer", tenant=tenant)
    app_url = app_database_url(url)
    with serve(create_app(app_url, SETTINGS)) as base:
        yield {"base": base, "keys": made, "owner": owner, "app_url": app_url}


@pytest.fixture()
def client(world) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world["base"], timeout=60) as c:
        yield c


def _key(world, tenant: str, scope: str = "read") -> dict[str, str]:
    return {"Authorization": f"Bearer {world['keys'][tenant][scope]}"}


def _no_data(r: httpx.Response, status: int, asked: str = "") -> None:
    """A JSON error of `status` holding nothing of either tenant's data (but what the caller `asked` for)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["message"]
    text = r.text.replace(asked, "") if asked else r.text
    for name, price, own in WORLD.values():
        assert name not in text and own not in text


def test_each_key_reaches_its_own_tenant_only(world, client):
    for tenant, (name, price, own) in WORLD.items():
        other = next(t for t in WORLD if t != tenant)
        h = _key(world, tenant)
        products = client.get("/v1/products", headers=h).json()["items"]
        assert sorted(p["sku"] for p in products) == sorted(["SKU-1", own])
        assert {p["name"] for p in products} == {name, f"{name} 2"}
        history = client.get("/v1/products/SKU-1/history", headers=h).json()["items"]
        assert [(row["retailer"], row["price"]) for row in history] == [("amazon", price), ("ours", 12)]
        latest = client.get("/v1/prices/latest", headers=h, params={"sku": "SKU-1"}).json()["items"]
        assert [row["price"] for row in latest] == [price]
        prices = client.get("/v1/prices", headers=h).json()["items"]
        assert [(row["sku"], row["price"]) for row in prices] == [("SKU-1", price)]
        csv = client.get("/v1/prices", headers=h, params={"format": "csv"}).text
        assert name in csv and WORLD[other][0] not in csv
        alerts = client.get("/v1/alerts", headers=h).json()["items"]
        assert [a["reason"] for a in alerts] == [f"{tenant} price fell"]
        # the other tenant's SKU does not exist here, and its alert cannot be touched
        _no_data(client.get(f"/v1/products/{WORLD[other][2]}/history", headers=h), 404, asked=WORLD[other][2])
        assert client.get("/v1/prices/latest", headers=h, params={"sku": WORLD[other][2]}).json()["items"] == []
        other_alert = client.get("/v1/alerts", headers=_key(world, other)).json()["items"][0]["alert_id"]
        _no_data(client.post(f"/v1/alerts/{other_alert}/acknowledge", headers=_key(world, tenant, "write")), 404)
        keys_seen = client.get("/v1/keys", headers=_key(world, tenant, "admin")).json()["items"]
        assert keys_seen and all(k["name"].startswith(tenant) for k in keys_seen)
    assert client.get("/v1/alerts", headers=_key(world, "globex")).json()["items"][0]["state"] == "new"


def test_refusals_get_the_right_status_and_no_data(world, client):
    _no_data(client.get("/v1/products"), 401)  # anonymous
    _no_data(client.get("/v1/products", headers={"X-API-Key": world["keys"]["acme"]["revoked"]}), 401)
    _no_data(client.get("/v1/products", headers={"Authorization": "Bearer pik_0123456789ab_" + "x" * 43}), 401)
    viewer = client.post("/v1/auth/token", json={"username": "acme-viewer", "password": PASSWORD}).json()
    vh = {"Authorization": f"Bearer {viewer['access_token']}"}
    assert [p["sku"] for p in client.get("/v1/products", headers=vh).json()["items"]] == sorted(["ACME-ONLY", "SKU-1"])
    alert = client.get("/v1/alerts", headers=vh).json()["items"][0]["alert_id"]
    _no_data(client.post(f"/v1/alerts/{alert}/acknowledge", headers=vh), 403)  # a viewer writes
    account = auth.account_of(world["owner"], "acme-admin")
    expired, _ = tokens.issue(account, "access", SETTINGS, now=time.time() - 3600)
    _no_data(client.get("/v1/products", headers={"Authorization": f"Bearer {expired}"}), 401)
    # a token naming another tenant than its user's is refused (the user is not found there)
    forged, _ = tokens.issue(account._replace(tenant="globex"), "access", SETTINGS)
    _no_data(client.get("/v1/products", headers={"Authorization": f"Bearer {forged}"}), 401)
    # an admin of acme signs in and sees acme only
    admin = client.post("/v1/auth/token", json={"username": "acme-admin", "password": PASSWORD}).json()
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {admin['access_token']}"}).json()
    assert me["name"] == "acme-admin" and me.get("tenant") == "acme"


def test_over_the_rate_limit_is_429_with_retry_after(world):
    app = create_app(world["app_url"], dataclasses.replace(SETTINGS, rate_per_minute=3))
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as c:
        h = _key(world, "acme")
        assert [c.get("/v1/products", headers=h).status_code for _ in range(3)] == [200] * 3
        over = c.get("/v1/products", headers=h)
        _no_data(over, 429)
        assert int(over.headers["Retry-After"]) >= 1
        assert c.get("/v1/products", headers=_key(world, "globex")).status_code == 200  # another caller's bucket


def test_the_apps_views_and_exports_show_one_tenant(world):
    """The apps' data layer as an app kernel runs it: the app role, bound to the signed-in user's tenant."""
    app = get_engine(world["app_url"])
    f = dashboard.Filters()
    try:
        for tenant, (name, price, own) in WORLD.items():
            other = next(t for t in WORLD if t != tenant)
            tenancy.bind(tenant)
            for view in dashboard.VIEWS:
                text = dashboard.page(app, view, f, limit=100).rows.to_csv()
                assert WORLD[other][0] not in text and WORLD[other][2] not in text
            rows = dashboard.page(app, "prices", f, limit=100).rows
            assert list(rows["price"]) == [price] and set(rows["name"]) == {name}
            frames = dashboard.export_frames(app, "prices", f)
            dumped = "".join(df.to_csv() for df in frames.values())
            assert name in dumped and WORLD[other][0] not in dumped
            options = dashboard.filter_options(app)
            assert name in str(options) and WORLD[other][0] not in str(options)
        tenancy.bind(None)  # a kernel without a tenant sees nothing at all
        assert dashboard.page(app, "prices", f, limit=100).rows.empty
    finally:
        tenancy.bind(None)


def test_plans_limit_and_usage_is_metered(world, client):
    """acme is on the free plan: 60 requests a minute per key (429 + Retry-After beyond), 100 products (403 beyond,
    nothing stored); /v1/usage shows the plan, its limits and today's requests and exports."""
    with tenancy.scope("acme"):
        _, fresh = keys.create_key(world["owner"], "acme burst", "read", created_by="test")
    h = {"Authorization": f"Bearer {fresh}"}
    # a token bucket of 60 that refills one a second: the burst gets 60, plus one per second it lasted
    start, codes = time.monotonic(), []
    while not codes or (codes[-1] == 200 and len(codes) < 200):
        over = client.get("/v1/me", headers=h)
        codes.append(over.status_code)
    seconds = time.monotonic() - start
    assert codes[-1] == 429 and set(codes[:-1]) == {200}, codes
    assert 60 <= len(codes) - 1 <= 60 + int(seconds) + 1, (len(codes), seconds)
    _no_data(over, 429)
    assert "plan free allows 60 requests a minute" in over.json()["error"]["message"]
    assert int(over.headers["Retry-After"]) >= 1
    csv = client.get("/v1/prices", headers=_key(world, "acme"), params={"format": "csv"})
    assert csv.status_code == 200
    rows = "sku,name\n" + "".join(f"BULK-{i:03d},thing {i}\n" for i in range(120))
    refused = client.post("/v1/catalogue", headers={**_key(world, "acme", "write"), "Content-Type": "text/csv"},
                          content=rows)
    _no_data(refused, 403)
    assert "plan free: at most 100 tracked products" in refused.json()["error"]["message"]
    assert [p["sku"] for p in client.get("/v1/products", headers=_key(world, "acme")).json()["items"]] == [
        "ACME-ONLY", "SKU-1"]  # nothing of the refused file
    used = client.get("/v1/usage", headers=_key(world, "acme", "admin")).json()
    assert used["tenant"] == "acme" and used["plan"] == "free"
    assert used["limits"] == {"products": 100, "watches": 250, "checks_per_day": 500, "requests_per_minute": 60}
    today = used["items"][0]
    assert today["requests"] >= 61 and today["exports"] >= 1 and today["products"] == 2
    assert used["checks_left_today"] == 500
    other = client.get("/v1/usage", headers=_key(world, "globex", "admin")).json()
    assert other["tenant"] == "globex" and (not other["items"] or other["items"][0]["requests"] < 61)
