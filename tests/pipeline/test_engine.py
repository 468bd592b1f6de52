"""The pipeline's notebooks run in the building process (ploomber-engine, `priceintel.pipeline.engine`): many
notebook runs leave no thread, no shell and no replaced `__main__` behind, and a cell's stderr (the notebook's
output) gets this process's warnings, not its INFO lines, which still reach the daily log file."""

from __future__ import annotations

import gc
import json
import logging
import sys
import threading
import weakref

import nbformat
import pytest
from ploomber_engine import execute_notebook
from ploomber_engine.ipython import PloomberShell

from priceintel.obs import logs
from priceintel.pipeline import engine


def _notebook(path, *sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def shells(monkeypatch):
    """Weak references to every PloomberShell made while the test runs."""
    made: list[weakref.ref] = []
    init = PloomberShell.__init__

    def tracked(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(PloomberShell, "__init__", tracked)
    return made


def test_many_notebook_runs_leave_no_thread_shell_or_main_behind(tmp_path, shells):
    engine.prepare()
    engine.prepare()  # once per process: a second call changes nothing
    path = _notebook(tmp_path / "nb.ipynb", "import pandas as pd\nframe = pd.DataFrame({'a': range(1000)})",
                     "frame.describe()")
    main, threads = sys.modules["__main__"], threading.active_count()
    for _ in range(12):
        nb = execute_notebook(path, tmp_path / "out.ipynb", progress_bar=False)
    assert nb.cells[1].outputs and nb.cells[1].outputs[0]["output_type"] == "execute_result"  # it did run
    gc.collect()
    assert sys.modules["__main__"] is main
    assert threading.active_count() == threads
    assert not [t for t in threading.enumerate() if "History" in type(t).__name__]
    # none of the shells between the first (the inline matplotlib backend, a singleton, keeps its parent) and
    # the last (replaced by the next run) is kept: what a process holds does not grow with the runs
    assert len(shells) == 12 and {i for i, ref in enumerate(shells) if ref() is not None} <= {0, 11}


def test_a_cells_stderr_gets_warnings_not_info_and_the_file_gets_both(tmp_path, monkeypatch, capsys):
    engine.prepare()
    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    logs.reset()
    assert logs.setup("test", directory=tmp_path / "logs")
    try:
        path = _notebook(tmp_path / "nb.ipynb", "import logging\nlog = logging.getLogger('priceintel.demo')\n"
                         "log.info('an info line')\nlog.warning('a warning line')")
        nb = execute_notebook(path, tmp_path / "out.ipynb", progress_bar=False)
        capsys.readouterr()
        logging.getLogger("priceintel.demo").info("after the notebook")
        after = capsys.readouterr().err
    finally:
        logs.reset()
    shown = "".join(out.get("text", "") for out in nb.cells[0].outputs)
    assert "a warning line" in shown and "an info line" not in shown
    written = [json.loads(line)["message"] for f in (tmp_path / "logs").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert {"an info line", "a warning line", "after the notebook"} <= set(written)
    assert "after the notebook" in after  # the console's level is back once the cell has run


def _failing_dag(tmp_path, body: str):
    """A one-task DAG whose notebook runs `body` in this process, instrumented as the pipeline's."""
    from ploomber import DAG
    from ploomber.products import File
    from ploomber.tasks import NotebookRunner

    from priceintel.pipeline.run import instrument

    engine.prepare()
    source = tmp_path / "task.py"
    source.write_text('# %% tags=["parameters"]\nproduct = None\n\n# %%\nimport numpy as np\nbig = np.ones(10)\n\n'
                      f"# %%\n{body}\n")
    dag = DAG()
    NotebookRunner(source, File(tmp_path / "task.ipynb"), dag=dag, name="task", executor="ploomber-engine",
                   executor_params={"progress_bar": False}, kernelspec_name="python3")
    return instrument(dag)


@pytest.mark.parametrize("body, message", [
    ('raise ValueError("the price column is empty\\nin prices.csv")',
     "ValueError: the price column is empty in prices.csv"),
    ("from priceintel import PriceIntelError\ntry:\n    open('/nonexistent/x.csv')\nexcept OSError as exc:\n"
     "    raise PriceIntelError('cannot read /nonexistent/x.csv') from exc",
     "PriceIntelError: cannot read /nonexistent/x.csv"),  # the notebook's error, not the OSError behind it
    ("import sys\nsys.exit(3)", "RuntimeError: the notebook called sys.exit(3)"),  # a failed task, not an exit
])
def test_a_failing_notebook_is_one_line_naming_its_error(tmp_path, body, message):
    from ploomber.exceptions import DAGBuildError

    from priceintel.pipeline.run import build_error

    dag = _failing_dag(tmp_path, body)
    with pytest.raises(DAGBuildError) as caught:
        dag.build(show_progress=False)
    assert build_error(dag, caught.value) == message
    import builtins

    # nothing of the failed notebook stays behind in this process
    assert not any(hasattr(sys, name) for name in ("last_type", "last_value", "last_traceback", "last_exc"))
    assert not hasattr(builtins, "__IPYTHON__")


def test_root_cause_reads_a_kernels_traceback_without_its_module():
    from ploomber.exceptions import DAGBuildError

    from priceintel.pipeline.run import root_cause

    text = ("Error building task 'load'\nTraceback (most recent call last):\n  File \"x.py\", line 3\n"
            "priceintel.pipeline.stages.ParameterError: days=0: use a positive number of days\n")
    assert root_cause(DAGBuildError(text)) == "ParameterError: days=0: use a positive number of days"
    assert root_cause(DAGBuildError("Error building task 'load'\nsomething odd")) == "something odd"
