"""Shared fixtures: a real embedded PostgreSQL and real loopback demo storefronts."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _fixtures_pg import *  # noqa: F401,F403,E402
from _fixtures_demo import *  # noqa: F401,F403,E402
from _fixtures_pipeline import *  # noqa: F401,F403,E402
