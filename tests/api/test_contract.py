"""Property-based contract tests of the REST API (schemathesis, issue #19): requests generated from the OpenAPI
document, valid and invalid, to every operation (reads and writes) of a real uvicorn server on loopback, once
with an admin API key (so the deep paths are reached) and once without credentials (or with made-up ones).

No answer is a 5xx; every 4xx is the API's JSON error `{"error": {"status": …, "message": "…"}}` with a message;
status codes, content types and bodies are the ones the document declares. Reproducible: a fixed seed,
derandomized Hypothesis, no example database.

The service runs on a database of this module's own (migrated, then seeded through the API itself) with its data
folder and alert rule file in a temporary folder, so the generated writes touch nothing another test reads.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from _api_server import serve
from priceintel import config
from priceintel.api import keys
from priceintel.api.app import create_app
from priceintel.apps.serve import app_database_url

pytestmark = pytest.mark.slow

#: the document under test: the one the service serves (`test_the_document_is_the_served_one`)
OPENAPI = config.PROJ_ROOT / "docs" / "openapi.json"
SEED = 19
#: generated requests per operation beyond schemathesis's coverage cases (boundaries, missing and wrong-typed
#: parameters): 29 operations, the whole module in about a minute on two cores
ADMIN_EXAMPLES = 20
ANONYMOUS_EXAMPLES = 8

RULES = """rules:
  - name: big-drops
    kind: price_drop
    threshold: 0.1
  - name: undercut
    kind: undercut
"""


# ------------------------------------------------------------------------------------------ the service


@pytest.fixture(scope="module")
def contract_folder(tmp_path_factory) -> Iterator[str]:
    """A data folder and alert rule file of this module's own (uploads, archives, PUT /v1/alert-rules)."""
    root = tmp_path_factory.mktemp("contract")
    rules = root / "alert_rules.yaml"
    rules.write_text(RULES)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRICEINTEL_DATA_DIR", str(root / "data"))
        mp.setenv("PRICEINTEL_ALERT_RULES", str(rules))
        yield str(root)


@pytest.fixture(scope="module")
def contract_db(pg_server_url, contract_folder) -> Iterator[str]:
    """A fresh database for this module, migrated to head (dropped at the end)."""
    from priceintel.db.engine import create_database, drop_database
    from priceintel.db.migrate import upgrade

    name = f"priceintel_contract_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(pg_server_url, name)


def _seed(client: httpx.Client, owner: sa.Engine) -> None:
    """A small world through the API itself: a catalogue, prices of three shops over a week, sales, a watch,
    an open alert and a match waiting for review."""
    csv = {"content-type": "text/csv"}
    r = client.post(
        "/v1/catalogue",
        headers=csv,
        content="id,title,price,category\nSKU-1,Blender,49.00 USD,kitchen\n"
        "SKU-2,Toaster,25.00 USD,kitchen\nSKU-3,Kettle,19.99 USD,kitchen\n",
    )
    assert r.status_code == 200 and r.json()["counts"]["inserted"] == 3, r.text
    rows = [
        {
            "retailer": shop,
            "item_id": f"{shop}-{n}",
            "date": f"2026-07-0{day}",
            "price": round(price - day * 0.5, 2),
            "currency": "USD",
            "in_stock": day % 3 != 0,
            "title": title,
        }
        for shop in ("amazon", "walmart", "target")
        for n, (title, price) in enumerate((("Blender", 47.0), ("Toaster", 24.0), ("Kettle", 21.0)), start=1)
        for day in range(1, 8)
    ]
    r = client.post("/v1/observations", json=rows)
    assert r.status_code == 200 and r.json()["counts"]["inserted"] == len(rows), r.text
    r = client.post("/v1/sales", headers=csv, content="sku,date,units\nSKU-1,2026-07-01,3\nSKU-2,2026-07-02,5\n")
    assert r.status_code == 200 and r.json()["counts"]["inserted"] == 2, r.text
    r = client.post("/v1/watches", json=[{"url": "https://shop.example/p/1", "retailer": "example"}])
    assert r.status_code == 200 and not r.json()["errors"], r.text
    with owner.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO alert (dedup_key, rule, kind, severity, ds, reason) "
                "VALUES ('contract', 'big-drops', 'price_drop', 'info', DATE '2026-07-07', 'seeded')"
            )
        )
        listing_id = conn.execute(sa.text("SELECT min(listing_id) FROM dim_listing")).scalar()
        product_id = conn.execute(sa.text("SELECT product_id FROM dim_product ORDER BY sku LIMIT 1")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO product_match (listing_id, product_id, method, score, status) "
                "VALUES (:l, :p, 'fuzzy', 0.51, 'review')"
            ),
            {"l": listing_id, "p": product_id},
        )


@pytest.fixture(scope="module")
def service(contract_db) -> Iterator[tuple[str, str]]:
    """(base URL, admin API key) of the API on the module's database, connected as its app role."""
    from priceintel.db.engine import get_engine

    owner = get_engine(contract_db)
    admin = keys.create_key(owner, "contract admin", "admin", created_by="test")[1]
    settings_ = config.ApiSettings(secret="contract-" + "c" * 40, rate_per_minute=0)
    app = create_app(app_database_url(contract_db), settings_)
    try:
        with serve(app) as url:
            with httpx.Client(base_url=url, headers={"X-API-Key": admin}, timeout=60) as client:
                _seed(client, owner)
            yield url, admin
    finally:
        app.state.engine.dispose()


# ------------------------------------------------------------------------------------------ the contract


def error_is_json(ctx, response, case) -> None:
    """A 4xx answer is `{"error": {"status": <its status>, "message": "<words>"}}` (a validation error adds
    `details`): never HTML, plain text or FastAPI's bare `{"detail": …}`."""
    if not 400 <= response.status_code < 500:
        return None
    ctype = response.headers.get("content-type", [""])[0]
    assert ctype.startswith("application/json"), f"a {response.status_code} answer is {ctype!r}, not JSON"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the API's error shape: {body!r}"
    error = body["error"]
    assert set(error) <= {"status", "message", "details"}, f"unexpected fields in the error: {body!r}"
    assert error.get("status") == response.status_code, f"error.status {error.get('status')!r} is not the status"
    message = error.get("message")
    assert isinstance(message, str) and message.strip(), f"an error without a message: {body!r}"
    return None


CHECKS = [
    not_a_server_error,
    error_is_json,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema(examples: int, made_up_credentials: bool) -> schemathesis.BaseSchema:
    """The committed document with reproducible generation of valid and invalid data; `made_up_credentials`:
    also generate values for the security schemes (a bearer token, an X-API-Key) instead of sending none."""
    return schemathesis.openapi.from_path(
        OPENAPI,
        config=schemathesis.Config.from_dict(
            {
                "seed": SEED,
                "generation": {
                    "mode": "all",
                    "max-examples": examples,
                    "deterministic": True,
                    "database": "none",
                    "with-security-parameters": made_up_credentials,
                },
                "request-timeout": 30,
            }
        ),
    )


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )


admin_api = _schema(ADMIN_EXAMPLES, made_up_credentials=False)
anonymous_api = _schema(ANONYMOUS_EXAMPLES, made_up_credentials=True)


def test_the_document_is_the_served_one(service):
    assert httpx.get(f"{service[0]}/openapi.json").json() == json.loads(OPENAPI.read_text()), (
        "docs/openapi.json is out of date: run `python -m priceintel.api.openapi`"
    )


@admin_api.parametrize()
@_settings(ADMIN_EXAMPLES)
def test_every_operation_as_admin(case, service):
    url, admin = service
    response = case.call_and_validate(base_url=url, headers={"X-API-Key": admin}, checks=CHECKS)
    if not case.operation.path.startswith("/v1/auth/"):  # a generated request never revokes the key it is sent with
        assert response.status_code != 401, response.text


@anonymous_api.parametrize()
@_settings(ANONYMOUS_EXAMPLES)
def test_every_operation_without_credentials(case, service):
    case.call_and_validate(base_url=service[0], checks=CHECKS)


# ------------------------------------------------------------------------------------------ what it found


def _cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_what_the_contract_run_found_stays_fixed(service, contract_folder):
    """Requests that answered 500 (or named a server path) before: each a 4xx JSON error naming what is wrong."""
    url, admin = service
    csv = {"content-type": "text/csv"}
    cases = [
        # NUL in text bound for PostgreSQL (psycopg.DataError -> 500): a validation error naming the field
        (
            "POST",
            "/v1/matches/decisions",
            {"json": [{"retailer": "a\0", "item_id": "1", "sku": "SKU-1", "same_product": True}]},
            422,
            "body.0.retailer: must not",
        ),
        ("POST", "/v1/watches", {"json": [{"url": "https://shop.example/\0"}]}, 422, "body.0.url: must not"),
        ("POST", "/v1/auth/token", {"json": {"username": "a\0", "password": "x"}}, 422, "body.username: must not"),
        ("GET", "/v1/products/%00/history", {}, 422, "path.sku: must not contain the NUL"),
        ("GET", "/v1/prices", {"params": {"retailer": "\0"}}, 422, "query.retailer.0: must not"),
        ("GET", "/v1/prices/latest", {"params": {"sku": "\0"}}, 422, "query.sku: must not"),
        ("GET", "/v1/watches", {"params": {"retailer": "\0"}}, 422, "query.retailer: must not"),
        ("GET", "/v1/matches/review", {"params": {"retailer": "\0"}}, 422, "query.retailer: must not"),
        ("GET", "/v1/prices", {"params": {"after": _cursor(["\0", "a", 1])}}, 400, "does not fit view"),
        # YAML nested deeper than the parser recurses (RecursionError -> 500)
        ("PUT", "/v1/alert-rules", {"json": {"text": "[" * 5000}}, 400, "nested too deeply"),
        # a refused rule file names "the rules", not where the file is on the server
        ("PUT", "/v1/alert-rules", {"json": {"text": "rules:\n  - name: x\n"}}, 400, "invalid alert rules"),
        ("PUT", "/v1/alert-rules", {"json": {"text": "rules: [\0]"}}, 400, "the rules: not valid YAML"),
    ]
    with httpx.Client(base_url=url, headers={"X-API-Key": admin}, timeout=60) as client:
        rules = client.get("/v1/alert-rules").json()["text"]
        for method, path, kw, status, words in cases:
            r = client.request(method, path, **kw)
            body = r.json()
            assert r.status_code == status and words in body["error"]["message"], (method, path, r.text)
            assert contract_folder not in r.text, r.text
        assert client.get("/v1/alert-rules").json()["text"] == rules  # nothing refused was written
        # a whole number over the column's range (COPY refused it -> 500): now a rejected row, named
        r = client.post("/v1/sales", headers=csv, content="sku,date,units\nSKU-3,2026-07-05,99999999999999999999\n")
        assert r.status_code == 200 and r.json()["status"] == "failed", r.text
        assert "above 2,147,483,647" in r.json()["rejected"][0]["reason"]
