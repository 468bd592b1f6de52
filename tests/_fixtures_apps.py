"""Browser fixtures for the app tests: one Voila server on the pipeline's database, and headless Chromium;
the code cells of an app notebook."""

import json

import pytest

from _browser import chromium, serve_voila
from priceintel import config


def app_notebook_code(notebook: str) -> list[dict]:
    """The code cells of notebooks/apps/`notebook`."""
    nb = json.loads((config.PROJ_ROOT / "notebooks" / "apps" / notebook).read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


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
