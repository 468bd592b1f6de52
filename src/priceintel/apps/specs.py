"""How each dashboard view is read: its source relation (migration 0007's app views), typed columns, unique
keyset order and filterable columns; the SQL conditions of the filters, typed frames and connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel.apps.filters import Filters
from priceintel.forecast.columns import BOUNDS
from priceintel.forecast.store import sql_names

#: the app views, in menu order
VIEWS = ("prices", "forecasts", "elasticity", "alerts")


@dataclass(frozen=True)
class ViewSpec:
    """How one view is read: source relation, typed columns, keyset order and filterable columns."""

    name: str
    source: str
    columns: dict[str, str]  # output column -> dtype kind (date|ts|str|float|int|bool)
    key: tuple[str, ...]  # cursor columns (output names), unique together
    date_sql: str | None  # column the date filter applies to (None: handled by the view)
    key_sql: tuple[str, ...] = ()  # their SQL expressions in the keyset comparison (default: `key`)
    descending: bool = False  # keyset comparison is < instead of >
    category_sql: str | None = "category"
    retailer_sql: str | None = "retailer"

    def __post_init__(self) -> None:
        if not self.key_sql:
            object.__setattr__(self, "key_sql", self.key)

    @property
    def order(self) -> str:
        """ORDER BY clause: the keyset columns, descending for a descending keyset."""
        return ", ".join(f"{k} DESC" if self.descending else k for k in self.key_sql)

    @property
    def select(self) -> str:
        """The SELECT list."""
        return sql_names(list(self.columns))


def _cols(spec: str) -> dict[str, str]:
    """Typed columns from "name:kind name …" (kind date|ts|str|float|int|bool; no kind = str)."""
    return dict((*item.split(":"), "str")[:2] for item in spec.split())  # type: ignore[misc]


#: the leading columns of the listing-day views (prices, forecasts)
_LISTING_DAY = "ds:date retailer sku name brand category item_id"

SPECS: dict[str, ViewSpec] = {
    "prices": ViewSpec(
        "prices",
        "mv_app_prices",
        _cols(
            f"{_LISTING_DAY} price:float currency in_stock:bool promo:bool our_price:float gap_pct:float listing_id:int"
        ),
        key=("ds", "sku", "retailer", "listing_id"),
        date_sql="neg_day",
        key_sql=("neg_day", "sku", "retailer", "listing_id"),
    ),
    "forecasts": ViewSpec(
        "forecasts",
        "mv_app_forecasts",
        _cols(
            f"{_LISTING_DAY} unique_id chosen_model yhat:float {' '.join(b + ':float' for b in BOUNDS)} "
            "last_ds:date last_price:float change_pct:float p_change:float run_id:int"
        ),
        key=("sku", "retailer", "unique_id", "ds"),
        date_sql="ds",
    ),
    "elasticity": ViewSpec(
        "elasticity",
        "mv_app_elasticity",
        _cols(
            "sku name brand category elasticity:float ci_lo:float ci_hi:float elasticity_pooled:float "
            "ci_lo_pooled:float ci_hi_pooled:float cross_elasticity:float n:int identified:bool unit_cost:float "
            "current_price:float recommended_price:float change_pct:float expected_units:float "
            "expected_profit:float reason note window_start:date window_end:date run_id:int"
        ),
        key=("sku",),
        date_sql=None,
        retailer_sql=None,
    ),
    "alerts": ViewSpec(
        "alerts",
        "v_app_alerts",
        _cols(
            "alert_id:int ds:date severity state kind rule retailer item_id sku name brand category price:float "
            "reference_price:float value:float reason created_at:ts"
        ),
        key=("ds", "alert_id"),
        date_sql="ds",
        descending=True,
        category_sql="COALESCE(category, '(none)')",
    ),  # as the other views name no category
}

_DTYPES = {"date": "datetime64[ns]", "str": object, "float": "float64", "int": "Int64", "bool": "boolean"}


def view_spec(view: str) -> ViewSpec:
    """The spec of a view name; ValueError naming the known views otherwise."""
    spec = SPECS.get(view) if isinstance(view, str) else None
    if spec is None:
        raise ValueError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")
    return spec


def typed(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Frame with exactly `columns` in order and their dtypes (dates datetime64, ints Int64, bools boolean)."""
    out = pd.DataFrame(index=df.index)
    for col, kind in columns.items():
        s = df[col] if col in df else pd.Series([None] * len(df), index=df.index, dtype=object)
        if kind == "date":
            s = pd.to_datetime(s).astype("datetime64[ns]")
        elif kind == "ts":
            s = pd.to_datetime(s, utc=True)
        elif kind == "float":
            s = pd.to_numeric(s, errors="coerce").astype("float64")
        elif kind in ("int", "bool"):
            s = s.astype(_DTYPES[kind])
        else:
            s = s.astype(object).where(s.notna(), None)
        out[col] = s
    return out.reset_index(drop=True)


def date_key(d: date) -> int:
    """dim_date.date_key of a date (YYYYMMDD)."""
    return d.year * 10000 + d.month * 100 + d.day


def where_sql(spec: ViewSpec, filters: Filters, params: dict, alias: str = "") -> list[str]:
    """SQL conditions (and bound params) of the filters for one view."""
    a = f"{alias}." if alias else ""
    out: list[str] = []
    if spec.date_sql == "neg_day":
        if filters.start:
            out.append(f"{a}neg_day <= :neg_start")
            params["neg_start"] = -date_key(filters.start)
        if filters.end:
            out.append(f"{a}neg_day >= :neg_end")
            params["neg_end"] = -date_key(filters.end)
    elif spec.date_sql:
        if filters.start:
            out.append(f"{a}{spec.date_sql} >= :start")
            params["start"] = filters.start
        if filters.end:
            out.append(f"{a}{spec.date_sql} <= :end")
            params["end"] = filters.end
    for values, col, pname in (
        (filters.retailers, spec.retailer_sql, "retailers"),
        (filters.categories, spec.category_sql, "categories"),
        (filters.skus, "sku", "skus"),
    ):
        if not values:
            continue
        if col is None:  # elasticity: products with a matched listing at one of the retailers
            out.append(
                f"EXISTS (SELECT 1 FROM mv_app_listing_span s WHERE s.sku = {a}sku AND s.retailer = ANY(:{pname}))"
            )
        elif len(values) == 1:
            out.append(f"{a}{col} = :{pname}")
        else:
            out.append(f"{a}{col} = ANY(:{pname})")
        params[pname] = values[0] if (col is not None and len(values) == 1) else list(values)
    if spec.name == "elasticity":
        out.append(f"{a}run_id = :run_id")
    return out


def elasticity_run(conn, filters: Filters) -> int | None:
    """The latest elasticity run whose estimation window overlaps the date filter."""
    sql = (
        "SELECT max(run_id) FROM elasticity_run er WHERE (CAST(:s AS date) IS NULL OR window_end >= :s) "
        "AND (CAST(:e AS date) IS NULL OR window_start <= :e) "
        "AND EXISTS (SELECT 1 FROM mv_app_elasticity m WHERE m.run_id = er.run_id)"
    )
    return conn.execute(sa.text(sql), {"s": filters.start, "e": filters.end}).scalar()


def connect(engine: Engine):
    """A connection with custom plans forced (filters differ in selectivity: a generic plan can be slow)."""
    conn = engine.connect()
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    return conn


def read_frame(conn, sql: str, params: dict) -> pd.DataFrame:
    """Rows of sql as a frame (column names from the cursor)."""
    res = conn.execute(sa.text(sql), params)
    return pd.DataFrame(res.fetchall(), columns=list(res.keys()))
