"""JupyterLab for the data scientists: the server command, and the task inputs a notebook opened there needs.

Why not Ploomber's Jupyter extension: its contents manager (`ploomber.jupyter.PloomberContentsManager`)
wraps the server's contents manager with synchronous methods, but jupytext (>= 1.16) derives its manager
from jupyter_server's *async* one, so every contents request fails (`'coroutine' object is not
subscriptable`; ploomber 0.23.3, jupytext 1.19, jupyter_server 2.21). `priceintel lab` therefore keeps
jupytext's manager (percent `.py` files open as notebooks and save back as `.py`, outputs never written)
and turns Ploomber's server extension off. Ploomber's injected-parameters cell is replaced by an explicit
call in each task notebook, `task_inputs("clean", globals())`, which leaves what Ploomber injected alone
when the pipeline runs and, in JupyterLab, sets the same declared products and params from
`pipeline.yaml` + `env.yaml`. Nothing is injected into the files, so nothing injected can reach git.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError, config

#: server extensions `priceintel lab` turns off (see the module docstring)
DISABLED_EXTENSIONS = ("ploomber", "ploomber_extension")
#: JupyterLab default settings of the project (overrides.json)
APP_SETTINGS = config.PROJ_ROOT / "config" / "jupyterlab"


def is_root() -> bool:
    """True when running as uid 0 (containers, CI boxes), where Jupyter needs --allow-root."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(port: int = 8888, notebook_dir: Path | None = None, open_browser: bool = False) -> list[str]:
    """The JupyterLab command line: loopback only, token auth (JUPYTER_TOKEN or a generated one), opening on
    notebooks/, jupytext's contents manager, Ploomber's contents manager off; --allow-root only as root."""
    root = notebook_dir or config.PROJ_ROOT / "notebooks"
    extensions = "{" + ", ".join(f"'{name}': False" for name in DISABLED_EXTENSIONS) + "}"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.jpserver_extensions={extensions}",
        "--ServerApp.port_retries=0",
        # defaults: a percent .py opens as a notebook (jupytext), no news/update requests off this machine,
        # no extension manager calling PyPI
        f"--LabApp.app_settings_dir={APP_SETTINGS}",
        "--LabApp.extension_manager=readonly",
    ]
    if not open_browser:
        cmd.append("--no-browser")
    if is_root():
        cmd.append("--allow-root")
    return cmd


def _as_dict(product: Any) -> Any:
    """A Ploomber product as the plain value Ploomber injects: a dict of paths for a MetaProduct, else a path."""
    value = product.to_json_serializable()
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else str(value)


def task_inputs(task: str, namespace: dict, env_file: str | None = None) -> dict | None:
    """Give a task notebook the inputs Ploomber injects: `upstream`, `product` and the task's params.

    Under `priceintel run` Ploomber has already injected them (`product` is a dict): nothing changes and None
    is returned. Opened in JupyterLab the parameters cell leaves `product` None, so the task's declared
    products, its upstream tasks' products and its params are read from pipeline.yaml with env.yaml (or
    `env_file`), exactly as Ploomber would inject them, and set in `namespace` (the notebook's globals());
    the dict of what was set is returned. The files are whatever the last run left (`make demo` first)."""
    if namespace.get("product") is not None:
        return None
    from ploomber.spec import DAGSpec

    from priceintel.pipeline.run import build_env

    dag = DAGSpec(str(config.PROJ_ROOT / "pipeline.yaml"), env=build_env(env_file, {})).to_dag()
    if task not in dag:
        raise PriceIntelError(f"task_inputs: no task {task!r} in pipeline.yaml (tasks: {', '.join(dag)})")
    t = dag[task]
    values = {
        "upstream": {name: _as_dict(dag[name].product) for name in t.upstream} or None,
        "product": _as_dict(t.product),
    }
    values.update({k: v for k, v in t.params.to_dict().items() if k not in ("upstream", "product")})
    namespace.update(values)
    return values
