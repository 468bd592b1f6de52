"""Where chunked work runs: in this process, on local worker processes, or on a Dask cluster.

Two kinds of work are split into independent chunks: the per-series forecast backtests of a tournament
(`forecast.backtest.run_parallel`) and the re-extraction of archived pages (`scrape.reextract`). Without a
cluster they run here (joblib processes for the tournament). Given one (`--cluster tcp://host:8786`, or
$PRICEINTEL_DASK_CLUSTER, or a `distributed.Client` / `LocalCluster` object in a notebook) every chunk is a Dask
task: the results are the same, only where they are computed changes.

Every worker must be able to import this package at the same version (`pip install` the project on each), and,
for re-extraction, read the raw archive (the same path, or the object store named by $PRICEINTEL_ARCHIVE_URL).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from priceintel import PriceIntelError

#: the scheduler address used when none is given (empty: run locally)
CLUSTER_ENV = "PRICEINTEL_DASK_CLUSTER"
#: seconds to wait for a scheduler to answer
CONNECT_TIMEOUT = 15


class ClusterError(PriceIntelError):
    """The Dask cluster cannot be reached, or its workers cannot run the work."""


def resolve(cluster: Any = None) -> Any:
    """The cluster to use: the argument (address, Client or cluster object) if given, else $PRICEINTEL_DASK_CLUSTER,
    else None (local). An address must be `tcp://`, `tls://`, `inproc://` or `ucx://` host:port."""
    if cluster is None or (isinstance(cluster, str) and not cluster.strip()):
        cluster = os.environ.get(CLUSTER_ENV, "").strip() or None
    if isinstance(cluster, str):
        cluster = cluster.strip()
        scheme, sep, rest = cluster.partition("://")
        if not sep or scheme not in ("tcp", "tls", "inproc", "ucx") or not rest:
            raise ClusterError(
                f"cluster {cluster!r} is not a Dask scheduler address: give e.g. tcp://10.0.0.5:8786 "
                f"(`dask scheduler` prints it), or nothing to run on this machine"
            )
    return cluster


def describe(cluster: Any) -> str:
    """A short name of where work runs, for reports: 'local', the address, or the cluster's scheduler."""
    cluster = resolve(cluster)
    if cluster is None:
        return "local"
    if isinstance(cluster, str):
        return cluster
    address = getattr(cluster, "scheduler_address", None)  # a cluster object
    if address is None:  # a Client
        address = getattr(getattr(cluster, "scheduler", None), "address", None)
    return str(address or type(cluster).__name__)


@contextmanager
def connect(cluster: Any) -> Iterator[Any]:
    """A `distributed.Client` for `cluster` (an address, a cluster object, or a Client used as it is); a client
    made here is closed on exit. A scheduler that does not answer is a ClusterError naming the address."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise ClusterError(f"running on a Dask cluster needs the `distributed` package ({exc})") from None

    cluster = resolve(cluster)
    if isinstance(cluster, Client):
        _wait_for_workers(cluster, cluster)
        yield cluster
        return
    try:
        client = Client(cluster, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {describe(cluster)} within {CONNECT_TIMEOUT} s ({exc}); "
            f"is `dask scheduler` running there?"
        ) from None
    try:
        _wait_for_workers(client, cluster)
        yield client
    finally:
        client.close()


def _wait_for_workers(client: Any, cluster: Any) -> None:
    """At least one worker within CONNECT_TIMEOUT, else a ClusterError (a scheduler without workers would
    leave every task waiting)."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"the Dask scheduler at {describe(cluster)} has no workers after {CONNECT_TIMEOUT} s ({exc}); start "
            f"some with `dask worker {describe(cluster)} --nthreads 1`"
        ) from None


def slots(client: Any) -> int:
    """Worker threads of the cluster behind `client` (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def map_chunks(func: Callable[..., list], chunks: Sequence[list], client: Any, **kw: Any) -> Iterator[list]:
    """Run `func(chunk, **kw)` for every chunk as Dask tasks; yield each chunk's result as it completes. A worker
    that cannot import the package or a task that fails raises here, with the worker's own message."""
    from distributed import as_completed

    task = functools.partial(func, **kw)
    pending = set(client.map(task, list(chunks), pure=False))
    try:
        for future in as_completed(pending, loop=client.loop):
            pending.discard(future)  # no reference of ours is left once it is here: the worker may forget it
            result = future.result()
            del future
            yield result
    except (ModuleNotFoundError, ImportError) as exc:
        raise ClusterError(
            f"a Dask worker cannot import {getattr(exc, 'name', None) or exc}: install priceintel (the same "
            f"version as here) on every worker"
        ) from None
    finally:
        client.cancel([f for f in pending if not f.done()])


def chunked(items: Sequence, n_chunks: int) -> list[list]:
    """`items` dealt into at most `n_chunks` non-empty chunks, round robin (long and short series mix)."""
    n = min(len(items), max(1, n_chunks))
    return [list(items[i::n]) for i in range(n)]
