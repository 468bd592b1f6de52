"""The API's read routes: health, sign-in, catalogue and prices, the app views (keyset pages, JSON or CSV)
and runs; the writes (alerts, watches, matches, API keys) are in `api.actions`.

Reads need `read` access, data actions `write`, API keys `admin` (`api.principal`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.types import DecoratedCallable
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from priceintel import config
from priceintel.api import tokens
from priceintel.api.app import ApiError, requires, token_account
from priceintel.api.principal import Principal, retry_after
from priceintel.apps import auth
from priceintel.apps import views as app_views
from priceintel.apps.export import parquet_chunks, to_csv

log = logging.getLogger(__name__)

TAGS = [
    {"name": "service", "description": "health and readiness (no authentication)"},
    {"name": "auth", "description": "bearer tokens from a user's password"},
    {"name": "catalogue", "description": "our products and competitor prices"},
    {"name": "views", "description": "the apps' views: keyset pages of prices, forecasts, elasticities, alerts"},
    {"name": "actions", "description": "alerts, watches and match decisions (write access)"},
    {"name": "imports", "description": "prices observed elsewhere, our catalogue and sales; alert rules (write)"},
    {"name": "admin", "description": "API keys (admin access)"},
]

Reader = Annotated[Principal, Depends(requires("read"))]
Writer = Annotated[Principal, Depends(requires("write"))]
Admin = Annotated[Principal, Depends(requires("admin"))]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv (spreadsheet-safe)")]
ViewFormat = Annotated[
    Literal["json", "csv", "parquet"],
    Query(description="json (default, one page), or the whole filtered view streamed as csv or parquet"),
]


# ------------------------------------------------------------------------------------------- errors and text


class ErrorDetail(BaseModel):
    where: str = Field(description="the bad field: query.limit, path.sku, body.0.url …")
    problem: str = Field(description="what is wrong with it")


class ErrorInfo(BaseModel):
    status: int = Field(description="the HTTP status again")
    message: str = Field(description="what is wrong, in words a person understands")
    details: list[ErrorDetail] | None = Field(default=None, description="validation errors: one per bad field")


class ErrorBody(BaseModel):
    """Every error answer: its status and a message; a validation error adds one detail per bad field."""

    error: ErrorInfo


_ERROR_WHY = {
    400: "the request cannot be done as asked (or its body cannot be read): the message says why",
    401: "no credentials, or they are not valid (unknown, revoked, expired, session ended)",
    403: "the API key's scope or the user's role is too low",
    404: "no such item",
    413: "the body is too big",
    415: "the body is not of a type this route takes",
    422: "a parameter or the body is not valid: `details` names each bad field",
    429: "too many requests: retry after `Retry-After` seconds",
    503: "the server or its database is busy or unreachable: retry after `Retry-After` seconds",
}
#: the errors of every route behind `requires` (the database is asked who calls; 422 for parameters or a body)
CALLER_ERRORS = (401, 422, 429, 503)
#: … and of the routes that need more than read access
WRITER_ERRORS = (*CALLER_ERRORS, 403)


def errors(*codes: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of the error answers `codes` (each the JSON of `ErrorBody`), described by `why`
    or in general words."""
    why = why or {}
    return {code: {"model": ErrorBody, "description": why.get(code, _ERROR_WHY[code])} for code in sorted(set(codes))}


#: the 200 answer of a route with `format`: JSON, or CSV with format=csv
CSV_TOO: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or CSV (a header row, then one row per item) with format=csv",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def table_route(
    router: APIRouter, path: str, tag: str, summary: str, *codes: int
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """`router.get` for a route whose table comes as JSON, or as CSV with format=csv (`CSV_TOO`); its errors are
    the caller's and `codes`."""
    return router.get(path, tags=[tag], summary=summary, responses={**CSV_TOO, **errors(*CALLER_ERRORS, *codes)})


#: the 200 answer of a view: a JSON page, or the whole view as CSV or Parquet (streamed)
STREAMS_TOO: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a JSON page; with format=csv or format=parquet every row under the filters, streamed",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def no_nul(value: str) -> str:
    """`value`, unless it holds the NUL character (PostgreSQL stores no text with it): a validation error then."""
    if "\x00" in value:
        raise PydanticCustomError("no_nul", "must not contain the NUL character (\\x00)")
    return value


#: text that can go to the database
Text = Annotated[str, AfterValidator(no_nul)]


# ------------------------------------------------------------------------------------------- helpers


def _value(v: Any) -> Any:
    """A JSON-ready cell: None for missing, ISO dates, plain Python numbers."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() and v.tz is None else v.isoformat()
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, np.generic):
        return _value(v.item())
    return v


def records(df: pd.DataFrame) -> list[dict]:
    """The rows of a frame as JSON-ready dicts."""
    cols = list(df.columns)
    return [{c: _value(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False, name=None)]


def items_json(df: pd.DataFrame) -> str:
    """The rows of a frame as a JSON array, encoded by pandas in C (a year of one product's prices is ~1,500
    rows; cell by cell in Python that took 20 ms): days as YYYY-MM-DD, timestamps ISO 8601, missing as null."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:  # as PostgreSQL's JSON writes them (`read_json`)
                text = s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            elif bool((s.dropna().dt.normalize() == s.dropna()).all()):
                text = s.dt.strftime("%Y-%m-%d")
            else:
                text = s.dt.strftime("%Y-%m-%dT%H:%M:%S")
            out[col] = text.astype(object).where(s.notna(), None)
        elif s.dtype == object:
            first = s.dropna().head(1)
            if len(first) and isinstance(first.iloc[0], date):  # datetime.date / datetime cells
                out[col] = s.map(lambda v: v.isoformat() if isinstance(v, date) else v)
    return out.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str)


def _json(df: pd.DataFrame, extra: dict | None = None) -> Response:
    tail = "".join(f",{json.dumps(k)}:{json.dumps(_value(v))}" for k, v in (extra or {}).items())
    return _raw_items(items_json(df) + tail)


def _raw_items(array_json: str) -> Response:
    """`{"items": <a JSON array encoded elsewhere>}`."""
    return Response('{"items":' + array_json + "}", media_type="application/json")


def attachment(name: str, ext: str = "csv") -> dict[str, str]:
    """A Content-Disposition header for a download named after `name` (any text: an ASCII-safe
    `filename` and the exact name as RFC 5987 `filename*`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "export"
    exact = quote(name, safe="")
    return {"Content-Disposition": f"attachment; filename=\"{safe}.{ext}\"; filename*=UTF-8''{exact}.{ext}"}


def _frame_response(df: pd.DataFrame, fmt: str, name: str, extra: dict | None = None) -> Response:
    if fmt == "csv":
        return Response(to_csv(df), media_type="text/csv; charset=utf-8", headers=attachment(name))
    return _json(df, extra)


def encode_cursor(cursor: tuple | None) -> str | None:
    """An opaque page cursor (URL-safe base64 of the keyset values) or None."""
    if cursor is None:
        return None
    raw = json.dumps([_value(v) for v in cursor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple | None:
    """The keyset values of a cursor from `encode_cursor`; ApiError 400 for anything else."""
    if not text:
        return None
    bad = "after: not a cursor given by this API (use the 'next' value of the previous page)"
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, bad) from None
    if not isinstance(values, list):
        raise ApiError(400, bad)
    return tuple(values)


def _filters(
    start: date | None, end: date | None, retailer: list[str] | None, category: list[str] | None, sku: list[str] | None
) -> app_views.Filters:
    return app_views.Filters(
        start=start, end=end, retailers=tuple(retailer or ()), categories=tuple(category or ()), skus=tuple(sku or ())
    )


class _Once:
    """Calls `fn` once: when called, or when dropped without having been called."""

    def __init__(self, fn: Any) -> None:
        self.fn: Any = fn

    def __call__(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn()

    def __del__(self) -> None:
        self()


def _view(
    request: Request,
    view: str,
    fmt: str,
    after: str | None,
    limit: int,
    filters: app_views.Filters,
) -> Response:
    engine = request.app.state.engine
    if fmt in ("csv", "parquet"):
        app_views.check_filters(engine, filters)
        exports = request.app.state.exports
        if not exports.acquire(blocking=False):  # each stream holds a database connection until it ends
            raise ApiError(503, "too many downloads at once: retry shortly", {"Retry-After": "5"})
        done = _Once(exports.release)  # also when the client leaves before the first chunk (the stream is dropped)
        columns = app_views.SPECS[view].columns

        def csv_chunks() -> Iterator[bytes]:
            first = True
            for chunk in app_views.iter_rows(engine, view, filters):
                yield to_csv(chunk, header=first)
                first = False
            if first:  # no rows: the header alone
                yield to_csv(pd.DataFrame(columns=list(columns)))

        def chunks() -> Iterator[bytes]:
            try:
                if fmt == "csv":
                    yield from csv_chunks()
                else:  # a row group per chunk of the cursor; the footer last
                    yield from parquet_chunks(app_views.iter_rows(engine, view, filters), columns)
            finally:
                done()

        kind = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
        return StreamingResponse(chunks(), media_type=kind, headers=attachment(view, fmt))
    page = app_views.page(engine, view, filters, after=decode_cursor(after), limit=limit)
    return _json(page.rows, {"next": encode_cursor(page.next_cursor), "has_more": page.has_more})


# ------------------------------------------------------------------------------------------ models


class Login(BaseModel):
    username: Text = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


# ------------------------------------------------------------------------------------------ routes

router = APIRouter()


def install(app: FastAPI) -> None:
    """Add every route (these, `api.actions` and `api.imports`) to `app`."""
    from priceintel.api import actions, imports

    app.include_router(router)
    app.include_router(actions.router)
    app.include_router(imports.router)


@router.get("/health", tags=["service"], summary="the service is up")
def health() -> dict:
    return {"status": "ok"}


#: when set, GET /metrics needs `Authorization: Bearer <this token>`
METRICS_TOKEN_ENV = "PRICEINTEL_METRICS_TOKEN"


@router.get("/metrics", tags=["service"], summary="Prometheus metrics of every process", include_in_schema=False)
def metrics_route(request: Request) -> Response:
    """The Prometheus text exposition of every process of the installation (docs/observability.md). With
    PRICEINTEL_METRICS_TOKEN set, only with `Authorization: Bearer <token>`; without it, to loopback callers
    only (the series name shops and routes: not for anyone on the network)."""
    import hmac

    from priceintel.obs import metrics

    token = os.environ.get(METRICS_TOKEN_ENV) or ""
    if not token and not config.is_loopback(request.client.host if request.client else None):
        raise ApiError(403, f"GET /metrics from another machine needs {METRICS_TOKEN_ENV} set on the server and "
                            "'Authorization: Bearer <token>'")  # fmt: skip
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "GET /metrics needs 'Authorization: Bearer <PRICEINTEL_METRICS_TOKEN>'",
                           {"WWW-Authenticate": "Bearer"})  # fmt: skip
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get(
    "/ready",
    tags=["service"],
    summary="the database is reachable and its schema current",
    responses={503: {"description": "not ready"}},
)
def ready(request: Request) -> JSONResponse:
    from priceintel.db import migrate

    try:
        with request.app.state.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.SQLAlchemyError as err:  # the reason (host, role …) goes to the log, not to anonymous callers
        log.warning("not ready: %s", config.error_line(err))
        return JSONResponse({"status": "not ready", "database": "unreachable"}, status_code=503)
    head = migrate.head()
    if head not in current:
        return JSONResponse(
            {
                "status": "not ready",
                "database": "reachable",
                "migrations": f"at {', '.join(current) or 'none'}, code expects {head}: run `priceintel init-db`",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "database": "reachable", "migrations": head})


# ---- auth


def _tokens(request: Request, account: auth.Account) -> dict:
    settings = request.app.state.settings
    access, ttl = tokens.issue(account, "access", settings)
    refresh, _ = tokens.issue(account, "refresh", settings)
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "role": account.role,
    }


@router.post(
    "/v1/auth/token",
    tags=["auth"],
    summary="sign in with a username and password",
    responses=errors(
        400, 401, 422, 429, 503, why={401: "wrong username or password", 429: "too many failed sign-ins: slow down"}
    ),
)
async def sign_in(request: Request, body: Login) -> dict:
    from starlette.concurrency import run_in_threadpool

    from priceintel.apps.signin import Busy

    engine = request.app.state.engine
    address = request.client.host if request.client else "unknown"
    throttle = request.app.state.throttle
    wait, ticket = throttle.reserve(body.username, address)
    if ticket is None:
        raise ApiError(
            429, f"too many failed sign-ins: retry in {retry_after(wait)} s", {"Retry-After": retry_after(wait)}
        )
    try:  # argon2 checks on the sign-in pool (a few at once, a short queue), never on the shared threads
        session = await request.app.state.check_gate.run(lambda: auth.sign_in(engine, body.username, body.password))
    except Busy:
        raise ApiError(503, "too many sign-ins at once: retry in a second", {"Retry-After": "1"}) from None
    account = await run_in_threadpool(auth.account_of, engine, body.username) if session is not None else None
    if account is None:
        raise ApiError(401, "wrong username or password", {"WWW-Authenticate": "Bearer"})
    throttle.succeeded(ticket)
    return _tokens(request, account)


@router.post(
    "/v1/auth/refresh",
    tags=["auth"],
    summary="a new access token from a refresh token",
    responses=errors(400, 401, 422, 503, why={401: "the refresh token is not valid or the session ended"}),
)
def refresh(request: Request, body: Refresh) -> dict:
    return _tokens(request, token_account(request, body.refresh_token, "refresh"))


@router.get("/v1/me", tags=["auth"], summary="who the credentials belong to", responses=errors(*CALLER_ERRORS))
def me(who: Reader) -> dict:
    return {"kind": who.kind, "name": who.name, "access": who.level, "tenant": who.tenant}


# ---- catalogue and prices


@table_route(router, "/v1/products", "catalogue", "our catalogue with matched listings per product")
def products(request: Request, who: Reader, format: Format = "json") -> Response:
    from priceintel.db import queries

    return _frame_response(queries.list_products(request.app.state.engine), format, "products")


@table_route(
    router,
    "/v1/products/{sku}/history",
    "catalogue",
    "daily prices of a product: every matched listing and our own price",
    400,
    404,
)
def history(
    request: Request,
    who: Reader,
    sku: Annotated[Text, Path(max_length=128)],
    start: date | None = None,
    end: date | None = None,
    format: Format = "json",
) -> Response:
    from priceintel.db import queries

    if start and end and start > end:
        raise ApiError(400, f"start {start} is after end {end}")
    engine = request.app.state.engine
    try:
        if format == "json":  # encoded by PostgreSQL: no frame for the most asked-for route
            return _raw_items(queries.price_history_json(engine, sku, start, end))
        df = queries.price_history(engine, sku, start, end)
    except queries.QueryError as err:
        raise ApiError(404, str(err)) from None
    return _frame_response(df, format, f"history-{sku}")


@table_route(router, "/v1/prices/latest", "catalogue", "the latest observation of every listing")
def latest(
    request: Request, who: Reader, sku: Annotated[Text | None, Query(max_length=128)] = None, format: Format = "json"
) -> Response:
    from priceintel.db import queries

    engine = request.app.state.engine
    if format == "json":
        return _raw_items(queries.latest_prices_json(engine, sku))
    return _frame_response(queries.latest_prices(engine, sku), format, "latest-prices")


@table_route(
    router, "/v1/price-index", "catalogue", "competitor prices against ours (gap and index per listing, latest day)"
)
def price_index(
    request: Request, who: Reader, sku: Annotated[Text | None, Query(max_length=128)] = None, format: Format = "json"
) -> Response:
    from priceintel.db import queries

    return _frame_response(queries.price_vs_ours(request.app.state.engine, sku), format, "price-index")


# ---- the apps' views


def _add_view(path: str, view: str, summary: str) -> None:
    @router.get(
        path,
        tags=["views"],
        summary=summary,
        name=f"view_{view}",
        responses={**STREAMS_TOO, **errors(*CALLER_ERRORS, 400)},
    )
    def read_view(
        request: Request,
        who: Reader,
        start: date | None = None,
        end: date | None = None,
        retailer: Annotated[list[Text] | None, Query(max_length=64)] = None,
        category: Annotated[list[Text] | None, Query(max_length=64)] = None,
        sku: Annotated[list[Text] | None, Query(max_length=128)] = None,
        after: Annotated[str | None, Query(max_length=512, description="'next' of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=app_views.MAX_LIMIT)] = 100,
        format: ViewFormat = "json",
    ) -> Response:
        try:
            filters = _filters(start, end, retailer, category, sku)
        except ValueError as err:
            raise ApiError(400, str(err)) from None
        return _view(request, view, format, after, limit, filters)


_add_view("/v1/prices", "prices", "daily competitor prices beside ours (newest first)")
_add_view("/v1/forecasts", "forecasts", "price forecasts with 80% and 95% intervals")
_add_view("/v1/elasticities", "elasticity", "own-price elasticities and recommended prices")
_add_view("/v1/alerts", "alerts", "alerts (newest first)")


@router.get("/v1/runs", tags=["catalogue"], summary="recent pipeline and import runs", responses=errors(*CALLER_ERRORS))
def runs(request: Request, who: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        pipeline = pd.read_sql(
            sa.text(
                "SELECT run_id, task, status, started_at, finished_at, code_version FROM pipeline_run "
                "ORDER BY run_id DESC LIMIT :n"
            ),
            conn,
            params={"n": limit},
        )
        imports = pd.read_sql(
            sa.text(
                "SELECT import_run_id, kind, status, started_at, finished_at, rows_total, rows_inserted, "
                "rows_updated, rows_rejected, message FROM import_run ORDER BY import_run_id DESC LIMIT :n"
            ),
            conn,
            params={"n": limit},
        )
    return {"pipeline": records(pipeline), "imports": records(imports)}
