"""Alerts: detection on real loads, YAML rules, dedup, cooldown, quiet hours, digests, real SMTP + webhook delivery."""

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from _receivers import HTTPSink, SMTPSink
from priceintel import clean, config
from priceintel.alerts import notify
from priceintel.alerts.deliver import deliver_pending, run_alerts
from priceintel.alerts.detect import KINDS
from priceintel.alerts.rules import (
    RuleError,
    dedup_key,
    load_rules,
    parse_duration,
    parse_rules,
    save_rules,
    set_rule_enabled,
)
from priceintel.alerts.store import AlertError, list_alerts, set_state, store_alerts
from priceintel.db import tenancy
from priceintel.demo import Storefronts, generate_world
from priceintel.match import rules as match
from priceintel.pipeline import hooks as monitor
from priceintel.pipeline import stages as pipeline
from priceintel.scrape import Fetcher, RawArchive, scrape_demo

NOON = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)

E2E_RULES = """
timezone: UTC
rules:
  - {name: undercut, kind: undercut, severity: critical}
  - {name: map, kind: map_violation, severity: critical}
  - {name: oos, kind: out_of_stock}
  - {name: back, kind: back_in_stock, severity: info}
  - {name: newlisting, kind: new_listing, severity: info}
  - {name: crash, kind: price_drop, threshold: 0.5}
  - {name: rises, kind: price_rise, enabled: false}
"""


@pytest.fixture()
def alert_db(clean_db):
    """Empty star schema and alert tables on the session database."""
    with tenancy.as_owner(), clean_db.begin() as conn:
        conn.exec_driver_sql("TRUNCATE alert, alert_delivery, quality_result, schedule_run RESTART IDENTITY CASCADE")
    return clean_db


def _notify_env(monkeypatch, smtp: SMTPSink, hook: HTTPSink) -> None:
    monkeypatch.setenv("PRICEINTEL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PRICEINTEL_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("PRICEINTEL_ALERT_EMAIL_TO", "pricing@example.test")
    monkeypatch.setenv("PRICEINTEL_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("PRICEINTEL_NOTIFY_BACKOFF", "0")


# ------------------------------------------------------------------------------ end to end


def _inject(world):
    """Day N = copy of day N-1 except: one undercut, one MAP violation, one stock-out. Returns (world, picks)."""
    prices, sales = world.prices.copy(), world.sales.copy()
    days = sorted(prices["ds"].unique())
    prev_day, day = days[-2], days[-1]
    cols = ["price", "list_price", "in_stock", "promo"]
    prev = prices[prices["ds"] == prev_day].set_index(["retailer", "item_id"])[cols]
    today = prices["ds"] == day
    keys = list(zip(prices.loc[today, "retailer"], prices.loc[today, "item_id"]))
    prices.loc[today, cols] = prev.loc[keys, cols].to_numpy()
    ours_prev = sales[sales["ds"] == prev_day].set_index("sku")["price"]
    sales.loc[sales["ds"] == day, "price"] = sales.loc[sales["ds"] == day, "sku"].map(ours_prev).to_numpy()

    m = world.truth_matches.dropna(subset=["sku"]).merge(world.products[["sku", "map_price"]], on="sku")
    m["our"] = m["sku"].map(ours_prev)
    m = m.merge(prev.reset_index(), on=["retailer", "item_id"])
    ok = m["in_stock"].astype(bool) & m["price"].notna() & (m["price"] >= m["our"]) & (m["price"] <= 1.3 * m["our"])
    ok &= m["map_price"].isna() | (m["price"] >= m["map_price"])
    cand = m[ok].sort_values(["sku", "retailer"])
    with_map = cand[cand["map_price"].notna() & (cand["map_price"] * 0.95 < cand["our"])]
    l2 = with_map.iloc[0]
    rest = cand[cand["sku"] != l2["sku"]]
    l1 = rest[rest["map_price"].isna() | (rest["map_price"] < rest["our"] * 0.94)].iloc[0]
    l3 = rest[rest["sku"] != l1["sku"]].iloc[0]
    picks = {"undercut": l1, "map": l2, "stockout": l3}

    def setp(row, **vals):
        mask = today & (prices["retailer"] == row["retailer"]) & (prices["item_id"] == row["item_id"])
        for k, v in vals.items():
            prices.loc[mask, k] = v

    setp(l1, price=round(l1["our"] * 0.95, 2))
    setp(l2, price=round(l2["map_price"] * 0.9, 2))
    setp(l3, price=np.nan, list_price=np.nan, in_stock=False)
    new = {"undercut": round(l1["our"] * 0.95, 2), "map": round(l2["map_price"] * 0.9, 2)}
    return replace(world, prices=prices, sales=sales), picks, new


def _load_days(tmp, world, urls, days, rules, engine, run_key):
    """Scrape the given days from the live shops, clean, match, load and run the post-load monitor."""
    data_dir = tmp / "data"
    last = pd.Timestamp(max(days))
    replace(world, sales=world.sales[world.sales["ds"] <= last]).write(data_dir / "demo" / "world")
    with Fetcher(archive=RawArchive(data_dir / "raw")) as fetcher:
        offers, errors = scrape_demo(urls, days, fetcher)
    obs, cerr = clean.offers_to_observations(offers)
    listings = clean.listings_from_observations(obs)
    matches = match.match_listings(listings, world.products)
    interim = data_dir / "interim"
    world_dir = data_dir / "demo" / "world"
    up = {"world": {"world": world_dir, "catalogue": world_dir / "products.csv", "sales": world_dir / "sales.csv"},
          "scrape": {"offers": interim / "offers.parquet", "errors": interim / "scrape_errors.csv"},
          "clean": {"observations": interim / "observations.parquet", "listings": interim / "listings.parquet",
                    "errors": interim / "clean_errors.csv"},
          "match": {"matches": interim / "matches.parquet"}}
    for frame, path in ((offers, up["scrape"]["offers"]), (errors, up["scrape"]["errors"]),
                        (obs, up["clean"]["observations"]), (listings, up["clean"]["listings"]),
                        (cerr, up["clean"]["errors"]), (matches, up["match"]["matches"])):
        pipeline.save_frame(frame, path)
    pipeline.load_stage(up, data_dir)
    return monitor.monitor_load(engine, run_key, None, tmp / "reports", rules=rules, now=NOON)


def _listing_id(engine, retailer, item_id):
    with engine.connect() as c:
        return c.execute(sa.text("SELECT listing_id FROM dim_listing l JOIN dim_retailer r USING (retailer_id) "
                                 "WHERE r.retailer = :r AND l.item_id = :i"), {"r": retailer, "i": item_id}).scalar()


@pytest.mark.slow
def test_one_day_with_undercut_map_violation_and_stockout_alerts_exactly_once(alert_db, tmp_path, monkeypatch):
    world = generate_world(n_products=6, n_days=10, seed=11)
    world, picks, new = _inject(world)
    rules = parse_rules(E2E_RULES, "e2e.yaml")
    days = sorted(pd.to_datetime(world.prices["ds"].unique()).date)
    with SMTPSink() as smtp, HTTPSink() as hook, Storefronts(world) as fronts:
        _notify_env(monkeypatch, smtp, hook)
        urls = fronts.urls
        base = _load_days(tmp_path, world, urls, days[:-1], rules, alert_db, "baseline")
        assert base["alerts"]["as_of"] == days[-2]
        baseline_keys = set(smtp.alert_keys())
        assert sorted(smtp.alert_keys()) == sorted(hook.alert_keys())  # baseline alerts went out on both channels
        smtp.messages.clear()
        hook.bodies.clear()

        # advance one day: exactly the injected events alert, once per channel
        out = _load_days(tmp_path, world, urls, [days[-1]], rules, alert_db, "day")
        d = days[-1].isoformat()
        lid = {k: _listing_id(alert_db, p["retailer"], p["item_id"]) for k, p in picks.items()}
        expected = [f"undercut|undercut|{lid['undercut']}|{d}", f"map|map_violation|{lid['map']}|{d}",
                    f"oos|out_of_stock|{lid['stockout']}|{d}"]
        if new["map"] < picks["map"]["our"]:  # a price under MAP is also under ours
            expected.append(f"undercut|undercut|{lid['map']}|{d}")
        assert sorted(smtp.alert_keys()) == sorted(expected)
        assert sorted(hook.alert_keys()) == sorted(expected)
        assert len(smtp.messages) == len(expected) and len(hook.bodies) == len(expected)
        assert not baseline_keys & set(expected)
        assert out["alerts"]["delivered"]["alerts"] == 2 * len(expected)
        mail = next(m for m in smtp.messages if "map_violation" in m["X-PriceIntel-Alerts"])
        assert "under its MAP" in mail.get_content() and mail["Subject"].startswith("[critical] map violation")
        body = next(b for b in hook.bodies if b["alerts"][0]["kind"] == "undercut")
        assert "under our" in body["alerts"][0]["reason"]

        # a re-run of the same day (scraped again) sends nothing and stores nothing new
        with alert_db.connect() as c:
            n_alerts = c.execute(sa.text("SELECT count(*) FROM alert")).scalar()
        again = _load_days(tmp_path, world, urls, [days[-1]], rules, alert_db, "rerun")
        assert again["alerts"]["inserted"] == 0 and again["alerts"]["duplicates"] >= len(expected)
        assert len(smtp.messages) == len(expected) and len(hook.bodies) == len(expected)
        with alert_db.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM alert")).scalar() == n_alerts
            assert c.execute(sa.text("SELECT count(*) FROM alert_delivery WHERE status = 'failed'")).scalar() == 0
    assert (tmp_path / "reports" / "quality.html").exists()


# ----------------------------------------------------------------------------------- rules


def test_shipped_rule_file_is_valid():
    rules = load_rules(config.PROJ_ROOT / "config" / "alert_rules.yaml")
    assert {r.kind for r in rules.rules} == set(KINDS)
    assert rules.rule("big-drop").cooldown == 24.0


def test_bad_rules_name_file_rule_and_field(tmp_path):
    bad = """
rules:
  - name: cheap
    kind: undercut
    threshold: -0.1
  - name: cheap
    kind: price_drop
  - name: typo
    kind: price_dorp
    cooldown: soon
    scope: {sku: [X]}
"""
    with pytest.raises(RuleError) as err:
        parse_rules(bad, "team.yaml")
    msg = str(err.value)
    assert "team.yaml: rule 'cheap' (rules[0]), field threshold" in msg
    assert "rule 'typo' (rules[2]), field kind" in msg and "price_dorp" in msg
    assert "field cooldown" in msg and "'soon' is not a duration" in msg
    assert "field scope.sku" in msg
    with pytest.raises(RuleError, match="used twice"):
        parse_rules("rules:\n - {name: a, kind: undercut}\n - {name: a, kind: new_low}\n", "x.yaml")
    with pytest.raises(RuleError, match="x.yaml: not valid YAML"):
        parse_rules("rules: [", "x.yaml")
    with pytest.raises(RuleError, match="unknown time zone"):
        parse_rules("quiet_hours: {start: '22:00', end: '06:00', tz: Mars/Base}\n", "x.yaml")
    with pytest.raises(RuleError, match="not found"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(RuleError, match="expected a mapping"):
        parse_rules("- 1\n", "x.yaml")


def test_scope_threshold_and_enable_toggle(tmp_path):
    events = pd.DataFrame({
        "kind": ["price_drop"] * 3 + ["undercut"], "listing_id": [1, 2, 3, 4],
        "retailer": ["amazon", "walmart", "amazon", "amazon"], "item_id": list("abcd"), "title": list("abcd"),
        "sku": ["S1", "S2", None, "S1"], "category": ["toys", "toys", None, "toys"],
        "ds": [date(2026, 7, 9)] * 4, "price": [1.0] * 4, "reference_price": [2.0] * 4,
        "value": [0.2, 0.05, 0.3, 0.1], "episode_start": [None, None, None, date(2026, 7, 3)], "reason": ["r"] * 4})
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: toy-drop, kind: price_drop, threshold: 0.1, "
                    "scope: {categories: [toys], retailers: [Amazon]}}\n  - {name: uc, kind: undercut}\n")
    rules = load_rules(path)
    out = rules.apply(events)
    assert list(out["rule"]) == ["toy-drop", "uc"] and list(out["listing_id"]) == [1, 4]
    assert out.loc[1, "dedup_key"] == "uc|undercut|4|2026-07-03"  # conditions keyed by episode start
    assert out.loc[0, "dedup_key"] == "toy-drop|price_drop|1|2026-07-09"
    set_rule_enabled(path, "uc", False)
    assert list(load_rules(path).apply(events)["rule"]) == ["toy-drop"]
    with pytest.raises(RuleError, match="no rule named 'nope'"):
        set_rule_enabled(path, "nope", True)
    with pytest.raises(RuleError):
        save_rules("rules: [{name: x, kind: bogus}]", path)
    assert "toy-drop" in path.read_text()  # an invalid edit is not written
    # writes are whole (renamed into place) and one at a time (a lock beside the file, across processes)
    import threading

    errors: list = []

    def toggle(i: int) -> None:
        try:
            set_rule_enabled(path, "uc", bool(i % 2))
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    workers = [threading.Thread(target=toggle, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and {r.name for r in load_rules(path).rules} == {"toy-drop", "uc"}
    assert not list(tmp_path.glob(".rules.yaml.*.tmp")) and (tmp_path / "rules.yaml.lock").exists()
    assert parse_duration("90m") == 1.5 and parse_duration(2) == 2.0
    assert rules.apply(events.iloc[0:0]).empty


# ------------------------------------------------------------------------------- store + send


def _alert_rows(*specs):
    rows = []
    for rule, kind, lid, day, delivery in specs:
        rows.append({"kind": kind, "listing_id": lid, "retailer": "amazon", "item_id": f"B{lid}", "title": "t",
                     "sku": "S1", "category": "toys", "ds": day, "price": 9.5, "reference_price": 10.0,
                     "value": 0.05, "episode_start": day, "reason": f"{kind} on {lid}", "rule": rule,
                     "severity": "warning", "delivery": delivery, "channels": ["email", "webhook"],
                     "cooldown": 48.0 if rule == "cool" else 0.0})
    df = pd.DataFrame(rows)
    df["dedup_key"] = [dedup_key(r) for r in df.to_dict("records")]
    return df


def test_cooldown_dedup_and_manual_states(alert_db):
    d1, d2, d3 = date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3)
    r1 = store_alerts(alert_db, _alert_rows(("cool", "price_drop", 7, d1, "immediate")))
    r2 = store_alerts(alert_db, _alert_rows(("cool", "price_drop", 7, d2, "immediate")))
    r3 = store_alerts(alert_db, _alert_rows(("cool", "price_drop", 7, d3, "immediate"),
                                                   ("cool", "price_drop", 7, d1, "immediate")))
    assert (r1.inserted, r2.cooled_down, r3.inserted, r3.duplicates) == (1, 1, 1, 1)
    listed = list_alerts(alert_db, state="new")
    assert len(listed) == 2 and list(listed["ds"]) == [d3, d1]
    ids = list(listed["alert_id"])
    assert set_state(alert_db, ids[:1], "acknowledged") == 1
    assert set_state(alert_db, ids, "resolved") == 2
    assert list_alerts(alert_db, state="new").empty
    with pytest.raises(AlertError, match=r"no alert with id\(s\) \[9999\]"):
        set_state(alert_db, [9999], "resolved")
    with pytest.raises(AlertError, match="unknown"):
        set_state(alert_db, ids, "snoozed")


def test_quiet_hours_hold_and_digest_batches(alert_db):
    day = date(2026, 7, 5)
    store_alerts(alert_db, _alert_rows(("now", "undercut", 1, day, "immediate"),
                                              ("dig", "new_low", 2, day, "digest"),
                                              ("dig", "new_low", 3, day, "digest")))
    rules = parse_rules("digest_time: '08:00'\nquiet_hours: {start: '22:00', end: '07:00', tz: UTC}\n"
                               "rules: [{name: now, kind: undercut}, {name: dig, kind: new_low, delivery: digest}]",
                               "r.yaml")
    with HTTPSink() as hook:
        notifiers = {"webhook": notify.WebhookNotifier(hook.url)}
        night = datetime(2026, 7, 7, 6, 30, tzinfo=UTC)  # quiet hours, before the digest time
        held = deliver_pending(alert_db, notifiers, rules, night)
        assert held["held_quiet"] == 1 and held["held_digest"] == 2 and hook.bodies == []
        morning = datetime(2026, 7, 7, 9, 0, tzinfo=UTC)
        sent = deliver_pending(alert_db, notifiers, rules, morning)
        assert sent["alerts"] == 1 and sent["digests"] == 1
        digest = next(b for b in hook.bodies if b["kind"] == "digest")
        assert len(digest["alerts"]) == 2 and digest["title"].startswith("priceintel daily digest: 2")
        assert deliver_pending(alert_db, notifiers, rules, morning)["alerts"] == 0
        assert len(hook.bodies) == 2
        # one digest a day: a later digest alert waits for the next day's digest time
        store_alerts(alert_db, _alert_rows(("dig", "new_low", 4, day, "digest")))
        later = deliver_pending(alert_db, notifiers, rules, datetime(2026, 7, 7, 15, 0, tzinfo=UTC))
        assert later["held_digest"] == 1 and len(hook.bodies) == 2
        nxt = deliver_pending(alert_db, notifiers, rules, datetime(2026, 7, 8, 8, 5, tzinfo=UTC))
        assert nxt["digests"] == 1 and len(hook.bodies[-1]["alerts"]) == 1


def test_failed_delivery_is_retried_recorded_and_never_raises(alert_db, monkeypatch):
    monkeypatch.setenv("PRICEINTEL_NOTIFY_BACKOFF", "0")
    day = date(2026, 7, 5)
    store_alerts(alert_db, _alert_rows(("now", "undercut", 1, day, "immediate")))
    rules = parse_rules("rules: [{name: now, kind: undercut}]", "r.yaml")
    dead = {"webhook": notify.WebhookNotifier(f"http://127.0.0.1:{_free()}/x", timeout=2)}
    out = deliver_pending(alert_db, dead, rules, NOON)
    assert out["failed"] == 1
    with alert_db.connect() as c:
        row = c.execute(sa.text("SELECT status, attempts, error FROM alert_delivery")).one()
    assert row.status == "failed" and row.attempts == 4 and "ConnectionError" in row.error
    with HTTPSink(fail_first=2) as hook:  # the next run retries: two 500s, then delivered
        live = {"webhook": notify.WebhookNotifier(hook.url)}
        assert deliver_pending(alert_db, live, rules, NOON)["alerts"] == 1
        assert hook.hits == 3 and len(hook.bodies) == 1
    with alert_db.connect() as c:
        rows = c.execute(sa.text("SELECT status, attempts FROM alert_delivery ORDER BY delivery_id")).all()
    assert [tuple(r) for r in rows] == [("failed", 4), ("sent", 3)]


def _free():
    from _receivers import free_port

    return free_port()


def test_email_with_login_and_slack_blocks(monkeypatch):
    note = notify.Notification("[critical] undercut: amazon B1", alerts=[
        {"alert_id": 1, "dedup_key": "k1", "kind": "undercut", "severity": "critical", "retailer": "amazon",
         "item_id": "B1", "sku": "S1", "ds": date(2026, 7, 1), "reason": "amazon sells S1 at 9.00, 10% under our 10.00",
         "price": np.float64(9.0)}])
    with SMTPSink(user="bot", password="s3cret") as smtp:
        mailer = notify.EmailNotifier("127.0.0.1", smtp.port, "bot@x.test", ["a@x.test"], user="bot",
                                      password="s3cret")
        assert notify.send_with_retry(mailer, note, retries=0, backoff=0).ok
        assert smtp.logins == ["bot"] and smtp.alert_keys() == ["k1"]
        assert "10% under our 10.00" in smtp.messages[0].get_content()
        wrong = notify.EmailNotifier("127.0.0.1", smtp.port, "bot@x.test", ["a@x.test"], user="bot", password="no",
                                     timeout=1)
        res = notify.send_with_retry(wrong, note, retries=0, backoff=0)
        assert not res.ok and res.attempts == 1 and "email via 127.0.0.1" in res.error
        assert len(smtp.messages) == 1
    with HTTPSink() as hook:
        monkeypatch.setenv("PRICEINTEL_SLACK_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("PRICEINTEL_SMTP_HOST", "")
        monkeypatch.setenv("PRICEINTEL_ALERT_WEBHOOK_URL", "")
        notifiers = notify.from_settings()
        assert list(notifiers) == ["slack"]
        delivered = notify.broadcast(None, notifiers, note)
        assert delivered["slack"].ok
        body = hook.bodies[0]
        assert body["text"] == note.title and body["blocks"][0]["type"] == "header"
        assert "*undercut*" in body["blocks"][1]["text"]["text"]


def test_cli_alert_commands(alert_db, capsys, tmp_path):
    from priceintel import cli

    store_alerts(alert_db, _alert_rows(("now", "undercut", 1, date(2026, 7, 5), "immediate")))
    assert cli.main(["alerts", "check-rules"]) == 0
    assert "rule(s) valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: x, kind: undercut, severity: loud}]\n")
    assert cli.main(["alerts", "check-rules", "--rules", str(bad)]) == 2
    assert f"{bad}: rule 'x' (rules[0]), field severity" in capsys.readouterr().err
    assert cli.main(["alerts", "list", "--state", "new"]) == 0
    assert "undercut on 1" in capsys.readouterr().out
    assert cli.main(["alerts", "ack", "1"]) == 0 and "1 alert(s) updated" in capsys.readouterr().out
    assert cli.main(["alerts", "resolve"]) == 2
    assert cli.main(["alerts", "run"]) == 0  # empty star schema: nothing to detect
    assert '"events": 0' in capsys.readouterr().out
    assert cli.main(["alerts", "list", "--state", "new"]) == 0 and "no alerts" in capsys.readouterr().out


def _tiny_star(engine, prices: list[float | None]) -> None:
    """One product (MAP 9.00, our price 10.00) and one matched amazon listing priced `prices` on July 1, 2, …."""
    from priceintel.db import load

    days = pd.date_range("2026-07-01", periods=len(prices))
    obs = pd.DataFrame({"retailer": "amazon", "item_id": "B1", "url": "/dp/B1", "ds": days,
                        "observed_at": days.tz_localize("UTC"), "price": prices, "list_price": None,
                        "currency": "USD", "in_stock": [p is not None for p in prices], "promo": False,
                        "title": "Thing", "brand": "Acme", "gtin": None, "mpn": None, "page_sha256": None})
    product = pd.DataFrame([{"sku": "S1", "name": "Thing", "brand": "Acme", "category": "toys", "gtin": None,
                             "mpn": None, "size": None, "unit_cost": 5.0, "map_price": 9.0, "msrp": 12.0}])
    sales = pd.DataFrame({"sku": "S1", "ds": days, "units": 10, "revenue": 100.0, "price": 10.0, "promo": False})
    with engine.begin() as conn:
        load.ensure_dates(conn, days.min(), days.max())
        load.upsert_retailers(conn, pd.DataFrame({"retailer": ["amazon"]}))
        load.upsert_products(conn, product)
        load.upsert_listings(conn, clean.listings_from_observations(obs))
        load.load_matches(conn, pd.DataFrame([{"retailer": "amazon", "item_id": "B1", "sku": "S1", "method": "gtin",
                                              "score": 1.0, "status": "auto"}]))
        load.load_prices(conn, obs)
        load.load_sales(conn, sales)


def test_condition_episode_dedup_and_auto_resolve(alert_db):
    rules = parse_rules("rules: [{name: uc, kind: undercut}, {name: oos, kind: out_of_stock}, "
                               "{name: back, kind: back_in_stock}, {name: low, kind: new_low}]", "r.yaml")
    _tiny_star(alert_db, [10.5] * 7 + [9.5])  # undercut starts on day 8 (also a new low)
    first = run_alerts(alert_db, rules, {}, now=NOON)
    assert first["by_kind"] == {"new_low": 1, "undercut": 1} and first["inserted"] == 2
    assert "5.0% under our 10.00" in list_alerts(alert_db, kind="undercut")["reason"].iloc[0]
    _tiny_star(alert_db, [10.5] * 7 + [9.5, 9.4])  # still undercutting: same episode, nothing new
    second = run_alerts(alert_db, rules, {}, now=NOON)
    assert second["inserted"] == 1 and second["by_kind"]["undercut"] == 1  # only the new low of day 9
    uc = list_alerts(alert_db, kind="undercut")
    assert len(uc) == 1 and uc["dedup_key"].iloc[0].endswith("|2026-07-08") and uc["state"].iloc[0] == "new"
    _tiny_star(alert_db, [10.5] * 7 + [9.5, 9.4, None])  # out of stock: the undercut clears and resolves
    third = run_alerts(alert_db, rules, {}, now=NOON)
    assert third["resolved"] == 1 and third["by_kind"] == {"out_of_stock": 1}
    assert list_alerts(alert_db, kind="undercut")["state"].iloc[0] == "resolved"
    _tiny_star(alert_db, [10.5] * 7 + [9.5, 9.4, None, 10.5])  # back in stock above our price
    fourth = run_alerts(alert_db, rules, {}, now=NOON)
    assert fourth["by_kind"] == {"back_in_stock": 1} and fourth["resolved"] == 1
    assert set(list_alerts(alert_db, state="resolved")["kind"]) == {"undercut", "out_of_stock"}
