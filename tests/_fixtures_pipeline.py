"""A whole pipeline run on env.test.yaml in its own fresh database (shared by tests)."""

import os
import uuid

import pytest

from _cov import untraced
from priceintel import config

__all__ = ["pipeline_db", "pipeline_env", "on_pipeline_db"]


@pytest.fixture(scope="session")
def pipeline_db(pg_server_url):
    """A fresh database for the pipeline run (other tests truncate the session database)."""
    from priceintel.db.engine import create_database, dispose_engines, drop_database

    name = f"priceintel_pipeline_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    yield url
    dispose_engines()
    drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def pipeline_env(pipeline_db, tmp_path_factory):
    """Run every stage once on a small demo world; yields the env it ran with."""
    from priceintel.pipeline.run import build_env, run_pipeline

    root = tmp_path_factory.mktemp("pipeline")
    env = build_env(str(config.PROJ_ROOT / "env.test.yaml"),
                    {"data_dir": str(root / "data"), "reports_dir": str(root / "reports")})
    old = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = pipeline_db
    try:
        with untraced():  # an end-to-end run, whichever test asks first (conftest.pytest_runtest_call)
            run_pipeline(env)
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = old
    return env


@pytest.fixture()
def on_pipeline_db(pipeline_db, monkeypatch):
    """Point DATABASE_URL at the pipeline's database for one test."""
    monkeypatch.setenv("DATABASE_URL", pipeline_db)
    return pipeline_db
