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
    import coverage
    from ploomber_engine.ipython import PloomberClient

    run_cell = PloomberClient.execute_cell

    def execute_cell(self, *args, **kwargs):
        cov = coverage.Coverage.current()
        if cov is None:
            return run_cell(self, *args, **kwargs)
        cov.stop()
        try:
            return run_cell(self, *args, **kwargs)
        finally:
            cov.start()

    PloomberClient.execute_cell = execute_cell


_cells_untraced()


@pytest.fixture(scope="session", autouse=True)
def _dbt_untraced() -> None:
    """dbt's own code (its parser, Jinja, its thread pool) runs untraced when a test builds the dbt project: none of
    it is ours, and tracing it made tests/pipeline/test_dbt.py about 1.8x slower. `priceintel.pipeline.dbt` around
    it is still traced. dbt is imported at the first build."""
    from _cov import untraced
    from priceintel.pipeline import dbt as project

    invoke_project = project._invoke

    def _invoke(*args, **kwargs):
        from dbt.cli.main import dbtRunner

        if not getattr(dbtRunner, "_untraced", False):
            run = dbtRunner.invoke

            def invoke(self, *a, **k):
                with untraced():
                    return run(self, *a, **k)

            dbtRunner.invoke, dbtRunner._untraced = invoke, True
        return invoke_project(*args, **kwargs)

    project._invoke = _invoke


#: a file whose tests take this long each, on average, is handed out first (pytest_collection_modifyitems)
LONG_TEST_SECONDS = 30


def pytest_collection_modifyitems(session, config, items):
    """The order xdist hands test files out in (`make test` runs `--no-loadscope-reorder`): xdist's own order, the
    files with most tests first, except that files of few but long tests come before them, longest first. By
    xdist's order alone the one-test live runs (1.5-2.5 minutes each) came last, and one worker finished up to two
    minutes before the other. Seconds per file: tests/durations.json (a CI run's, by tests/_durations.py; a file
    not in it counts as quick)."""
    import json
    from collections import Counter

    try:
        with open(os.path.join(os.path.dirname(__file__), "durations.json")) as src:
            seconds = json.load(src)
    except (OSError, ValueError):
        seconds = {}
    files = [item.nodeid.split("::")[0] for item in items]
    tests, first = Counter(files), {}
    for i, name in enumerate(files):
        first.setdefault(name, i)

    def key(name: str) -> tuple:
        each = seconds.get(name, 0) / tests[name]
        return (-each if each >= LONG_TEST_SECONDS else 0, -tests[name], first[name])

    position = {id(item): key(name) for item, name in zip(items, files)}
    items.sort(key=lambda item: position[id(item)])  # stable: a file's tests keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The end-to-end tests (marked slow: whole pipeline runs, browsers, servers) run untraced, their fixtures
    included: coverage counts the lines the unit and integration tests run. Tracing made the end-to-end tests
    about 16% slower (1,442 -> 1,669 worker-seconds in one CI run). The coverage figure is the smaller, unit-test
    one (docs/getting-started.md)."""
    if item.get_closest_marker("slow") is None:
        yield
        return
    from _cov import untraced

    with untraced():
        yield


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
