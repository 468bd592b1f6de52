"""Settings come from the environment, and bad ones are named."""

import re

import pytest

from priceintel import config


def test_defaults_and_paths(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = config.get_settings()
    assert s.database_url is None and s.rate_limit_per_host == 0.0
    assert config.raw_dir().parent == config.data_dir()
    assert config.pg_dir().name in ("pg", config.pg_dir().name)
    assert (config.PROJ_ROOT / "pipeline.yaml").exists()


@pytest.mark.parametrize("env, reader, named", [
    ({"DATABASE_URL": "mysql://x@y/z"}, "get_settings", "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://u@h/db", "PRICEINTEL_RATE_LIMIT": "fast"}, "get_settings",
     "PRICEINTEL_RATE_LIMIT='fast'"),
    ({"PRICEINTEL_SMTP_PORT": "twenty-five"}, "notify_settings", "PRICEINTEL_SMTP_PORT"),
    ({"PRICEINTEL_SMTP_SECURITY": "tls9"}, "notify_settings", "PRICEINTEL_SMTP_SECURITY"),
    ({"PRICEINTEL_SLACK_WEBHOOK_URL": "hooks.slack.com/x"}, "notify_settings", "PRICEINTEL_SLACK_WEBHOOK_URL"),
])
def test_bad_settings_are_named(monkeypatch, env, reader, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(config.ConfigError, match=re.escape(named)):
        getattr(config, reader)()


def test_good_settings_are_read(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("PRICEINTEL_RATE_LIMIT", "2.5")
    assert config.get_settings().rate_limit_per_host == 2.5
    monkeypatch.setenv("PRICEINTEL_SMTP_SECURITY", "ssl")
    assert config.notify_settings().smtp_port == 465


def test_env_overrides_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    assert config.demo_dir() == tmp_path.resolve() / "demo"


def test_shared_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("PRICEINTEL_SHARED_DATA", raising=False)
    assert config.shared_data_dir() == (config.PROJ_ROOT.parent / "shared" / "data").resolve()
    monkeypatch.setenv("PRICEINTEL_SHARED_DATA", str(tmp_path))
    assert config.shared_data_dir() == tmp_path.resolve()


# --- secrets never reach an error, a log line or a report ---------------------------------------------------
@pytest.mark.parametrize("text, secret, kept", [
    ("DATABASE_URL='mysql://bob:hunter2pass@db.example/prices' is bad", "hunter2pass", "mysql://bob:***@db.example"),
    ("connect to postgresql://u:p@ss/w0rd@host:5432/db failed", "ss/w0rd", "postgresql://u:***@host:5432/db"),
    ("redis://:onlypw12@cache:6379/0", "onlypw12", "redis://:***@cache:6379/0"),
    ("GET https://api.example/v1?page=2&access_token=abc123xyz&sig=zzz9", "abc123xyz", "page=2&access_token=***"),
    ("see https://hooks.slack.com/services/T0AAA/B0BBB/XyZsecret123 now", "XyZsecret123",
     "https://hooks.slack.com/services/… now"),
    ("POST https://x.example/hook/AbCdEf1234567890GhIjKl/x failed", "AbCdEf1234567890GhIjKl", "https://x.example/hook/"),
    ("libpq: host=db password=hunter2pass user=bob", "hunter2pass", "host=db password=*** user=bob"),
    ('{"api_key": "k-123456", "user": "bob"}', "k-123456", '"user": "bob"'),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9", "eyJhbGci", "Bearer ***"),
])
def test_redact_masks_secrets_and_keeps_the_rest(text, secret, kept):
    out = config.redact(text)
    assert secret not in out and kept in out, out


def test_redact_masks_configured_and_given_secrets(monkeypatch):
    hook = "http://127.0.0.1:8765/hooks/secret-token"
    monkeypatch.setenv("PRICEINTEL_ALERT_WEBHOOK_URL", hook)
    monkeypatch.setenv("PRICEINTEL_SMTP_PASSWORD", "mail-pass-42")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bob:db-pass-42@db.example/prices")
    text = (f"POST to {hook} failed; Max retries exceeded with url: /hooks/secret-token; login mail-pass-42; "
            "db-pass-42 refused for postgresql://bob@db.example/prices")
    out = config.redact(text)
    assert not any(s in out for s in ("secret-token", "mail-pass-42", "db-pass-42")), out
    assert "http://127.0.0.1:8765/hooks/…" in out and "postgresql://bob@db.example/prices" in out
    assert config.redact("token xyz-abcdef-1 leaked", "xyz-abcdef-1") == "token *** leaked"
    assert config.redact("https://shop.example/dp/B0ABCDEFGH/ref=x?k=kettle") == (
        "https://shop.example/dp/B0ABCDEFGH/ref=x?k=kettle")  # an ordinary product URL is left alone
    usage = "--set expects key=value; expected postgresql://user:pass@host:port/db"
    assert config.redact(usage) == usage  # placeholders are no secrets


def test_setting_errors_do_not_show_passwords_or_webhook_paths(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://bob:hunter2pass@db.example/prices")
    with pytest.raises(config.ConfigError, match="DATABASE_URL='mysql://bob:\\*\\*\\*@db.example/prices'") as err:
        config.get_settings()
    assert "hunter2pass" not in str(err.value)
    monkeypatch.setenv("DATABASE_URL", "bob:hunter2pass@db.example/prices")  # no scheme at all
    with pytest.raises(config.ConfigError) as err:
        config.get_settings()
    assert "hunter2pass" not in str(err.value) and "DATABASE_URL=" in str(err.value)
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("PRICEINTEL_SLACK_WEBHOOK_URL", "hooks.slack.com/services/T0AAA/B0BBB/XyZsecret123")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_SLACK_WEBHOOK_URL='hooks.slack.com/…'") as err:
        config.notify_settings()
    assert "XyZsecret123" not in str(err.value)


def test_smtp_security_defaults_to_starttls_except_on_loopback(monkeypatch):
    monkeypatch.delenv("PRICEINTEL_SMTP_SECURITY", raising=False)
    monkeypatch.delenv("PRICEINTEL_SMTP_PORT", raising=False)
    monkeypatch.setenv("PRICEINTEL_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("PRICEINTEL_SMTP_USER", "bot")
    s = config.notify_settings()
    assert (s.smtp_security, s.smtp_port) == ("starttls", 587)
    monkeypatch.setenv("PRICEINTEL_SMTP_HOST", "127.0.0.1")
    assert (config.notify_settings().smtp_security, config.notify_settings().smtp_port) == ("none", 25)
    monkeypatch.setenv("PRICEINTEL_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("PRICEINTEL_SMTP_SECURITY", "none")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_SMTP_SECURITY=none would send the login of "
                                                 "PRICEINTEL_SMTP_USER in clear text to mail.example.com"):
        config.notify_settings()
    monkeypatch.delenv("PRICEINTEL_SMTP_USER")
    assert config.notify_settings().smtp_security == "none"  # no login: an internal relay may be plain
    assert [config.is_loopback(h) for h in ("localhost", "127.0.0.2", "::1", "[::1]", "10.0.0.1", "mail.local")] == [
        True, True, True, True, False, False]


def test_failed_run_records_and_prints_no_password(monkeypatch, tmp_path, capsys):
    from priceintel import cli
    from priceintel.pipeline import run

    monkeypatch.setenv("DATABASE_URL", "mysql://bob:hunter2pass@db.example/prices")  # the database cannot record
    env = {"reports_dir": str(tmp_path / "reports"), "data_dir": str(tmp_path / "data"), "source": "demo"}
    path = run.record_outcome(env, "failed", "load: cannot connect to postgresql://bob:other-pass-7@db.example/x; "
                                             "webhook https://hooks.slack.com/services/T0/B0/XyZsecret123 down")
    text = path.read_text()
    assert path.name == "last_run.json" and '"status": "failed"' in text and "postgresql://bob:***@db.example/x" in text
    err = capsys.readouterr().err
    for secret in ("hunter2pass", "other-pass-7", "XyZsecret123"):
        assert secret not in text and secret not in err
    assert "run outcome not recorded in the database: DATABASE_URL='mysql://bob:***@" in err
    assert cli.main(["db", "url"]) == 2  # the CLI's one-line error
    err = capsys.readouterr().err
    assert err.startswith("error: DATABASE_URL=") and "hunter2pass" not in err
