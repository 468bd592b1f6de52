"""Shared fixtures: a real embedded PostgreSQL and real loopback demo storefronts."""

import os

import pytest

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
# one matcher fit cache (match.fitcache) for the whole run, shared by the workers (which inherit it) and the
# kernels and servers they start, made fresh by the process that starts them: no run reads another's fits
if "PYTEST_XDIST_WORKER" not in os.environ:
    os.environ["PRICEINTEL_CACHE_DIR"] = _FIT_CACHE = __import__("tempfile").mkdtemp(prefix="priceintel-cache-")

from _fixtures_pg import *  # noqa: F401,F403,E402
from _fixtures_demo import *  # noqa: F401,F403,E402
from _fixtures_pipeline import *  # noqa: F401,F403,E402
from _fixtures_apps import *  # noqa: F401,F403,E402


def _cells_untraced() -> None:
    """Coverage does not trace the cells of a pipeline task's notebook, which run in the test process
    (`priceintel.pipeline.engine`): it did not when they ran in kernels, and tracing them made a demo run 38%
    slower (57 s -> 79 s). What the cells call is covered by the unit tests; the code around them (the DAG's
    build, its hooks) is still traced."""
    from ploomber_engine.ipython import PloomberClient

    from _cov import untraced

    run_cell = PloomberClient.execute_cell

    def execute_cell(self, *args, **kwargs):
        with untraced():
            return run_cell(self, *args, **kwargs)

    PloomberClient.execute_cell = execute_cell


_cells_untraced()


#: fixtures of the end-to-end tests that run untraced (pytest_runtest_call), besides the `e2e` mark
E2E_FIXTURES = frozenset({"browser"})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """The body of an end-to-end test (marked `e2e`, or taking a browser: Voila apps in Chromium, live runs, runs
    killed and resumed) or of a whole-dataset run (marked `untraced`) runs with coverage's tracer off: coverage
    counts the lines the other tests run. Tracing made the end-to-end tests about 16% slower, the whole-dataset
    runs 1.4-1.8x slower (Python 3.11 runs all code unspecialised while a tracer is set). Their fixtures are still
    traced (the session's pipeline run is not: _fixtures_pipeline.py). The coverage figure is the smaller one
    (docs/getting-started.md)."""
    untraced_mark = item.get_closest_marker("e2e") or item.get_closest_marker("untraced")
    if untraced_mark is None and not E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        yield
        return
    from _cov import untraced

    with untraced():
        yield


#: fixtures of the session's pipeline run (_fixtures_pipeline.py, _fixtures_apps.py): every file that takes one
#: runs on the same worker (`pytest_xdist_make_scheduler`), so the demo pipeline runs and its Voila server starts
#: once per test run, not once per worker
PIPELINE_FIXTURES = frozenset({"pipeline_env", "pipeline_db", "on_pipeline_db", "apps_voila"})
#: the files that take them (checked at collection: a file that takes one and is missing here fails the run).
#: They run one after another in name order and share the pipeline's database: a file may write to it (a new
#: forecast run, an acknowledged alert) only when no later file reads what it changes
PIPELINE_FILES = frozenset({
    "tests/api/test_api.py", "tests/apps/test_alerts_app.py", "tests/apps/test_apps.py", "tests/apps/test_auth.py",
    "tests/apps/test_dashboard.py", "tests/apps/test_dashboard_apps.py", "tests/apps/test_forecast_app.py",
    "tests/apps/test_ops_app.py", "tests/apps/test_usage_app.py", "tests/notebooks/test_notebooks.py",
    "tests/obs/test_demo_run.py", "tests/pipeline/test_pipeline.py", "tests/pipeline/test_quality.py",
    "tests/pipeline/test_schedule.py"})


def pytest_collection_modifyitems(config, items):
    missing = sorted({item.nodeid.split("::")[0] for item in items
                      if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ()))} - PIPELINE_FILES)
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: add {missing} to PIPELINE_FILES (they take the pipeline run)")


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest -p no:xdist still starts
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, except that the files of PIPELINE_FILES are one unit of work. xdist hands out the
    unit with the most tests first, and that is this one. Other `--dist` modes are xdist's own."""
    from xdist.scheduler import LoadFileScheduling

    if config.getvalue("dist") != "loadfile":
        return None

    class OnePipelineWorker(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "pipeline-run" if path in PIPELINE_FILES else path

    return OnePipelineWorker(config, log)


def pytest_unconfigure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        __import__("shutil").rmtree(_FIT_CACHE, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows what every Voila server open at the time was doing (`_browser.voila_diagnostics`: its
    processes and the end of its log, which is deleted with the server): why an app page never loaded."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or "browser" not in getattr(item, "fixturenames", ()):
        return
    from _browser import VOILA_LOGS, voila_diagnostics

    if VOILA_LOGS:
        report.sections.append(("Voila servers", voila_diagnostics()))
