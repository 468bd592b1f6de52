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
