"""The API's actions: alert states, watches, match decisions (write access) and API keys (admin access).

Each write records who made it (`user:NAME` or `key:NAME`): alert.state_by / resolved_by, watch.changed_by,
match_label.labelled_by, api_key.created_by / revoked_by.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from priceintel.api import keys
from priceintel.api.app import ApiError, flush_usage
from priceintel.api.routes import (
    CALLER_ERRORS,
    WRITER_ERRORS,
    Admin,
    Format,
    Reader,
    Text,
    Writer,
    _frame_response,
    errors,
    records,
    table_route,
)
from priceintel.db import usage

router = APIRouter()
#: a write on one row named in the path: 404 when the caller's tenant has no such row
WRITE_ONE_ERRORS = errors(*WRITER_ERRORS, 404)

#: a row id in the path: an integer key of the database (1 to 2**31 - 1)
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class WatchIn(BaseModel):
    url: Text = Field(min_length=1, max_length=2048, description="absolute http(s) URL of a product page")
    retailer: Text | None = Field(default=None, max_length=64, description="default: from the URL's host")
    sku: Text | None = Field(default=None, max_length=128, description="our product it shows, if known")


class Decision(BaseModel):
    retailer: Text = Field(min_length=1, max_length=64)
    item_id: Text = Field(min_length=1, max_length=256)
    sku: Text = Field(min_length=1, max_length=128)
    same_product: bool = Field(description="true: confirm the match; false: reject it")


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    scope: Literal["read", "write", "admin"] = "read"


@router.post(
    "/v1/alerts/{alert_id}/{action}",
    tags=["actions"],
    summary="acknowledge or resolve an alert",
    responses=WRITE_ONE_ERRORS,
)
def alert_state(request: Request, who: Writer, alert_id: RowId, action: Literal["acknowledge", "resolve"]) -> dict:
    from priceintel.alerts.store import AlertError, set_state

    state = "acknowledged" if action == "acknowledge" else "resolved"
    try:
        changed = set_state(request.app.state.engine, [alert_id], state, by=who.label)
    except AlertError as err:
        raise ApiError(404, str(err)) from None
    return {"alert_id": alert_id, "state": state, "changed": bool(changed), "by": who.label}


@table_route(router, "/v1/watches", "actions", "the watch list (competitor pages to check)")
def watches(
    request: Request,
    who: Reader,
    include_inactive: bool = False,
    retailer: Annotated[Text | None, Query(max_length=64)] = None,
    format: Format = "json",
) -> Response:
    from priceintel.ingest.watch import list_watches

    df = list_watches(request.app.state.engine, include_inactive=include_inactive, retailer=retailer)
    return _frame_response(df, format, "watches")


@router.post(
    "/v1/watches",
    tags=["actions"],
    summary="watch pages (one or a list of up to 1,000)",
    responses=errors(*WRITER_ERRORS, 400),
)
def add_watches(
    request: Request, who: Writer, body: Annotated[list[WatchIn], Body(min_length=1, max_length=1000)]
) -> dict:
    from priceintel.ingest.watch import IngestError, add_watch
    from priceintel.scrape.shops import default_shops_path, load_shops

    known = set(load_shops()) if default_shops_path().is_file() else None
    results, errors = [], []
    for i, item in enumerate(body):
        try:
            results.append(
                add_watch(
                    request.app.state.engine, item.url, item.retailer, item.sku, known_retailers=known, by=who.label
                )
            )
        except IngestError as err:
            errors.append({"index": i, "url": item.url, "message": str(err)})
    return {"watches": results, "errors": errors}


@router.delete(
    "/v1/watches/{watch_id}",
    tags=["actions"],
    summary="stop watching a page (its history stays)",
    responses=WRITE_ONE_ERRORS,
)
def stop_watch(request: Request, who: Writer, watch_id: RowId) -> dict:
    from priceintel.ingest.watch import IngestError, remove_watch

    try:
        changed = remove_watch(request.app.state.engine, watch_id, by=who.label)
    except IngestError as err:
        raise ApiError(404, str(err)) from None
    return {"watch_id": watch_id, "stopped": bool(changed)}


@table_route(router, "/v1/matches/review", "actions", "listing/product pairs waiting for a decision")
def review(
    request: Request,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    retailer: Annotated[Text | None, Query(max_length=64)] = None,
    format: Format = "json",
) -> Response:
    from priceintel.match.labels import review_queue

    return _frame_response(review_queue(request.app.state.engine, limit, retailer), format, "review")


@router.post(
    "/v1/matches/decisions",
    tags=["actions"],
    summary="confirm or reject matches (up to 1,000)",
    responses=errors(*WRITER_ERRORS, 400),
)
def decide(request: Request, who: Writer, body: Annotated[list[Decision], Body(min_length=1, max_length=1000)]) -> dict:
    from priceintel.match.labels import LabelError, record_label

    results, errors = [], []
    for i, d in enumerate(body):
        try:
            results.append(
                record_label(
                    request.app.state.engine,
                    d.retailer,
                    d.item_id,
                    d.sku,
                    d.same_product,
                    source="api",
                    by=who.label,
                )
            )
        except LabelError as err:
            errors.append({"index": i, "message": str(err)})
    return {"decisions": results, "errors": errors}


# ---- API keys


@router.get("/v1/keys", tags=["admin"], summary="every API key (never a secret)", responses=errors(*WRITER_ERRORS))
def list_api_keys(request: Request, who: Admin) -> dict:
    return {"items": records(keys.list_keys(request.app.state.engine))}


@router.post(
    "/v1/keys",
    tags=["admin"],
    status_code=201,
    summary="create an API key: the key is in this answer only, keep it",
    responses=errors(*WRITER_ERRORS, 400),
)
def create_api_key(request: Request, who: Admin, body: KeyIn) -> dict:
    try:
        key_id, key = keys.create_key(request.app.state.engine, body.name, body.scope, created_by=who.label)
    except keys.ApiKeyError as err:
        raise ApiError(400, str(err)) from None
    return {"key_id": key_id, "name": body.name, "scope": body.scope, "key": key}


@router.delete(
    "/v1/keys/{key_id}", tags=["admin"], summary="revoke an API key at once", responses=errors(*WRITER_ERRORS, 404)
)
def revoke_api_key(request: Request, who: Admin, key_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$")]) -> dict:
    try:
        changed = keys.revoke_key(request.app.state.engine, key_id, revoked_by=who.label)
    except keys.ApiKeyError as err:
        raise ApiError(404, str(err)) from None
    return {"key_id": key_id, "revoked": True, "changed": changed}


# ---- plan and usage


@router.get(
    "/v1/usage",
    tags=["admin"],
    summary="the caller's tenant: its plan, the plan's limits and the usage of the last days",
    responses=errors(*CALLER_ERRORS),
)
def tenant_usage(request: Request, who: Reader, days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict:
    flush_usage(request.app)  # today's figures include this worker's requests so far
    engine = request.app.state.engine
    plan = usage.plan_of(engine)
    return {
        "tenant": who.tenant,
        "plan": plan.name,
        "limits": plan.limits(),
        "checks_left_today": usage.checks_left(engine),
        "items": records(usage.usage_frame(engine, days)),
    }
