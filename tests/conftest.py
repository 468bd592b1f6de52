"""Shared fixtures: a real embedded PostgreSQL and real loopback demo storefronts."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
# tests talk only to loopback: never through a proxy, and never to a developer's real alert targets
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
for _name in ("PRICEINTEL_SMTP_HOST", "PRICEINTEL_SLACK_WEBHOOK_URL", "PRICEINTEL_ALERT_WEBHOOK_URL",
              "PRICEINTEL_ALERT_EMAIL_TO", "PRICEINTEL_HTTP_PROXY", "PRICEINTEL_APPRISE_URLS", "PRICEINTEL_ARCHIVE_URL",
              "SENTRY_DSN"):
    os.environ[_name] = ""  # set before priceintel reads .env, which never overrides a set variable
# one tenant key for every test process and the servers they start (tenant tokens, db.tenancy); no tenant named
os.environ["PRICEINTEL_TENANT_SECRET"] = "test-tenant-key-" + "t" * 32
os.environ.pop("PRICEINTEL_TENANT", None)
# the metrics of each test process (and the kernels and servers it starts) in a directory of its own, never in
# the repo's data/metrics
os.environ["PROMETHEUS_MULTIPROC_DIR"] = __import__("tempfile").mkdtemp(prefix="priceintel-metrics-")

from _fixtures_pg import *  # noqa: F401,F403,E402
from _fixtures_demo import *  # noqa: F401,F403,E402
from _fixtures_pipeline import *  # noqa: F401,F403,E402
from _fixtures_apps import *  # noqa: F401,F403,E402

#: the test files that take longest (seconds in the fresh-clone CI's JUnit report of 2026-12-06, setup included),
#: longest first. `make test` runs them before the rest (`--no-loadscope-reorder` keeps this order): two workers
#: then end together, instead of one starting a 2-minute file when the other is nearly done.
LONGEST_FIRST = [
    "tests/pipeline/test_live_clock.py",  # 158
    "tests/pipeline/test_live.py",  # 145
    "tests/notebooks/test_notebooks.py",  # 110
    "tests/apps/test_dashboard.py",  # 101
    "tests/apps/test_dashboard_apps.py",  # 84
    "tests/pipeline/test_schedule.py",  # 83
    "tests/api/test_api.py",  # 73
    "tests/apps/test_apps.py",  # 70
    "tests/pipeline/test_airflow.py",  # 57
    "tests/test_architecture.py",  # 54
    "tests/forecast/test_forecast_tournament.py",  # 41
    "tests/match/test_own_data_model.py",  # 39
    "tests/pipeline/test_lab.py",  # 38
    "tests/match/test_match_learned.py",  # 36
    "tests/apps/test_tenant_apps.py",  # 35
]


def pytest_collection_modifyitems(config, items):
    """The LONGEST_FIRST files first, in that order; every other test keeps its place after them."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
