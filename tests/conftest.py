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


def pytest_unconfigure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        __import__("shutil").rmtree(_FIT_CACHE, ignore_errors=True)


#: the xdist scope of every test file that uses the session's pipeline run (`pipeline_db`)
PIPELINE_SCOPE = "pipeline-run"
#: where the workers write those files (the controller names it; the workers inherit it)
_SHARED_FILES_ENV = "PRICEINTEL_TEST_PIPELINE_FILES"


def pytest_configure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ and config.pluginmanager.hasplugin("xdist"):
        os.environ[_SHARED_FILES_ENV] = os.path.join(_FIT_CACHE, "pipeline-files.json")


def pytest_collection_modifyitems(config, items):
    """A worker writes which test files use the session's pipeline run, for the controller's scheduler."""
    path = os.environ.get(_SHARED_FILES_ENV)
    if not path or "PYTEST_XDIST_WORKER" not in os.environ:
        return
    files = sorted({item.nodeid.split("::", 1)[0] for item in items
                    if "pipeline_db" in getattr(item, "fixturenames", ())})
    tmp = f"{path}.{os.environ['PYTEST_XDIST_WORKER']}"
    with open(tmp, "w") as out:
        __import__("json").dump(files, out)
    os.replace(tmp, path)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs `--dist loadfile`: a test file stays on one worker, so its module fixtures are built once.
    Here every file that uses the session's pipeline run (`pipeline_db`, a whole demo run of about a minute) is
    also one scope, so that run is made once rather than once per worker. (xdist's `loadgroup` would do it with
    marks, but it appends the group to `item._nodeid`, which pytest 9 no longer reads.) Scopes are handed out
    longest first, by tests/durations.json."""
    if config.getvalue("dist") != "loadfile":
        return None
    import json

    from xdist.scheduler import LoadFileScheduling

    try:  # seconds per test file in a past CI run (tests/_durations.py writes it)
        with open(os.path.join(os.path.dirname(__file__), "durations.json")) as src:
            seconds = json.load(src)
    except (OSError, ValueError):
        seconds = {}

    class PipelineFileScheduling(LoadFileScheduling):
        _shared: set[str] | None = None
        _ordered = False

        def _assign_work_unit(self, node):
            """The longest scopes first (a file not in durations.json: a second a test), so the last ones handed
            out are short and the two workers end close together."""
            if not self._ordered:
                self._ordered = True

                def cost(scope: str, tests: int) -> float:
                    files = self._shared if scope == PIPELINE_SCOPE else {scope}
                    known = [seconds[f] for f in files or () if f in seconds]
                    return sum(known) if known else float(tests)

                order = sorted(self.workqueue.items(), key=lambda kv: -cost(kv[0], len(kv[1])))
                self.workqueue.clear()
                self.workqueue.update(order)
            super()._assign_work_unit(node)

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if self._shared is None:  # read once every worker's collection is in (written before it is sent)
                try:
                    with open(os.environ[_SHARED_FILES_ENV]) as src:
                        self._shared = set(json.load(src))
                except (KeyError, OSError, ValueError):
                    self._shared = set()
            return PIPELINE_SCOPE if scope in self._shared else scope

    return PipelineFileScheduling(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows what every Voila server open at the time was doing (`_browser.voila_diagnostics`: its
    processes and the end of its log, which is deleted with the server): why an app page never loaded."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    from _browser import VOILA_LOGS, voila_diagnostics

    if VOILA_LOGS:
        report.sections.append(("Voila servers", voila_diagnostics()))
