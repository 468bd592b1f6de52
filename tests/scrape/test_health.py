"""Watch health and the shop extraction-rate signal on hand-made fetch-outcome frames."""

from __future__ import annotations

import pandas as pd
import pytest

from priceintel.scrape.health import (
    DROP_COLUMNS,
    EXTRACTION_DROP,
    WATCH_STATUSES,
    HealthError,
    shop_extraction_drop,
    watch_status,
)

T0 = pd.Timestamp("2026-07-01 06:00", tz="UTC")


def _fetches(history: dict, start: pd.Timestamp = T0) -> pd.DataFrame:
    """{watch_id: [outcome per day, ...]} -> one fetch a day per watch (404 for not_found)."""
    rows = []
    for wid, outs in history.items():
        for i, out in enumerate(outs):
            status = {"not_found": 404, "blocked": 403, "error": 500, "redirected": 200}.get(out, 200)
            rows.append({"watch_id": wid, "fetched_at": start + pd.Timedelta(days=i), "outcome": out,
                         "http_status": status})
    return pd.DataFrame(rows, columns=["watch_id", "fetched_at", "outcome", "http_status"])


def _status(history: dict, days: int = 3) -> dict:
    out = watch_status(_fetches(history), days=days)
    return {r.watch_id: (r.status, r.reason, r.since) for r in out.itertuples()}


def _day(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=i)


def test_each_status():
    got = _status({
        "ok": ["ok", "ok", "ok"],
        "gone": ["ok", "not_found", "not_found", "not_found"],
        "moved": ["ok", "redirected", "redirected", "redirected"],
        "blocked": ["ok", "ok", "blocked"],
        "failing": ["ok", "no_price", "error", "no_price"],
        "mixed": ["ok", "not_found", "error", "no_price"],  # three bad days of different kinds
        "new1": ["no_price"],
        "new2": ["error", "not_found"],
        "fresh": ["ok"],
    })
    assert {k: v[0] for k, v in got.items()} == {
        "ok": "ok", "gone": "gone", "moved": "moved", "blocked": "blocked", "failing": "failing",
        "mixed": "failing", "new1": "new", "new2": "new", "fresh": "ok",
    }
    assert set(v[0] for v in got.values()) <= set(WATCH_STATUSES)
    assert got["gone"][2] == _day(1) and "not found on each of the last 3 days (HTTP 404)" in got["gone"][1]
    assert got["moved"][2] == _day(1) and "redirected to another product" in got["moved"][1]
    assert got["blocked"][2] == _day(2) and "blocked" in got["blocked"][1]
    assert got["failing"][2] == _day(1) and "(error 1, no_price 2)" in got["failing"][1]
    assert got["ok"][2] == _day(0) and got["fresh"][2] == _day(0)
    assert got["new2"][2] == _day(0) and "judged after 3 days" in got["new2"][1]


def test_streaks_shorter_than_n_are_not_yet_a_verdict():
    got = _status({
        "blip": ["ok", "ok", "error"],  # one bad day after ok: still ok
        "two404": ["ok", "ok", "not_found", "not_found"],
        "recovered": ["not_found", "not_found", "not_found", "ok"],
        "back": ["no_price", "no_price", "no_price", "ok", "error"],
    })
    assert got["blip"][0] == "ok" and "latest fetch error for 1 day(s)" in got["blip"][1]
    assert got["blip"][2] == _day(0)  # ok since the start of the last run of ok days
    assert got["two404"][0] == "ok" and got["two404"][2] == _day(0)
    assert got["recovered"][0] == "ok" and got["recovered"][2] == _day(3)
    assert got["back"][0] == "ok" and got["back"][2] == _day(3)


def test_days_parameter():
    history = {"w": ["ok", "not_found"]}
    assert _status(history, days=1)["w"][0] == "gone"
    assert _status(history, days=2)["w"][0] == "ok"
    assert _status({"w": ["ok"] + ["no_price"] * 4}, days=5)["w"][0] == "ok"
    assert _status({"w": ["ok"] + ["no_price"] * 5}, days=5)["w"][0] == "failing"
    with pytest.raises(HealthError, match="days must be a whole number >= 1"):
        watch_status(_fetches(history), days=0)


def test_one_outcome_per_day_the_latest_wins_and_gaps_are_skipped():
    df = pd.DataFrame({
        "watch_id": [7] * 5,
        "fetched_at": [_day(0), _day(1), _day(1) + pd.Timedelta(hours=3), _day(5), _day(9)],  # days 2-4, 6-8 missing
        "outcome": ["ok", "ok", "not_found", "not_found", "not_found"],
        "http_status": [200, 200, 410, 410, 410],
    })
    row = watch_status(df).iloc[0]
    assert row.status == "gone" and row.days_fetched == 4 and row.since == _day(1) + pd.Timedelta(hours=3)
    assert "(HTTP 410)" in row.reason and row.last_outcome == "not_found" and row.last_fetched_at == _day(9)
    # unsorted input and naive timestamps (taken as UTC) give the same answer
    shuffled = df.sample(frac=1, random_state=3).assign(fetched_at=lambda d: d.fetched_at.dt.tz_localize(None))
    assert watch_status(shuffled).iloc[0].status == "gone"


def test_never_fetched_watches_single_watch_and_empty_frames():
    df = pd.DataFrame({"watch_id": [1, 2, 2], "fetched_at": [pd.NaT, _day(0), _day(1)],
                       "outcome": [None, "ok", "ok"]})
    out = watch_status(df)
    assert list(out.watch_id) == [1, 2] and list(out.status) == ["new", "ok"]
    assert out.iloc[0].reason == "never fetched" and pd.isna(out.iloc[0].since) and out.iloc[0].days_fetched == 0
    one = watch_status(pd.DataFrame({"fetched_at": [_day(0)], "outcome": ["blocked"]}))  # no watch_id column
    assert len(one) == 1 and one.iloc[0].status == "blocked" and one.iloc[0].watch_id is None
    empty = watch_status(pd.DataFrame(columns=["watch_id", "fetched_at", "outcome", "http_status"]))
    assert empty.empty and list(empty.columns)[:3] == ["watch_id", "status", "reason"]


def test_bad_frames():
    with pytest.raises(HealthError, match=r"watch_status\(fetches\): column\(s\) \['outcome'\] missing"):
        watch_status(pd.DataFrame({"fetched_at": [_day(0)]}))
    with pytest.raises(HealthError, match=r"unknown outcome\(s\) \['timeout'\]"):
        watch_status(pd.DataFrame({"fetched_at": [_day(0)], "outcome": ["timeout"]}))
    with pytest.raises(HealthError, match="expected a pandas DataFrame"):
        watch_status([{"fetched_at": _day(0), "outcome": "ok"}])


# --- shop extraction-rate drop ---------------------------------------------------------------------------
def _shop_day(shop: str, day: int, ok: int, **other: int) -> list[dict]:
    outs = ["ok"] * ok + [o for o, n in other.items() for _ in range(n)]
    return [{"shop": shop, "fetched_at": _day(day) + pd.Timedelta(minutes=i), "outcome": o} for i, o in enumerate(outs)]


def _frame(*days: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([r for d in days for r in d])


def test_extraction_drop_is_flagged_with_its_figures():
    df = _frame(
        *[_shop_day("acme", d, 9, no_price=1) for d in range(5)],  # 90% ok for five days
        _shop_day("acme", 5, 2, no_price=6, blocked=2),  # today 20%
        *[_shop_day("steady", d, 8, error=2) for d in range(6)],  # 80% every day
    )
    out = shop_extraction_drop(df)
    assert list(out.columns) == DROP_COLUMNS and len(out) == 1
    row = out.iloc[0]
    assert row.shop == "acme" and row.signal == EXTRACTION_DROP and row.day == _day(5).floor("D")
    assert (row.fetches, row.ok, row.ok_share, row.baseline_share, row.baseline_days) == (10, 2, 0.2, 0.9, 5)
    assert row.outcomes == {"blocked": 2, "no_price": 6, "ok": 2}
    assert "ok share 20%" in row.message and "median of 90% over its previous 5 day(s)" in row.message
    assert "no_price 6" in row.message


def test_extraction_drop_edge_cases():
    base = [_shop_day("acme", d, 10) for d in range(4)]
    # fewer than min_fetches today: no verdict
    assert shop_extraction_drop(_frame(*base, _shop_day("acme", 4, 0, no_price=4))).empty
    # exactly half of the baseline is not "below half"
    assert shop_extraction_drop(_frame(*base, _shop_day("acme", 4, 5, no_price=5))).empty
    assert len(shop_extraction_drop(_frame(*base, _shop_day("acme", 4, 4, no_price=6)))) == 1
    # delisted products (not_found, redirected) are not extraction failures
    assert shop_extraction_drop(_frame(*base, _shop_day("acme", 4, 5, not_found=20, redirected=5))).empty
    # no baseline (a new shop) or too little of it: no verdict
    assert shop_extraction_drop(_frame(_shop_day("new", 0, 0, error=10))).empty
    assert shop_extraction_drop(_frame(_shop_day("new", 0, 10), _shop_day("new", 1, 0, no_price=10))).empty
    assert len(shop_extraction_drop(_frame(_shop_day("new", 0, 10), _shop_day("new", 1, 0, no_price=10)),
                                    min_baseline_days=1)) == 1
    # a shop that does not answer (an outage) is not a broken extractor
    assert shop_extraction_drop(_frame(*base, _shop_day("acme", 4, 0, error=10))).empty
    # thin baseline days (< min_fetches) do not count; old days outside the window neither
    thin = [_shop_day("acme", d, 2) for d in range(4)]
    assert shop_extraction_drop(_frame(*thin, _shop_day("acme", 4, 0, error=10))).empty
    old = [_shop_day("acme", d, 10) for d in range(3)]
    assert shop_extraction_drop(_frame(*old, _shop_day("acme", 30, 0, error=10)), baseline_days=14).empty
    # as_of picks the day; a `retailer` column works as well; a shop not fetched that day is skipped
    df = _frame(*base, _shop_day("acme", 4, 1, no_price=9), _shop_day("other", 5, 10)).rename(columns={"shop": "retailer"})
    assert shop_extraction_drop(df).empty  # latest day is 5: acme was not fetched then
    flagged = shop_extraction_drop(df, as_of="2026-07-05")
    assert list(flagged.shop) == ["acme"] and flagged.iloc[0].day == _day(4).floor("D")
    assert shop_extraction_drop(pd.DataFrame(columns=["shop", "fetched_at", "outcome"])).empty
    with pytest.raises(HealthError, match=r"column\(s\) \['retailer'\] missing"):
        shop_extraction_drop(pd.DataFrame({"fetched_at": [_day(0)], "outcome": ["ok"]}))
