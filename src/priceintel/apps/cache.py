"""In-process cache of dashboard results keyed by the latest load, so repeated views are instant.

Every key starts with the database URL and `load_key(engine)`: a new load, model run, alert change or
view refresh changes the load key, so a cached answer is never served for newer data.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["CACHE", "AppCache"]


class AppCache:
    """A thread-safe LRU mapping of hashable keys to computed results, with hit/miss counters."""

    def __init__(self, maxsize: int = 512):
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value of key, else compute(), store and return it (the same object on later hits)."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        """Forget every entry (counters too)."""
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def stats(self) -> dict:
        """Entries, hits and misses so far."""
        with self._lock:
            return {"entries": len(self._data), "hits": self.hits, "misses": self.misses}


#: the process-wide cache every dashboard call goes through
CACHE = AppCache()
