"""Plans and metered usage (db.usage) on real PostgreSQL: size limits refuse the whole import, the day's page
checks stop a live run at the plan's allowance, usage rows per tenant and day, `priceintel tenants usage`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from _fixtures_pg import migrated_database
from priceintel.cli import main
from priceintel.db import tenancy, usage
from priceintel.ingest.catalog import import_catalog
from priceintel.ingest.watch import add_watch, import_watches
from priceintel.pipeline import live


@pytest.fixture(scope="module")
def owner(pg_server_url):
    with migrated_database(pg_server_url, "priceintel_usage") as (_, engine):
        tenancy.add_tenant(engine, "small", plan="free")
        tenancy.add_tenant(engine, "big", plan="enterprise")
        yield engine


def _catalogue(path, n: int, start: int = 1):
    pd.DataFrame({"sku": [f"P{i:04d}" for i in range(start, start + n)], "name": "thing"}).to_csv(path, index=False)
    return path


def test_plans_and_their_limits(owner):
    with tenancy.scope("small"):
        assert usage.plan_of(owner) == usage.PLANS["free"]
    with tenancy.scope("big"):
        assert usage.plan_of(owner).products is None
    assert usage.plan_of(owner).name == "enterprise"  # the default tenant (existing data) has no limits
    assert usage.PLANS["free"].limits() == {"products": 100, "watches": 250, "checks_per_day": 500,
                                            "requests_per_minute": 60}


def test_a_catalogue_over_the_plan_is_refused_whole(owner, tmp_path):
    with tenancy.scope("small"):
        assert import_catalog(owner, _catalogue(tmp_path / "a.csv", 90), archive_root=tmp_path).counts["inserted"] == 90
        with pytest.raises(usage.PlanLimitError, match=r"plan free: at most 100 tracked products; this would make 120"):
            import_catalog(owner, _catalogue(tmp_path / "b.csv", 30, start=91), archive_root=tmp_path)
        with owner.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM dim_product")).scalar() == 90  # nothing of b.csv
            status = conn.execute(sa.text("SELECT status FROM import_run ORDER BY import_run_id DESC")).scalar()
        assert status == "failed"
    with tenancy.scope("big"):  # the same file on a plan without a limit
        assert import_catalog(owner, _catalogue(tmp_path / "c.csv", 130), archive_root=tmp_path).counts["inserted"] == 130


def test_watches_over_the_plan_are_refused(owner, tmp_path):
    path = tmp_path / "watch.csv"
    pd.DataFrame({"url": [f"https://shop.example/p/{i}" for i in range(250)], "retailer": "shop"}).to_csv(
        path, index=False
    )
    with tenancy.scope("small"):
        assert import_watches(owner, path, archive_root=tmp_path).counts["inserted"] == 250
        with pytest.raises(usage.PlanLimitError, match="at most 250 watched URLs"):
            add_watch(owner, "https://shop.example/p/new")
        with owner.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM watch")).scalar() == 250


def test_page_checks_stop_at_the_days_allowance(owner):
    targets = pd.DataFrame({"url": [f"https://s.example/{i}" for i in range(3)], "retailer": "s"})
    with tenancy.scope("small"):
        usage.record(owner, pages_fetched=499)
        assert usage.checks_left(owner) == 1
        said: list[str] = []
        kept, over = live._within_plan(owner, targets, said.append)
        assert list(kept["url"]) == ["https://s.example/0"]
        assert [o["kind"] for o in over] == ["plan_limit", "plan_limit"] and "500 page checks a day" in over[0]["message"]
        assert "1 left today" in said[0]
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        assert usage.checks_left(owner, yesterday) == 500  # a new day, a new allowance
    with tenancy.scope("big"):
        kept, over = live._within_plan(owner, targets, print)
        assert len(kept) == 3 and over == []
    assert 1 <= usage.seconds_to_next_day() <= 86400


def test_usage_is_metered_per_tenant_and_day(owner, capsys):
    meter = usage.Meter(every=0)
    for _ in range(3):
        meter.add("big", requests=1)
    meter.add("big", exports=1)
    meter.add("small", requests=2)
    assert meter.due() and meter.flush(owner) == 2
    with tenancy.scope("big"):
        usage.record(owner, requests=5, day=datetime.now(UTC).date() - timedelta(days=2))
        frame = usage.usage_frame(owner, 30)
    today = frame.iloc[0]
    assert (today["requests"], today["exports"], today["products"]) == (3, 1, 130)
    assert list(frame["requests"]) == [3, 5]  # newest first
    with tenancy.scope("small"):
        assert usage.usage_frame(owner, 30).iloc[0]["requests"] == 2  # each tenant its own rows
    url = owner.url.render_as_string(hide_password=False)
    import os

    old = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        assert main(["tenants", "usage", "big", "--days", "7"]) == 0
        out = capsys.readouterr().out
        assert "plan enterprise" in out and "no limit" in out and "130" in out
        assert main(["tenants", "usage", "nosuch"]) == 2 and "no tenant 'nosuch'" in capsys.readouterr().err
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL")
        else:
            os.environ["DATABASE_URL"] = old
