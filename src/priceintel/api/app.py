"""The FastAPI application: authentication, rate limit, JSON errors and the routes of `api.routes`.

Every error is JSON `{"error": {"status": 404, "message": "…"}}` (validation errors add `details`, one per bad
field, naming where: `query.limit`). Callers authenticate with `Authorization: Bearer <API key or access token>`
or `X-API-Key: <API key>`; /health and /ready need nothing.

A caller belongs to one tenant (its key's or its user's): the rest of the request works in that tenant
(`db.tenancy.enter`), so every query runs under the database's row-level security for it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from priceintel import PriceIntelError, config
from priceintel.api import keys, tokens
from priceintel.api.principal import ROLE_LEVEL, Principal, RateLimiter, retry_after
from priceintel.apps import auth, signin
from priceintel.db import tenancy, usage
from priceintel.obs import logs, metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("priceintel.api.access")

API_VERSION = "1"
#: streamed CSV downloads at once per worker: each holds a database connection (the pool has 5 + 10)
MAX_STREAMS = 4
_bearer = HTTPBearer(auto_error=False, description="an API key (pik_…) or an access token from /v1/auth/token")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (pik_…)")


class ApiError(Exception):
    """An error answered as JSON with `status` and a message a person understands."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_body(status: int, message: str, details: list | None = None) -> dict:
    """The JSON body of every error answer."""
    body: dict[str, Any] = {"status": status, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _problem(err: dict) -> str:
    msg = str(err.get("msg", "invalid value"))
    return msg[0].lower() + msg[1:] if msg else msg


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors for API errors, HTTP errors, validation errors, domain errors and anything unexpected."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {
            404: f"no such endpoint: {request.method} {request.url.path} (see /docs)",
            405: f"{request.method} is not allowed on {request.url.path} (see /docs)",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            error_body(exc.status_code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": _where(e.get("loc", ())), "problem": _problem(e)} for e in exc.errors()]
        first = details[0] if details else {"where": "request", "problem": "invalid"}
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        message = f"{first['where']}: {first['problem']}{more}"
        return JSONResponse(error_body(422, message, details), status_code=422)

    @app.exception_handler(usage.PlanLimitError)
    async def _plan_limit(request: Request, exc: usage.PlanLimitError) -> JSONResponse:
        if exc.retry_after is None:  # a size limit: waiting does not help
            return JSONResponse(error_body(403, str(exc)), status_code=403)
        wait = retry_after(exc.retry_after)
        return JSONResponse(error_body(429, str(exc)), status_code=429, headers={"Retry-After": wait})

    @app.exception_handler(PriceIntelError)
    async def _domain_error(request: Request, exc: PriceIntelError) -> JSONResponse:
        return JSONResponse(error_body(400, str(exc)), status_code=400)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(error_body(400, str(exc)), status_code=400)

    @app.exception_handler(sa.exc.TimeoutError)
    async def _pool_busy(request: Request, exc: sa.exc.TimeoutError) -> JSONResponse:
        log.warning("database connections all busy on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(503, "the server is busy: retry shortly"), status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(sa.exc.OperationalError)
    async def _db_down(request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", config.error_line(exc))
        return JSONResponse(
            error_body(503, "the database is not reachable; try again shortly"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, INTERNAL_ERROR), status_code=500)


INTERNAL_ERROR = "internal error: the server logged it; please report it"


def _engine(request: Request) -> sa.Engine:
    return request.app.state.engine


def _authenticate(request: Request, token: str | None) -> Principal:
    engine = _engine(request)
    if not token:
        raise ApiError(
            401,
            "authentication required: send 'Authorization: Bearer <API key or access token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if keys.looks_like_key(token):
        key = keys.authenticate(engine, token)
        if key is None:
            raise ApiError(401, "the API key is not valid or has been revoked", {"WWW-Authenticate": "Bearer"})
        return Principal("key", key.key_id, f"{key.name}", key.scope, key.tenant)
    account = token_account(request, token, "access")
    return Principal("user", str(account.user_id), account.username, ROLE_LEVEL[account.role], account.tenant)


def token_account(request: Request, token: str, kind: str) -> auth.Account:
    """The user a valid token of `kind` (access | refresh) names, in the session it was issued under;
    ApiError 401 saying what is wrong otherwise (bad or expired token, session ended, user removed)."""
    try:
        claims = tokens.verify(token, kind, request.app.state.settings)
    except tokens.TokenError as err:
        raise ApiError(401, str(err), {"WWW-Authenticate": "Bearer"}) from None
    account = auth.account_by_id(request.app.state.engine, claims.user_id, claims.tenant)
    if account is None or account.version != claims.version:
        raise ApiError(
            401,
            "the session has ended (signed out, new password or user removed): sign in again",
            {"WWW-Authenticate": "Bearer"},
        )
    return account


#: seconds a tenant's plan is remembered by a worker (a changed plan applies within this time)
PLAN_SECONDS = 30.0


def _caller(request: Request, token: str | None) -> tuple[Principal, usage.Plan]:
    """The authenticated caller and their tenant's plan (remembered PLAN_SECONDS per tenant)."""
    who = _authenticate(request, token)
    plans = request.app.state.plans
    known = plans.get(who.tenant)
    now = time.monotonic()
    if known is None or known[1] < now:
        with tenancy.scope(who.tenant):
            known = plans[who.tenant] = (usage.plan_of(request.app.state.engine), now + PLAN_SECONDS)
    return who, known[0]


def flush_usage(app: FastAPI) -> None:
    """Write the metered counts; a failure is logged, never the caller's problem."""
    try:
        app.state.meter.flush(app.state.engine)
    except (sa.exc.SQLAlchemyError, PriceIntelError) as err:
        log.warning("usage not written: %s", config.error_line(err))


def requires(level: str):
    """A dependency: the authenticated caller, at least at `level`, within their rate limit (the smaller of
    PRICEINTEL_API_RATE_PER_MINUTE and their tenant's plan); the request is metered and then works in the
    caller's tenant. Async, so that the tenant it enters holds for the route (a sync dependency runs in a
    worker thread whose context the route never sees)."""

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        api_key: str | None = Depends(_key_header),
    ) -> Principal:
        if bearer is None and api_key and not keys.looks_like_key(api_key):
            raise ApiError(
                401,
                "X-API-Key takes an API key (pik_…); send a token as 'Authorization: Bearer'",
                {"WWW-Authenticate": "Bearer"},
            )
        token = bearer.credentials if bearer is not None else api_key
        who, plan = await run_in_threadpool(_caller, request, token)
        rates = [r for r in (request.app.state.settings.rate_per_minute, plan.requests_per_minute) if r]
        rate = min(rates) if rates else 0.0
        wait = request.app.state.limiter.take(f"{who.kind}:{who.ident}", rate)
        if wait > 0:
            whose = f"plan {plan.name}" if rate == plan.requests_per_minute else "this server"
            raise ApiError(
                429,
                f"rate limit: {whose} allows {rate:g} requests a minute; retry in {retry_after(wait)} s",
                {"Retry-After": retry_after(wait)},
            )
        request.state.tenant = who.tenant  # for the export meter (ExportMeter)
        meter = request.app.state.meter
        meter.add(who.tenant, requests=1)
        if meter.due():
            await run_in_threadpool(flush_usage, request.app)
        if not who.may(level):
            what = f"scope {who.level}" if who.kind == "key" else f"role {who.level}"
            raise ApiError(403, f"{who.label} ({what}) may not do this: it needs {level} access")
        tenancy.enter(who.tenant)
        return who

    return dependency


def create_app(database_url: str | None = None, settings: config.ApiSettings | None = None) -> FastAPI:
    """The API application on the database at `database_url` (default DATABASE_URL / embedded)."""
    from priceintel.api import routes
    from priceintel.db.engine import get_engine

    app = FastAPI(
        title="Price Intelligence Workbench API",
        version=API_VERSION,
        description=(
            "Competitor prices, matches, forecasts, elasticities and alerts of the workbench database. "
            "Authenticate with an API key (`priceintel keys create`) or an access token from `POST /v1/auth/token`."
        ),
        openapi_tags=routes.TAGS,
        lifespan=_lifespan,
    )
    app.state.engine = get_engine(database_url, check=False)
    app.state.database_url = database_url
    app.state.settings = settings or config.api_settings()
    app.state.limiter = RateLimiter(app.state.settings.rate_per_minute)
    app.state.meter = usage.Meter()  # requests and exports per tenant, written every few seconds
    app.state.plans = {}  # tenant -> (plan, remembered until)
    app.state.throttle = signin.SignInThrottle()
    app.state.check_gate = signin.CheckGate()  # argon2 checks: a few at once, a short queue, then 503
    app.state.exports = threading.BoundedSemaphore(MAX_STREAMS)  # streamed CSV downloads at once (503 beyond)
    install_error_handlers(app)
    routes.install(app)
    app.add_middleware(ExportMeter)
    app.add_middleware(Observe)
    logs.set_source("tenant", tenancy.current)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, write the usage counts not written yet."""
    yield
    await run_in_threadpool(flush_usage, app)


class _HttpMiddleware:
    """An ASGI middleware that sees HTTP requests (`http`); everything else (lifespan) passes through."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: dict, receive: Any, send: Any) -> None:
        raise NotImplementedError


#: the content types of answers counted as exports
EXPORT_TYPES = (b"text/csv", b"application/vnd.apache.parquet")


class ExportMeter(_HttpMiddleware):
    """ASGI middleware counting every CSV or Parquet answer as an export of the caller's tenant
    (`request.state.tenant`)."""

    async def http(self, scope: dict, receive: Any, send: Any) -> None:
        async def counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers") or []).get(b"content-type", b"")
                tenant = (scope.get("state") or {}).get("tenant")
                if tenant and kind.startswith(EXPORT_TYPES) and message.get("status") == 200:
                    scope["app"].state.meter.add(tenant, exports=1)
            await send(message)

        await self.app(scope, receive, counted)


#: an incoming X-Request-ID kept as it is (else a new one is made): 1-128 characters, no spaces or controls
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
#: routes whose requests are logged at DEBUG (probes and scrapes come every few seconds)
QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})


def request_id(headers: list) -> str:
    """The request's X-Request-ID when sane, else a new random one (32 hex digits)."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class Observe(_HttpMiddleware):
    """ASGI middleware: a request id (X-Request-ID, kept when sane, echoed) bound in the logs' context, one access
    log line, and the request counted and timed by method, route template and status (`obs.metrics`). An error
    no handler answered becomes the JSON 500 here, so that it carries the request id too."""

    async def http(self, scope: dict, receive: Any, send: Any) -> None:
        rid = request_id(scope.get("headers") or [])
        token = logs.bind(request_id=rid)
        start = time.perf_counter()
        status = [0]

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*(message.get("headers") or []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status[0]:  # the answer had begun (a streamed download): nothing more can be said to the caller
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await JSONResponse(error_body(500, INTERNAL_ERROR), status_code=500)(scope, receive, send_with_id)
        finally:
            self._record(scope, status[0] or 500, time.perf_counter() - start)
            logs.unbind(token)

    @staticmethod
    def _record(scope: dict, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        metrics.api_request(method, route, status, seconds)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if access_log.isEnabledFor(level):
            tenant = (scope.get("state") or {}).get("tenant")
            access_log.log(
                level,
                "%s %s %s %.1f ms",
                method,
                route,
                status,
                seconds * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2),
                       **({"tenant": tenant} if tenant else {})},
            )  # fmt: skip
