"""The filters of every dashboard view (dates, retailers, categories, products), validated and normalised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


def as_date(value: Any, name: str) -> date | None:
    """None, a date, a datetime/Timestamp or an ISO string → date; anything else is a ValueError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"filter {name}={value!r} is not a date (use a date or 'YYYY-MM-DD')")


def _as_names(value: Any, name: str) -> tuple[str, ...]:
    """None/''/a string/an iterable of strings → a sorted tuple of distinct non-empty strings."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise ValueError(f"filter {name}={value!r} is not a list of names") from None
    out = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"filter {name} holds {item!r}, which is not a non-empty name")
        out.add(item.strip())
    return tuple(sorted(out))


@dataclass(frozen=True)
class Filters:
    """What every view is filtered by; empty tuples mean "all". Hashable (a cache-key part).

    Dates are inclusive; strings 'YYYY-MM-DD' and lists are accepted and normalised (names sorted).
    """

    start: date | None = None
    end: date | None = None
    retailers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            object.__setattr__(self, name, as_date(getattr(self, name), name))
        for name in ("retailers", "categories", "skus"):
            object.__setattr__(self, name, _as_names(getattr(self, name), name))
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"filter start {self.start} is after filter end {self.end}")

    def describe(self) -> list[tuple[str, str]]:
        """(label, value) pairs for reports and exports."""

        def names(v: tuple[str, ...]) -> str:
            return ", ".join(v) if v else "all"

        return [
            ("from", str(self.start) if self.start else "first day"),
            ("to", str(self.end) if self.end else "last day"),
            ("retailers", names(self.retailers)),
            ("categories", names(self.categories)),
            ("products", names(self.skus)),
        ]
