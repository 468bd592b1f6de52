"""The observability tests: each test keeps its metrics in a directory of its own (`metrics_dir`).

At collection, this pytest process (an xdist worker) moves its metrics from the installation's
`data/metrics` to a temporary directory of its own, which the processes this one starts
(`priceintel` commands, API servers) inherit: parallel workers never add up each other's counts, and tests never write into a
developer's data directory.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from priceintel.obs import metrics

WORKER_DIR = Path(tempfile.mkdtemp(prefix="priceintel-metrics-"))
metrics.use_dir(WORKER_DIR)
atexit.register(shutil.rmtree, WORKER_DIR, True)


@pytest.fixture()
def metrics_dir(tmp_path_factory):
    """A fresh metrics directory for one test (this process and the processes it starts), then the worker's
    again."""
    before = metrics.metrics_dir()
    path = metrics.use_dir(tmp_path_factory.mktemp("metrics"))
    yield path
    metrics.use_dir(before)
