"""Browser fixtures for the app tests: one Voila server on the pipeline's database, and headless Chromium."""

import pytest
from _browser import chromium, serve_voila

__all__ = ["apps_voila", "browser"]


@pytest.fixture(scope="session")
def apps_voila(pipeline_env, pipeline_db):
    """One signed-in-able Voila server on the pipeline database, shared by every app test module."""
    with serve_voila(DATABASE_URL=pipeline_db) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium (loopback only), one per test module."""
    with chromium() as b:
        yield b
