"""Fitted listing matchers remembered on disk, by exactly what they were fitted on.

A daily run fits the matcher again on the same training pairs whenever the listings, labels and identifier
pairs did not change since the last run (the demo source always trains on the same independent demo world).
A fit is a pure function of its training frame, its settings, the code that fits and the library versions
(every random draw is seeded), so it is stored under the SHA-256 of all of them and read back instead of
fitted again: a hit returns the very model a fit would have made.

Where: `$PRICEINTEL_CACHE_DIR/matcher/`, else `$XDG_CACHE_HOME/priceintel/matcher/`, else
`~/.cache/priceintel/matcher/`; `PRICEINTEL_CACHE_DIR=off` turns the disk cache off. The newest `KEEP` fits
are kept (a fit is a few MB). An unreadable entry is fitted again and replaced; a cache that cannot be
written is skipped with a warning, never an error. The last fit is also kept in memory.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import tempfile
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
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "priceintel" / "matcher"


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """The code and library versions a fit depends on."""
    import sklearn

    digest = hashlib.sha256(f"numpy {np.__version__} pandas {pd.__version__} sklearn {sklearn.__version__}".encode())
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
            value = pickle.load(fh)  # noqa: S301 - the user's own cache, written by `_write`
        os.utime(path)  # recently used: kept longest
        return value
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file: fitted again and replaced
        log.warning("matcher cache entry %s unreadable (%s): fitting again", path, type(exc).__name__)
        return None


def _write(folder: Path, name: str, value: Any) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / name)  # atomic: a reader sees the whole fit or none
        entries = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("matcher cache %s not written (%s): the fit is used, not kept", folder, exc)


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
