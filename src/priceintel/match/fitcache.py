"""Fitted listing matchers remembered on disk, by exactly what they were fitted on.

A daily run fits the matcher again on the same training pairs whenever the listings, labels and identifier
pairs did not change since the last run (the demo source always trains on the same independent demo world).
A fit is a pure function of its training frame, its settings, the code that fits and the library versions
(every random draw is seeded), so it is stored under the SHA-256 of all of them and read back instead of
fitted again: a hit returns the very model a fit would have made.

Where: `$PRICEINTEL_CACHE_DIR/matcher/`, else `$XDG_CACHE_HOME/priceintel/matcher/`, else
`~/.cache/priceintel/matcher/`; `PRICEINTEL_CACHE_DIR=off` turns the disk cache off. The `KEEP` fits
used last are kept (a fit is a few MB; the folder is made private, 0700). An unreadable entry is fitted again
and replaced; a cache that cannot be written is skipped with a warning, never an error. The last fit is also
kept in memory.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the cache directory's environment variable (`off`: no disk cache)
CACHE_ENV = "PRICEINTEL_CACHE_DIR"
#: fits kept on disk (the newest by modification time)
KEEP = 16
#: the modules whose code decides what a fit makes (a change to any of them is a new key)
_CODE = ("learned.py", "model.py", "rules.py", "features.py", "normalize.py", "fitcache.py")

_MEMORY: dict[str, Any] = {}


def cache_dir() -> Path | None:
    """The matcher cache directory, or None when `PRICEINTEL_CACHE_DIR=off`."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen) / "matcher"
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry: nowhere to keep fits
            return None
    return Path(base) / "priceintel" / "matcher"


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """The code and library versions a fit depends on."""
    import scipy
    import sklearn

    versions = f"python {sys.version} numpy {np.__version__} pandas {pd.__version__} scipy {scipy.__version__}"
    digest = hashlib.sha256(f"{versions} sklearn {sklearn.__version__}".encode())
    here = Path(__file__).parent
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def key(data: pd.DataFrame, settings: Sequence[Any], rows: np.ndarray | None = None) -> str:
    """SHA-256 of the training frame (values, columns, dtypes), the settings, the row mask and the code."""
    digest = hashlib.sha256(_fingerprint().encode())
    digest.update(repr([(str(c), str(t)) for c, t in data.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    digest.update(repr(tuple(settings)).encode())
    if rows is not None:
        digest.update(b"rows" + np.asarray(rows, dtype=bool).tobytes())
    return digest.hexdigest()


def _read(path: Path) -> Any | None:
    try:
        with path.open("rb") as fh:
            value = pickle.load(fh)  # noqa: S301 - the user's own cache (a 0700 folder), written by `_write`
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file: fitted again and replaced
        log.warning("matcher cache entry %s unreadable (%s): fitting again", path, type(exc).__name__)
        return None
    try:
        os.utime(path)  # recently used: kept longest
    except OSError:  # pruned meanwhile, or a read-only cache: the fit read is good all the same
        pass
    return value


#: a partial file older than this is left by a process that died while writing it
_STALE_PART_S = 3600


def _write(folder: Path, name: str, value: Any) -> None:
    tmp: str | None = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / name)  # atomic: a reader sees the whole fit or none
        tmp = None
        _prune(folder)
    except Exception as exc:  # noqa: BLE001 - a cache that cannot keep a fit never fails the run
        log.warning("matcher cache %s not written (%s): the fit is used, not kept", folder, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Keep the KEEP fits used last; drop partial files of writers that died."""
    now = time.time()

    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return 0.0

    for old in sorted(folder.glob("*.pkl"), key=mtime, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
    for part in folder.glob(".part-*"):
        if now - mtime(part) > _STALE_PART_S:
            part.unlink(missing_ok=True)


def fitted(data: pd.DataFrame, settings: Sequence[Any], fit: Callable[[], T], rows: np.ndarray | None = None) -> T:
    """What `fit()` returns for this training frame and these settings: from memory, else from the disk cache,
    else fitted now (and kept). Each call gets its own copy (callers adjust thresholds in place)."""
    name = key(data, settings, rows)
    if name not in _MEMORY:
        folder = cache_dir()
        value = _read(folder / f"{name}.pkl") if folder is not None else None
        if value is None:
            value = fit()
            if folder is not None:
                _write(folder, f"{name}.pkl", value)
        _MEMORY.clear()  # one fit at a time in memory
        _MEMORY[name] = value
    return copy.deepcopy(_MEMORY[name])
