"""Plans and metered usage per tenant (migration 0015; the tenant of the transaction, `db.tenancy`).

A tenant is on one plan (`priceintel tenants plan NAME --plan P`); its limits:

| plan | tracked products | watched URLs | page checks a day | API requests a minute |
|---|---|---|---|---|
| free | 100 | 250 | 500 | 60 |
| pro | 5,000 | 10,000 | 20,000 | 600 |
| enterprise | no limit | no limit | no limit | no limit (`PRICEINTEL_API_RATE_PER_MINUTE` only) |

Size limits (products, watches) refuse the import or addition that would pass them, whole (`PlanLimitError`,
nothing stored; the API answers 403). Rate limits answer 429 with `Retry-After`: requests a minute through the
API's token bucket per key or user, page checks a day (a live run fetches what is left of the day's allowance and
records the rest as `plan_limit` errors) until the next UTC day.

Usage is metered per tenant and UTC day in `tenant_usage`: API requests, exports (API CSV answers, the apps'
downloads), pages fetched, and the products and active watches at the day's last count, always added through
`priceintel_add_usage` (the app role may not write the table: usage only grows). The API counts its requests in
memory and writes them with the first request 5 s after the last write and when it stops (`Meter`); a crash
loses the counts not written yet.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.db import tenancy

__all__ = [
    "PLANS",
    "Meter",
    "Plan",
    "PlanLimitError",
    "check_products",
    "check_watches",
    "checks_left",
    "plan_of",
    "record",
    "seconds_to_next_day",
    "usage_frame",
]


@dataclass(frozen=True)
class Plan:
    """A subscription plan's limits (None: no limit)."""

    name: str
    products: int | None
    watches: int | None
    checks_per_day: int | None
    requests_per_minute: float | None

    def limits(self) -> dict:
        """The limits as a dict (for the API and the apps)."""
        return {k: v for k, v in asdict(self).items() if k != "name"}


PLANS: dict[str, Plan] = {
    "free": Plan("free", products=100, watches=250, checks_per_day=500, requests_per_minute=60),
    "pro": Plan("pro", products=5_000, watches=10_000, checks_per_day=20_000, requests_per_minute=600),
    "enterprise": Plan("enterprise", products=None, watches=None, checks_per_day=None, requests_per_minute=None),
}
assert tuple(PLANS) == tenancy.PLANS


class PlanLimitError(PriceIntelError):
    """Over a plan's limit: `retry_after` seconds for a rate limit (429), None for a size limit (403)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _upgrade_hint(plan: Plan) -> str:
    bigger = [p for p in tenancy.PLANS if tenancy.PLANS.index(p) > tenancy.PLANS.index(plan.name)]
    return f"; a bigger plan allows more ({', '.join(bigger)}: priceintel tenants plan NAME --plan P)" if bigger else ""


def plan_of(conn: sa.Connection | sa.Engine) -> Plan:
    """The plan of the transaction's tenant (free when the tenant row cannot be read)."""
    if isinstance(conn, sa.Engine):
        with conn.connect() as c:
            return plan_of(c)
    name = conn.execute(sa.text("SELECT plan FROM tenant WHERE tenant_id = (SELECT priceintel_tenant())")).scalar()
    return PLANS.get(name or "free", PLANS["free"])


def _check_count(conn: sa.Connection, what: str, limit_of: str, sql: str) -> None:
    plan = plan_of(conn)
    limit = getattr(plan, limit_of)
    if limit is None:
        return
    n = int(conn.execute(sa.text(sql)).scalar_one())
    if n > limit:
        raise PlanLimitError(
            f"plan {plan.name}: at most {limit:,} {what}; this would make {n:,}, so nothing was stored"
            + _upgrade_hint(plan)
        )


def check_products(conn: sa.Connection) -> None:
    """PlanLimitError when the tenant now has more products than its plan allows (call inside the import's
    transaction, after the rows are in: raising rolls them back)."""
    _check_count(conn, "tracked products", "products", "SELECT count(*) FROM dim_product")


def check_watches(conn: sa.Connection) -> None:
    """PlanLimitError when the tenant now watches more URLs than its plan allows (inside the transaction)."""
    _check_count(conn, "watched URLs", "watches", "SELECT count(*) FROM watch WHERE active")


def seconds_to_next_day(now: datetime | None = None) -> float:
    """Seconds until the next UTC midnight (when the daily allowances start again)."""
    now = now or datetime.now(UTC)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1.0, (tomorrow - now).total_seconds())


def checks_left(engine: sa.Engine, day: date | None = None) -> int | None:
    """Page checks the tenant may still make today (None: no limit)."""
    with engine.connect() as conn:
        plan = plan_of(conn)
        if plan.checks_per_day is None:
            return None
        used = conn.execute(
            sa.text("SELECT pages_fetched FROM tenant_usage WHERE day = :d"), {"d": day or datetime.now(UTC).date()}
        ).scalar()
    return max(0, plan.checks_per_day - int(used or 0))


_RECORD = sa.text("SELECT priceintel_add_usage(:day, :requests, :exports, :pages)")


def record(
    target: sa.Engine | sa.Connection, *, requests: int = 0, exports: int = 0, pages_fetched: int = 0,
    day: date | None = None,
) -> None:  # fmt: skip
    """Add to the transaction's tenant's usage of `day` (today, UTC) and count its products and watches."""
    params = {
        "day": day or datetime.now(UTC).date(),
        "requests": int(requests),
        "exports": int(exports),
        "pages": int(pages_fetched),
    }
    if isinstance(target, sa.Engine):
        with target.begin() as conn:
            conn.execute(_RECORD, params)
    else:
        target.execute(_RECORD, params)


def usage_frame(engine: sa.Engine, days: int = 30) -> pd.DataFrame:
    """The current tenant's usage of the last `days` days, newest first: day, requests, exports, pages_fetched,
    products, watches."""
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text("""SELECT day, requests, exports, pages_fetched, products, watches FROM tenant_usage
                       WHERE day > CAST(:today AS date) - :days ORDER BY day DESC"""),
            conn,
            params={"today": datetime.now(UTC).date(), "days": int(days)},
        )


class Meter:
    """Counts per tenant kept in memory and written to `tenant_usage` at most every `every` seconds (the API's
    requests and exports: one write per tenant and interval instead of one per request)."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self._counts: dict[str, Counter] = {}
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def add(self, tenant: str, **counts: int) -> None:
        """Count `counts` (requests=1, exports=1) for `tenant`."""
        with self._lock:
            self._counts.setdefault(tenant, Counter()).update(counts)

    def due(self) -> bool:
        """Whether the counts should be written now."""
        return time.monotonic() - self._last >= self.every

    def flush(self, engine: sa.Engine) -> int:
        """Write every tenant's counts (each in its own tenant); returns how many tenants were written."""
        with self._lock:
            counts, self._counts = self._counts, {}
            self._last = time.monotonic()
        written = 0
        try:
            for tenant, c in counts.items():
                with tenancy.scope(tenant):
                    record(engine, requests=c["requests"], exports=c["exports"], pages_fetched=c["pages_fetched"])
                written += 1
        finally:  # what was not written is counted again (the next flush tries it once more)
            left = list(counts.items())[written:]
            with self._lock:
                for tenant, c in left:
                    self._counts.setdefault(tenant, Counter()).update(c)
        return written
