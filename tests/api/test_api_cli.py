"""The API's command-line paths: `priceintel keys`, roles in `priceintel users`, and `priceintel api` itself
(the README's command) as a real process on loopback."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from priceintel import config
from priceintel.api import keys
from priceintel.apps import auth
from priceintel.db import tenancy
from priceintel.cli import main


def test_keys_cli(pg_engine, capsys):
    assert main(["keys", "list"]) == 0 and "no API keys" in capsys.readouterr().out
    assert main(["keys", "create", "nightly export", "--scope", "write"]) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert key.startswith("pik_") and "shown only now" in out
    key_id = key.split("_")[1]
    # no --tenant: the database's default tenant ("default", or "demo" once a demo run filled an empty database)
    default = tenancy.default_tenant(pg_engine)
    assert keys.authenticate(pg_engine, key) == keys.ApiKey(key_id, "nightly export", "write", default)
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and key not in listed  # the key itself is never shown again
    assert main(["keys", "revoke", key_id]) == 0 and "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", key_id]) == 0 and "already revoked" in capsys.readouterr().out
    assert keys.authenticate(pg_engine, key) is None
    assert main(["keys", "revoke", "0123456789ab"]) == 2 and "no API key" in capsys.readouterr().err
    assert main(["keys", "create"]) == 2 and "needs a NAME" in capsys.readouterr().err
    assert main(["keys", "create", "bad\tname"]) == 2 and "key name" in capsys.readouterr().err


def test_roles_in_the_users_cli(pg_engine, monkeypatch, capsys):
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM app_user WHERE username LIKE 'role-%%'")
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pw\n"))
    assert main(["users", "add", "role-ann", "--password-stdin"]) == 0
    default = tenancy.default_tenant(pg_engine)
    assert f"role-ann added (analyst, tenant {default})" in capsys.readouterr().out  # default role and tenant
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pw\n"))
    assert main(["users", "add", "role-bob", "--role", "viewer", "--password-stdin"]) == 0
    assert main(["users", "role", "role-ann", "--role", "admin"]) == 0 and "now admin" in capsys.readouterr().out
    assert auth.account_of(pg_engine, "role-ann").role == "admin"
    assert auth.account_of(pg_engine, "role-bob").role == "viewer"
    monkeypatch.setattr(sys, "stdin", io.StringIO("another long pw\n"))
    assert main(["users", "add", "role-bob", "--replace", "--password-stdin"]) == 0
    assert auth.account_of(pg_engine, "role-bob").role == "viewer"  # a new password keeps the role
    assert main(["users", "role", "role-bob"]) == 2 and "needs --role" in capsys.readouterr().err
    assert main(["users", "role", "nobody-x", "--role", "viewer"]) == 2 and "no user" in capsys.readouterr().err
    assert main(["users", "list"]) == 0 and "viewer" in capsys.readouterr().out
    with pytest.raises(auth.AuthError, match="role 'root'"):
        auth.add_user(pg_engine, "role-cat", "long enough pw", role="root")


def test_tenants_cli(pg_engine, monkeypatch, capsys):
    """`priceintel tenants add|list|plan`, `users add --tenant`, `keys create --tenant` and `--tenant` errors."""
    assert main(["tenants", "add", "cli-acme", "--plan", "pro"]) == 0
    assert "tenant cli-acme added (pro)" in capsys.readouterr().out
    assert main(["tenants", "add", "cli-acme"]) == 2 and "exists already" in capsys.readouterr().err
    assert main(["tenants", "add", "Bad Name"]) == 2 and "lower-case" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pw\n"))
    assert main(["users", "add", "cli-amy", "--tenant", "cli-acme", "--password-stdin"]) == 0
    assert "cli-amy added (analyst, tenant cli-acme)" in capsys.readouterr().out
    assert auth.account_of(pg_engine, "cli-amy").tenant == "cli-acme"
    assert main(["keys", "create", "cli reader", "--tenant", "cli-acme"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert keys.authenticate(pg_engine, key).tenant == "cli-acme"
    assert main(["keys", "list"]) == 0 and "cli reader" not in capsys.readouterr().out  # the default tenant's
    assert main(["keys", "list", "--tenant", "cli-acme"]) == 0 and "cli reader" in capsys.readouterr().out
    assert main(["--tenant", "cli-acme", "keys", "list"]) == 0 and "cli reader" in capsys.readouterr().out
    assert main(["keys", "list", "--tenant", "cli-nosuch"]) == 2
    assert "no tenant 'cli-nosuch'" in capsys.readouterr().err
    assert main(["tenants", "plan", "cli-acme", "--plan", "enterprise"]) == 0
    assert main(["tenants", "list"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    row = next(r for r in listed if r and r[0] == "cli-acme")
    assert row[1] == "enterprise" and row[-2:] == ["1", "1"]  # one user, one API key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_priceintel_api_serves_the_database_as_the_app_role(pg_url, pg_engine, tmp_path):
    """`priceintel api --port P --workers 2` (README): migrates, connects as <db>_app, answers /ready and a key's
    request from either worker, and stops cleanly on SIGTERM."""
    key_id, key = keys.create_key(pg_engine, "process test", "read", created_by="test")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": pg_url, "PRICEINTEL_DATA_DIR": str(tmp_path / "data"),
           "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("PRICEINTEL_API_SECRET", None)
    proc = subprocess.Popen([sys.executable, "-m", "priceintel.cli", "api", "--port", str(port), "--workers", "2"],
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "priceintel api did not become ready"
            time.sleep(0.3)
        me = httpx.get(f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json() == {"kind": "key", "name": "process test", "access": "read",
                             "tenant": tenancy.default_tenant(pg_engine)}
        secret = tmp_path / "data" / "api-secret"  # the token key, made once, readable by its owner only
        assert secret.is_file() and (secret.stat().st_mode & 0o777) == 0o600
        with pg_engine.connect() as conn:
            users = {r[0] for r in conn.exec_driver_sql(
                "SELECT usename FROM pg_stat_activity WHERE datname = current_database()")}
        assert any(u.endswith("_app") for u in users), users
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises the signal it caught (exit by SIGTERM, as a supervisor expects)
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out
    assert f"api: http://127.0.0.1:{port}/docs" in out


def test_api_settings_are_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PRICEINTEL_API_SECRET", "short")
    with pytest.raises(config.ConfigError, match="at least 32"):
        config.api_settings()
    monkeypatch.delenv("PRICEINTEL_API_SECRET")
    first = config.api_settings().secret
    assert len(first) >= 32 and config.api_settings().secret == first  # kept in data/api-secret
    monkeypatch.setenv("PRICEINTEL_API_ACCESS_MINUTES", "0")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_API_ACCESS_MINUTES"):
        config.api_settings()
    monkeypatch.setenv("PRICEINTEL_API_ACCESS_MINUTES", "5")
    monkeypatch.setenv("PRICEINTEL_API_RATE_PER_MINUTE", "0.5")  # a bucket that never holds one request
    with pytest.raises(config.ConfigError, match="at least 1"):
        config.api_settings()
    monkeypatch.setenv("PRICEINTEL_API_RATE_PER_MINUTE", "0")
    monkeypatch.setenv("PRICEINTEL_API_ACCESS_MINUTES", "soon")
    with pytest.raises(config.ConfigError, match="not a number"):
        config.api_settings()


def test_make_api_runs_priceintel_api():
    out = subprocess.run(["make", "-n", "api"], cwd=config.PROJ_ROOT, capture_output=True, text=True).stdout
    assert "priceintel api" in out, out


def test_a_demoted_or_removed_user_keeps_no_stronger_key(pg_engine, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough pw\n"))
    assert main(["users", "add", "role-kim", "--role", "admin", "--password-stdin", "--replace"]) == 0
    admin_id, admin_key = keys.create_key(pg_engine, "kim admin", "admin", created_by="user:role-kim")
    write_id, write_key = keys.create_key(pg_engine, "kim write", "write", created_by="user:role-kim")
    other_id, other_key = keys.create_key(pg_engine, "zed admin", "admin", created_by="user:role-zed")
    capsys.readouterr()
    assert main(["users", "role", "role-kim", "--role", "analyst"]) == 0
    assert f"revoked 1 API key(s) role-kim made beyond the new access: {admin_id}" in capsys.readouterr().out
    assert keys.authenticate(pg_engine, admin_key) is None  # an analyst holds no admin key any more
    assert keys.authenticate(pg_engine, write_key).scope == "write"  # analysts may write
    assert main(["users", "remove", "role-kim"]) == 0 and write_id in capsys.readouterr().out
    assert keys.authenticate(pg_engine, write_key) is None
    assert keys.authenticate(pg_engine, other_key).key_id == other_id  # another user's keys stay
