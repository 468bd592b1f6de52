"""Observability: structured JSON logs with run / task / tenant / request ids, and Prometheus metrics shared by
every process of an installation (pipeline runs, scheduler, API).

`obs.logs` (the ids, the JSON lines, the daily files), `obs.metrics` (the series, `render` for /metrics),
`obs.errors` (Sentry). A process's entry point calls `start(service)` once: logs set up and Sentry started
when SENTRY_DSN is set. docs/observability.md lists the variables, the series and the ids.
"""

from __future__ import annotations

import logging

__all__ = ["start", "start_task_kernel"]


def start(service: str, *, console_level: int | None = None) -> bool:
    """Set up this process's logs (`logs.setup`) and error tracking (`errors.init_sentry`); False when it had
    been done already."""
    from priceintel.obs import errors, logs

    started = logs.setup(service, console_level=console_level)
    errors.init_sentry(service)
    return started


def start_task_kernel() -> bool:
    """In the kernel of a pipeline task whose parent set up its logs (`logs.is_task_kernel`): `start` with
    only warnings on stderr (the kernel's stderr is its notebook's output); a no-op anywhere else."""
    from priceintel.obs import logs

    if not logs.is_task_kernel():
        return False
    return start("pipeline-task", console_level=logging.WARNING)
