"""The API's imports and alert rules (write access): competitor prices observed elsewhere, our catalogue and
sales, and the alert rule file.

An import's body is kept as a file under `data/imports/uploads/` and goes through the same import as the
command line (`ingest`): checked row by row (rejected rows come back with their row, column, value and reason),
loaded in one transaction, idempotent, archived by content hash and recorded in import_run with who imported
it. Prices take a JSON list of objects (row 2 is the first object, as in a CSV with a header) or CSV; the
catalogue and sales take CSV (or TSV) as `text/csv`.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Query, Request
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, Field

from priceintel import config
from priceintel.api.app import ApiError
from priceintel.api.routes import CALLER_ERRORS, WRITER_ERRORS, Reader, Writer, errors
from priceintel.ingest.result import ImportResult, IngestError

router = APIRouter()

#: the largest body an import accepts (bigger files: `priceintel … import FILE` on the server)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: the most rows a JSON body of observations may hold
MAX_JSON_ROWS = 50_000
_CSV_BODY = {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}


def _import_route(
    path: str, summary: str, body: dict[str, Any] = _CSV_BODY
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """`router.post` for an import whose request body is `body` (default CSV); its errors are the writer's, 400,
    413 (too big) and 415 (a type it does not take)."""
    return router.post(
        path,
        tags=["imports"],
        summary=summary,
        responses=errors(*WRITER_ERRORS, 400, 413, 415),
        openapi_extra={"requestBody": body},
    )


def _upload_path(kind: str, suffix: str) -> Path:
    folder = config.data_dir() / "imports" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return folder / f"{stamp}-{kind}-{secrets.token_hex(4)}{suffix}"


async def _bounded_body(request: Request) -> bytes:
    """The request body, read in chunks and refused (413) as soon as it passes MAX_UPLOAD_BYTES (a declared
    Content-Length over it is refused before reading)."""
    too_big = ApiError(413, f"the body is over {MAX_UPLOAD_BYTES // 2**20} MB: import the file on the server")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_big
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise too_big
        parts.append(chunk)
    return b"".join(parts)


async def _csv_body(request: Request, kind: str) -> Path:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("text/csv", "text/tab-separated-values", "text/plain"):
        raise ApiError(415, f"send the {kind} as CSV with 'Content-Type: text/csv' (got {ctype or 'none'})")
    body = await _bounded_body(request)
    if not body.strip():
        raise ApiError(400, f"the {kind} body is empty")
    path = _upload_path(kind, ".tsv" if ctype == "text/tab-separated-values" else ".csv")
    path.write_bytes(body)
    return path


def _result(res: ImportResult, json_rows: bool = False) -> dict:
    """An import's outcome; with `json_rows`, each issue also names the index of its object in the body."""

    def issue(i: Any) -> dict:
        out = {"row": i.row, "column": i.column, "value": None if i.value is None else str(i.value), "reason": i.reason}
        if json_rows and i.row is not None:
            out["index"] = i.row - 2
        return out

    return {
        "import_run_id": res.import_run_id,
        "status": res.status,
        "counts": res.counts,
        "rejected": [issue(i) for i in res.rejects],
        "warnings": [issue(i) for i in res.warnings],
    }


async def _run(fn: Any, request: Request, path: Path, who: Any, **kw: Any) -> ImportResult:
    """The import on a worker thread (pandas, files, one transaction: never on the event loop); its refusal as
    400 with the upload's name and folder left out."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(
            fn, request.app.state.engine, path, by=who.label, archive_root=config.data_dir(), **kw
        )
    except IngestError as err:
        message = str(err).replace(str(path.parent) + "/", "").replace(path.name, "the body")
        raise ApiError(400, message) from None
    except psycopg.DataError as err:  # a value the row checks let through that the database refuses (COPY)
        raise ApiError(400, _refused(err)) from None


def _refused(err: psycopg.DataError) -> str:
    """The database's refusal of a value, naming its column when the database does."""
    column = re.search(r"\bcolumn (\w+)", err.diag.context or "")
    where = f" (column {column.group(1)})" if column else ""
    reason = " ".join((err.diag.message_primary or str(err)).split())
    return f"the database refused the import{where}: {reason}; nothing was imported"


#: the JSON shape of one observation (any other column of `ingest.observations` is accepted too)
_OBSERVATION = {
    "type": "object",
    "required": ["retailer", "item_id", "date", "price"],
    "properties": {
        "retailer": {"type": "string", "description": "the shop, e.g. amazon"},
        "item_id": {"type": "string", "description": "the shop's own id of the product page"},
        "date": {"type": "string", "format": "date"},
        "price": {"description": '12.99 (with "currency"), or "12.99 EUR", "€12,99"'},
        "currency": {"type": "string"},
        "in_stock": {"type": "boolean"},
        "url": {"type": "string"},
        "title": {"type": "string"},
    },
}


@_import_route(
    "/v1/observations",
    "import competitor prices observed elsewhere (JSON list or CSV); errors per row",
    {
        "content": {
            "application/json": {"schema": {"type": "array", "items": _OBSERVATION, "maxItems": MAX_JSON_ROWS}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "required": True,
    },
)
async def observations(
    request: Request,
    who: Writer,
    strict: Annotated[bool, Query(description="refuse everything if a row is rejected")] = False,
) -> dict:
    from priceintel.ingest.observations import import_observations

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        path = await _csv_body(request, "observations")
        return _result(await _run(import_observations, request, path, who, strict=strict))
    try:
        rows = json.loads(await _bounded_body(request))
    except ValueError:
        raise ApiError(400, "the body is not valid JSON: send a list of objects") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "send a non-empty JSON list of objects (retailer, item_id, date, price, …)")
    if len(rows) > MAX_JSON_ROWS:
        raise ApiError(413, f"at most {MAX_JSON_ROWS} observations a request; send more in several")
    empty = [i for i, r in enumerate(rows) if not any(v not in (None, "") for v in r.values())]
    if empty:  # a blank row would vanish from the file: name it instead
        raise ApiError(400, f"object(s) at index {', '.join(map(str, empty[:10]))} hold no value")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path = _upload_path("observations", ".csv")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return _result(await _run(import_observations, request, path, who, strict=strict), json_rows=True)


@_import_route("/v1/catalogue", "import our catalogue (CSV: id, title, price, gtin, …)")
async def catalogue(
    request: Request,
    who: Writer,
    strict: bool = False,
    currency: Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")] = None,
) -> dict:
    from priceintel.ingest.catalog import import_catalog

    path = await _csv_body(request, "catalogue")
    return _result(await _run(import_catalog, request, path, who, strict=strict, currency=currency))


@_import_route("/v1/sales", "import our daily sales (CSV: sku, date, units, price, …)")
async def sales(request: Request, who: Writer, strict: bool = False) -> dict:
    from priceintel.ingest.sales import import_sales

    path = await _csv_body(request, "sales")
    return _result(await _run(import_sales, request, path, who, strict=strict))


# ------------------------------------------------------------------------------------------ alert rules


class RuleText(BaseModel):
    text: str = Field(min_length=1, max_length=200_000, description="the whole rule file (YAML)")


class RuleSwitch(BaseModel):
    enabled: bool


def _rules_out(rules: Any, text: str) -> dict:
    return {"text": text, "rules": [r.model_dump(mode="json") for r in rules.rules]}


@contextmanager
def _rule_errors(path: Path) -> Iterator[None]:
    """Refused rules as 400 naming "the rules" (never the server's path to the file), YAML nested too deeply too."""
    from priceintel.alerts.rules import RuleError

    try:
        yield
    except RuleError as err:
        raise ApiError(400, str(err).replace(str(path), "the rules")) from None
    except RecursionError:  # the YAML parser recurses once per level of nesting
        raise ApiError(400, "the rules are nested too deeply to read: send a `rules:` list of plain mappings") from None


@router.get(
    "/v1/alert-rules",
    tags=["imports"],
    summary="the alert rule file, as text and parsed",
    responses=errors(*CALLER_ERRORS, 400),
)
def get_rules(request: Request, who: Reader) -> dict:
    from priceintel.alerts.rules import default_rules_file, parse_rules

    path = default_rules_file()
    text = path.read_text() if path.is_file() else "rules: []\n"
    with _rule_errors(path):
        return _rules_out(parse_rules(text, str(path)), text)


@router.put(
    "/v1/alert-rules",
    tags=["imports"],
    summary="replace the alert rule file (validated first)",
    responses=errors(*WRITER_ERRORS, 400),
)
def put_rules(request: Request, who: Writer, body: RuleText) -> dict:
    from priceintel.alerts.rules import default_rules_file, save_rules

    path = default_rules_file()  # the caller's tenant's own file
    with _rule_errors(path):
        rules = save_rules(body.text, path)
    return _rules_out(rules, body.text)


@router.patch(
    "/v1/alert-rules/{name}",
    tags=["imports"],
    summary="enable or disable one alert rule",
    responses=errors(*WRITER_ERRORS, 400, 404),
)
def switch_rule(request: Request, who: Writer, name: str, body: Annotated[RuleSwitch, Body()]) -> dict:
    from priceintel.alerts.rules import default_rules_file, load_rules, set_rule_enabled

    with _rule_errors(default_rules_file()):
        if name not in {r.name for r in load_rules().rules}:
            raise ApiError(404, f"no alert rule named {name!r} (GET /v1/alert-rules lists them)")
    path = default_rules_file()  # the caller's tenant's own file
    with _rule_errors(path):
        rules = set_rule_enabled(path, name, body.enabled)
    return _rules_out(rules, path.read_text())
