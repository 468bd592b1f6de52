"""The `priceintel` command: clear one-line errors, DATABASE_URL honoured, demo commands."""

import json

import pytest

from priceintel import cli, config
from priceintel.apps import serve
from priceintel.pipeline import run, shops


def test_database_url_points_everything_at_another_server(pg_server_url, monkeypatch, capsys):
    """A second, separate PostgreSQL cluster reached only through DATABASE_URL."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database
    from priceintel.db.server import start_embedded

    other = start_embedded(config.data_dir() / "pg-test-other")
    assert "pg-test-other" in other and other != pg_server_url
    url = create_database(other, "priceintel_cli_other")
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        assert cli.main(["init-db"]) == 0
        assert "schema at revision" in capsys.readouterr().out
        assert cli.main(["db", "url"]) == 0
        assert "pg-test-other" in capsys.readouterr().out
        from priceintel.db import engine, queries

        counts = queries.table_counts(engine.get_engine(url))
        assert counts["dim_product"] == 0 and "fact_price" in counts
    finally:
        dispose_engines()
        drop_database(other, "priceintel_cli_other")


def test_dead_database_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://bob:s3cret@127.0.0.1:9/nowhere")
    assert cli.main(["init-db"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and "s3cret" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_database_url_is_named(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    assert cli.main(["db", "url"]) == 2
    assert "DATABASE_URL" in capsys.readouterr().err


def test_set_without_value_and_missing_env_file(capsys):
    assert cli.main(["run", "--set", "days"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert cli.main(["run", "--env-file", "/nonexistent/env.yaml"]) == 2
    assert "env file not found" in capsys.readouterr().err


def test_until_a_task_that_does_not_exist_names_the_tasks(tmp_path, capsys):
    from ploomber.spec import DAGSpec

    reports = tmp_path / "reports"
    assert cli.main(["run", "--until", "lod", "--env-file", str(config.PROJ_ROOT / "env.test.yaml"),
                     "--set", f"reports_dir={reports}", "--set", f"data_dir={tmp_path / 'data'}"]) == 2
    err = capsys.readouterr().err
    assert "--until lod: no such task" in err and "world, scrape, clean, match, load, dbt" in err
    assert not (reports / "last_run.json").exists()  # no run started, none recorded as failed
    assert cli.main(["schedule", "--once", "--until", "lod"]) == 2
    assert "--until lod: no such task" in capsys.readouterr().err
    assert cli.main(["schedule", "--export-airflow", str(tmp_path / "dag.py"), "--until", "load"]) == 2
    assert "--until and --export-airflow" in capsys.readouterr().err and not (tmp_path / "dag.py").exists()
    env = run.build_env(str(config.PROJ_ROOT / "env.test.yaml"), {"data_dir": str(tmp_path / "data"),
                                                                   "reports_dir": str(reports)})
    dag = run.until_task(DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=env).to_dag(), "match")
    assert set(dag) == {"world", "scrape", "clean", "match"}


def test_build_env_makes_paths_absolute(tmp_path):
    env_file = tmp_path / "env.yaml"
    env_file.write_text((config.PROJ_ROOT / "env.test.yaml").read_text())
    env = run.build_env(str(env_file), {"days": 5})
    assert env["days"] == 5
    assert env["data_dir"] == str((tmp_path / "data" / "test-run").resolve())


def test_voila_command_serves_the_apps_folder_on_loopback():
    cmd = serve.voila_command(9999)
    assert cmd[3].endswith("apps") and "--port=9999" in cmd and "--Voila.ip=127.0.0.1" in cmd
    assert "--Voila.identity_provider_class=priceintel.apps.login.AppIdentityProvider" in cmd  # sign-in required


def test_demo_down_without_storefronts(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    assert cli.main(["demo", "down"]) == 0
    assert "no storefronts running" in capsys.readouterr().out


def test_demo_up_serves_in_background_and_down_stops(monkeypatch, tmp_path, capsys):
    """`demo up` starts a detached server process with a registry; `demo down` stops it."""
    import requests

    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(shops, "demo_env", lambda: {"data_dir": str(tmp_path), "n_products": 4, "days": 3,
                                                    "seed": 1, "world_start": "2026-07-01"})
    monkeypatch.setattr(shops, "start_background",
                        lambda world_dir, timeout=30.0: _start_in_thread(world_dir, tmp_path))
    assert cli.main(["demo", "up", "--products", "4", "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "demo world: 4 products" in out and "storefront amazon" in out
    reg_path = tmp_path / "demo" / "storefronts.json"
    reg = json.loads(reg_path.read_text())
    assert requests.get(reg["urls"]["target"] + "/robots.txt", timeout=5).status_code == 200
    _STOP[0].set()
    _STOP[1].join(timeout=10)
    assert not reg_path.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(reg["urls"]["target"] + "/robots.txt", timeout=5)


def test_demo_down_terminates_the_registered_server(monkeypatch, tmp_path, capsys):
    import subprocess
    import sys

    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reg = tmp_path / "demo" / "storefronts.json"
    reg.parent.mkdir(parents=True)
    reg.write_text(json.dumps({"urls": {}, "pid": proc.pid}))
    assert cli.main(["demo", "down"]) == 0
    assert proc.wait(timeout=10) != 0 and not reg.exists()
    assert "storefronts stopped" in capsys.readouterr().out


_STOP = []


def _start_in_thread(world_dir, tmp_path):
    import threading
    import time

    from priceintel.demo import storefronts as demo

    stop = threading.Event()
    reg = tmp_path / "demo" / "storefronts.json"
    t = threading.Thread(target=demo.serve, kwargs=dict(world_dir=world_dir, ports={"amazon": 0, "walmart": 0,
                         "target": 0}, registry=reg, stop_event=stop), daemon=True)
    t.start()
    _STOP[:] = [stop, t]
    for _ in range(100):
        if reg.exists():
            return json.loads(reg.read_text())["urls"]
        time.sleep(0.1)
    pytest.fail("storefronts did not start")


def test_demo_up_says_at_once_when_a_shop_port_is_taken(monkeypatch, tmp_path):
    """A port held by something else (e.g. another checkout's shops): the server's own error, not a 30 s wait."""
    import socket
    import time

    from priceintel import PriceIntelError
    from priceintel.demo import storefronts as demo

    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    port = demo.DEFAULT_PORTS["amazon"]
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
    except OSError:  # already held (a running demo): the server must fail the same way
        blocker.close()
        blocker = None
    try:
        t0 = time.time()
        with pytest.raises(PriceIntelError, match=rf"exited at start: .*127\.0\.0\.1:{port}.*in use"):
            shops.start_background(tmp_path / "demo" / "world", timeout=120)
        assert time.time() - t0 < 110
        assert not (tmp_path / "demo" / "storefronts.json").exists()
    finally:
        if blocker is not None:
            blocker.close()
