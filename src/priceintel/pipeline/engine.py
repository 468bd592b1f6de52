"""The pipeline's notebooks run in the process that builds the DAG (ploomber-engine), not in a kernel each.

pipeline.yaml gives every task `executor: ploomber-engine`: the notebook's cells run in an IPython shell of this
process, so a task pays no kernel start and no second import of pandas, SQLAlchemy and the package (about 3 s a
task: the demo run took 85 s with a kernel per task, 58 s in process). The executed notebook, outputs included,
is still the task's HTML report. A notebook opened in JupyterLab, or run alone with papermill, still gets a kernel
(docs/notebooks.md).

While a cell runs, what it writes to stderr goes into the notebook (ploomber-engine passes it on to this process's
stderr too): this process's logs show only warnings there (`logs.console_at_least`), as a task kernel's did;
every record still goes to the daily log file.

What IPython does to its own process for a shell is undone after each notebook (`prepare` patches
ploomber-engine's client once), so a scheduler that runs the pipeline every day for months neither grows nor
changes: `sys.exit` in a cell fails the task (not the process), a failed cell's error (`sys.last_value`, with
its frames' data) is dropped, and `__IPYTHON__` leaves the builtins again. And:
- the shell's SQLite history would start a saving thread that outlives the shell (one thread per task run);
- the shell puts its namespace in `sys.modules["__main__"]` and keeps the one it replaced, so every shell would
  hold the previous one (about 110 KB a task run, never freed), and this process's `__main__` would stay a
  notebook's namespace. tests/pipeline/test_engine.py checks both.
"""

from __future__ import annotations

import atexit
import builtins
import logging
import sys
import threading
from typing import Any

from priceintel.obs import logs

__all__ = ["prepare"]

_LOCK = threading.Lock()
_MARK = "_priceintel_prepared"


def prepare() -> None:
    """Patch ploomber-engine's client once per process (see the module docstring); later calls do nothing."""
    from IPython.core.history import HistoryManager
    from ploomber_engine.ipython import PloomberClient, PloomberShell

    with _LOCK:
        if getattr(PloomberClient, _MARK, False):
            return
        interactive = hasattr(builtins, "__IPYTHON__")  # run from a notebook: leave its IPython be

        def init_history(self: Any) -> None:  # no SQLite history, so no saving thread
            self.history_manager = HistoryManager(shell=self, parent=self, enabled=False)
            self.configurables.append(self.history_manager)

        exit_client, run_cell = PloomberClient.__exit__, PloomberClient.execute_cell

        def execute_cell(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                with logs.console_at_least(logging.WARNING):  # stderr is the notebook's while a cell runs
                    return run_cell(self, *args, **kwargs)
            except SystemExit as exc:  # a failed task, as in a kernel; not the end of this process
                raise RuntimeError(f"the notebook called sys.exit({exc.code!r})") from None

        def __exit__(self: Any, *exc: Any) -> Any:
            shell = self._shell
            try:
                return exit_client(self, *exc)
            finally:
                if shell is not None:
                    atexit.unregister(shell.atexit_operations)  # else atexit holds the shell to the end
                    shell.atexit_operations()
                    shell.restore_sys_module_state()  # this process's __main__ back
                for name in ("last_type", "last_value", "last_traceback", "last_exc"):
                    sys.__dict__.pop(name, None)  # a failed cell's error, its frames and their data
                if not interactive:
                    builtins.__dict__.pop("__IPYTHON__", None)  # pandas & co. would take this for IPython

        PloomberShell.init_history = init_history
        PloomberClient.__exit__ = __exit__
        PloomberClient.execute_cell = execute_cell
        setattr(PloomberClient, _MARK, True)
