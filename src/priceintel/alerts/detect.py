"""Alert detection: turn the star schema into candidate events for one day (`as_of`), each with a reason.

Day-over-day events (price drop or rise, robust-z anomaly, new low, back in stock, new listing) compare a
listing's observation on `as_of` with its history; lasting conditions (undercut, MAP violation, out of
stock) also carry the first day of their unbroken episode, so one alert covers the whole episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from priceintel.db.queries import PRICE_STAR

#: every kind of event `detect` emits
KINDS = (
    "new_low",
    "price_drop",
    "price_rise",
    "undercut",
    "map_violation",
    "out_of_stock",
    "back_in_stock",
    "new_listing",
    "anomaly",
)
#: kinds that describe a lasting condition: one alert per episode, auto-resolved when it clears
STATE_KINDS = ("undercut", "map_violation", "out_of_stock")
#: 1.4826 * MAD estimates the standard deviation of normal data
MAD_SCALE = 1.4826

EVENT_COLUMNS = [
    "kind",
    "listing_id",
    "retailer",
    "item_id",
    "title",
    "sku",
    "category",
    "ds",
    "price",
    "reference_price",
    "value",
    "episode_start",
    "reason",
]


def _history(engine, start: date, as_of: date) -> pd.DataFrame:
    """Observations of every listing between start and as_of with match, product and our price (that day's
    shelf price from our sales, else the catalogue's own price)."""
    sql = f"""
        SELECT fp.listing_id, r.retailer, l.item_id, l.title, d.date AS ds, fp.price::float8 AS price,
               fp.currency, fp.in_stock, p.sku, p.category, p.map_price::float8 AS map_price,
               COALESCE(fs.price, p.own_price)::float8 AS our_price
        FROM {PRICE_STAR}
        LEFT JOIN fact_sales fs ON fs.product_id = p.product_id AND fs.date_key = fp.date_key
        WHERE d.date BETWEEN :start AND :as_of
        ORDER BY fp.listing_id, d.date"""
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(sql), conn, params={"start": start, "as_of": as_of})
    df["ds"] = pd.to_datetime(df["ds"]).dt.date
    for col in ("price", "map_price", "our_price"):  # all-NULL columns come back as object
        df[col] = pd.to_numeric(df[col]).astype("float64")
    return df


def latest_date(engine) -> date | None:
    """The newest day in fact_price (the default `as_of`)."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT max(d.date) FROM fact_price fp JOIN dim_date d ON d.date_key = fp.date_key")
        ).scalar()
    return value


def _flag(v: Any) -> bool | None:
    """True/False/None from a nullable boolean cell."""
    return None if v is None or pd.isna(v) else bool(v)


def _money(x: float | None) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:,.2f}"


def _episode_starts(hist: pd.DataFrame, cond: pd.Series, as_of: date) -> dict[int, date]:
    """For listings where cond holds on as_of: the first day of the unbroken run of cond up to as_of."""
    f = hist[["listing_id", "ds"]].assign(c=cond.to_numpy())
    now_true = f.loc[(f["ds"] == as_of) & f["c"], "listing_id"]
    if now_true.empty:
        return {}
    last_false = f[~f["c"]].groupby("listing_id")["ds"].max()
    g = f[f["listing_id"].isin(now_true)].copy()
    g["lf"] = g["listing_id"].map(last_false)
    g = g[g["lf"].isna() | (g["ds"] > g["lf"])]
    return {int(k): v for k, v in g.groupby("listing_id")["ds"].min().items()}


def _event(
    kind: str, lid: int, row: dict, as_of: date, price=None, ref=None, value=None, reason: str = "", episode=None
) -> dict:
    """One event row (EVENT_COLUMNS) of listing lid on as_of."""
    return {
        "kind": kind,
        "listing_id": int(lid),
        "retailer": row["retailer"],
        "item_id": row["item_id"],
        "title": row["title"],
        "sku": row["sku"],
        "category": row["category"],
        "ds": as_of,
        "price": price,
        "reference_price": ref,
        "value": value,
        "episode_start": episode,
        "reason": reason,
    }


# ------------------------------------------------------------------------------ day-over-day events


@dataclass(frozen=True)
class _Day:
    """What the day-over-day checks know per listing: previous observation, price history, first day."""

    as_of: date
    history_days: int
    min_history: int
    prev: dict  #: listing → its last observation before as_of
    lows: dict  #: listing → {min, count, median} of its earlier prices
    mad: dict  #: listing → median absolute deviation of its earlier prices
    first: dict  #: listing → date_key of its first observation ever
    global_first: int | None  #: the first date_key of fact_price


def _day(engine, hist: pd.DataFrame, as_of: date, history_days: int, min_history: int) -> _Day:
    """The reference data of as_of's day-over-day checks."""
    with engine.connect() as conn:
        first = dict(
            conn.execute(sa.text("SELECT listing_id, min(date_key) FROM fact_price GROUP BY listing_id")).all()
        )
    before = hist[hist["ds"] < as_of]
    prev = before.groupby("listing_id").tail(1).set_index("listing_id")
    priced_before = before[before["price"].notna()]
    lows = priced_before.groupby("listing_id")["price"].agg(["min", "count", "median"])
    mad = (
        priced_before.assign(
            dev=(priced_before["price"] - priced_before.groupby("listing_id")["price"].transform("median")).abs()
        )
        .groupby("listing_id")["dev"]
        .median()
    )
    return _Day(
        as_of,
        history_days,
        min_history,
        prev.to_dict("index"),
        lows.to_dict("index"),
        mad.to_dict(),
        first,
        min(first.values()) if first else None,
    )


def _move_events(day: _Day, lid: int, row: dict) -> list[dict]:
    """price_drop / price_rise against the previous observation, plus an anomaly far from the listing's median."""
    cur, p = row["price"], day.prev.get(lid)
    if p is None or pd.isna(cur) or pd.isna(p["price"]) or cur == p["price"]:
        return []
    change = cur / p["price"] - 1
    kind = "price_drop" if change < 0 else "price_rise"
    word = "fell" if change < 0 else "rose"
    out = [
        _event(
            kind,
            lid,
            row,
            day.as_of,
            cur,
            p["price"],
            abs(change),
            f"price {word} {abs(change):.1%} from {_money(p['price'])} to {_money(cur)} "
            f"(previous observation {p['ds']})",
        )
    ]
    low = day.lows.get(lid)
    if low is not None and low["count"] >= day.min_history:
        med = low["median"]
        scale = max(MAD_SCALE * day.mad[lid], 0.01 * med)
        z = (cur - med) / scale
        out.append(
            _event(
                "anomaly",
                lid,
                row,
                day.as_of,
                cur,
                med,
                abs(z),
                f"price {_money(cur)} is {abs(z):.1f} robust SDs {'above' if z > 0 else 'below'} the "
                f"listing's median {_money(med)} over {int(low['count'])} days "
                f"(MAD {_money(day.mad[lid])})",
            )
        )
    return out


def _new_low_event(day: _Day, lid: int, row: dict) -> dict | None:
    """new_low: a price under every earlier price of the history window."""
    cur, low = row["price"], day.lows.get(lid)
    if not (pd.notna(cur) and low is not None and low["count"] >= day.min_history and cur < low["min"]):
        return None
    lowest = low["min"]
    return _event(
        "new_low",
        lid,
        row,
        day.as_of,
        cur,
        lowest,
        1 - cur / lowest,
        f"new low {_money(cur)}, {1 - cur / lowest:.1%} under the previous low {_money(lowest)} "
        f"of the last {day.history_days} days",
    )


def _stock_and_listing_events(day: _Day, lid: int, row: dict) -> list[dict]:
    """back_in_stock after an out-of-stock observation; new_listing on a listing's first day (not the first load)."""
    out = []
    cur, p = row["price"], day.prev.get(lid)
    if p is not None and _flag(row["in_stock"]) is True and _flag(p["in_stock"]) is False:
        reason = f"back in stock at {_money(cur)} (out of stock on {p['ds']})"
        out.append(_event("back_in_stock", lid, row, day.as_of, cur, reason=reason))
    first = day.first.get(lid)
    if (
        first is not None
        and day.global_first is not None
        and first > day.global_first
        and first == int(day.as_of.strftime("%Y%m%d"))
    ):
        reason = f"new {row['retailer']} listing {row['item_id']!r} first seen on {day.as_of}" + (
            f" (matched to {row['sku']})" if isinstance(row["sku"], str) else ""
        )
        out.append(_event("new_listing", lid, row, day.as_of, cur, reason=reason))
    return out


def _listing_events(day: _Day, lid: int, row: dict) -> list[dict]:
    """Every day-over-day event of one listing observed on as_of."""
    out = _move_events(day, lid, row)
    low = _new_low_event(day, lid, row)
    if low is not None:
        out.append(low)
    return out + _stock_and_listing_events(day, lid, row)


# ---------------------------------------------------------------------------------- conditions


#: the conditions of a price under a reference: (reference column, the reason's verb, what the price is under)
_BELOW = {
    "undercut": ("our_price", "sells", "under our"),
    "map_violation": ("map_price", "advertises", "under its MAP"),
}


def _condition_event(kind: str, lid: int, row: dict, start: date, as_of: date) -> dict:
    """The event of a lasting condition (undercut, map_violation, out_of_stock) whose episode began on start."""
    since = f" since {start}" if start != as_of else ""
    if kind in _BELOW:
        ref, verb, under = _BELOW[kind]
        gap = 1 - row["price"] / row[ref]
        reason = (
            f"{row['retailer']} {verb} {row['sku']} at {_money(row['price'])}, {gap:.1%} {under} "
            f"{_money(row[ref])}{since}"
        )
        return _event(kind, lid, row, as_of, row["price"], row[ref], gap, reason, start)
    reason = f"{row['retailer']} listing {row['item_id']!r} is out of stock{since}"
    return _event(kind, lid, row, as_of, None, None, float((as_of - start).days + 1), reason, start)


def _condition_events(hist: pd.DataFrame, today: dict, as_of: date) -> list[dict]:
    """Lasting conditions that hold on as_of, each with the first day of its episode."""
    priced = hist["price"].notna()
    conditions = {
        "undercut": priced & hist["our_price"].notna() & (hist["price"] < hist["our_price"]),
        "map_violation": priced & hist["map_price"].notna() & (hist["price"] < hist["map_price"]),
        "out_of_stock": hist["in_stock"].eq(False),
    }
    return [
        _condition_event(kind, lid, today[lid], start, as_of)
        for kind, cond in conditions.items()
        for lid, start in _episode_starts(hist, cond, as_of).items()
    ]


def detect(engine, as_of: date | str | None = None, history_days: int = 90, min_history: int = 7) -> pd.DataFrame:
    """Candidate events on day as_of (default: the newest loaded day), each with a reason (EVENT_COLUMNS)."""
    as_of = pd.Timestamp(as_of).date() if as_of is not None else latest_date(engine)
    if as_of is None:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    hist = _history(engine, as_of - timedelta(days=history_days), as_of)
    day = _day(engine, hist, as_of, history_days, min_history)
    today = hist[hist["ds"] == as_of].set_index("listing_id").to_dict("index")
    events = [event for lid, row in today.items() for event in _listing_events(day, lid, row)]
    events += _condition_events(hist, today, as_of)
    out = pd.DataFrame(events, columns=EVENT_COLUMNS)
    return out.sort_values(["kind", "listing_id"]).reset_index(drop=True)
