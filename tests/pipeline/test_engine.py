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
