"""Settings come from the environment, and bad ones are named."""

import pytest

from priceintel import config


def test_defaults_and_paths(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = config.get_settings()
    assert s.database_url is None and s.rate_limit_per_host == 0.0
    assert config.raw_dir().parent == config.data_dir()
    assert config.pg_dir().name in ("pg", config.pg_dir().name)
    assert (config.PROJ_ROOT / "pipeline.yaml").exists()


def test_bad_settings_are_named(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        config.get_settings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("PRICEINTEL_RATE_LIMIT", "fast")
    with pytest.raises(config.ConfigError, match="PRICEINTEL_RATE_LIMIT='fast'"):
        config.get_settings()
    monkeypatch.setenv("PRICEINTEL_RATE_LIMIT", "2.5")
    assert config.get_settings().rate_limit_per_host == 2.5


def test_env_overrides_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    assert config.demo_dir() == tmp_path.resolve() / "demo"


def test_shared_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("PRICEINTEL_SHARED_DATA", raising=False)
    assert config.shared_data_dir() == (config.PROJ_ROOT.parent / "shared" / "data").resolve()
    monkeypatch.setenv("PRICEINTEL_SHARED_DATA", str(tmp_path))
    assert config.shared_data_dir() == tmp_path.resolve()
