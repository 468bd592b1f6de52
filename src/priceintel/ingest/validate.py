"""Row-level checks of an import, run as one pandera schema: each `Rule` is a pandera Check on one column whose
failure cases become `Issue`s (row, column, value, reason). Errors reject their row; warnings do not."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from priceintel.ingest.result import Issue
from priceintel.items import plain

__all__ = ["Rule", "check_rows", "duplicate_rule", "required_rule", "split"]

#: how many row numbers a duplicate message names
_SHOW_ROWS = 5


@dataclass(frozen=True)
class Rule:
    """A check of one column: `ok(column)` is True where a cell passes (missing cells are passed in too).
    `reason` is a text with `{value}` (the cell as written) or a function (value, row) -> text."""

    column: str
    ok: Callable[[pd.Series], pd.Series]
    reason: str | Callable[[Any, int], str]
    level: str = "error"

    def message(self, value: Any, row: int) -> str:
        """The reason for one failing cell."""
        if callable(self.reason):
            return self.reason(value, row)
        return self.reason.format(value=value)


def required_rule(column: str, what: str) -> Rule:
    """Reject a row whose `column` is empty: 'missing <what>'."""
    return Rule(column, lambda s: s.notna(), f"missing {what}")


def duplicate_rule(df: pd.DataFrame, keys: Sequence[str], what: str) -> Rule:
    """Reject every copy of a key repeated in df (its columns `keys`), naming the rows that share it."""
    dup = df.duplicated(list(keys), keep=False) & df[list(keys)].notna().all(axis=1)
    shared = df.loc[dup, list(keys)].astype(str)
    labels = shared[keys[0]]
    for key in keys[1:]:
        labels = labels + " / " + shared[key]
    groups: dict[str, list[int]] = defaultdict(list)
    for row, label in labels.items():
        groups[label].append(int(row))

    def reason(value: Any, row: int) -> str:
        rows = groups[labels[row]]
        shown = ", ".join(str(r) for r in rows[:_SHOW_ROWS]) + (", …" if len(rows) > _SHOW_ROWS else "")
        return f"duplicate {what} '{labels[row]}' (rows {shown}): every copy rejected"

    return Rule(keys[0], lambda s: ~dup, reason)


def check_rows(df: pd.DataFrame, rules: Sequence[Rule]) -> list[Issue]:
    """Run the rules (those whose column df has) as a lazy pandera schema; one Issue per failing cell, by row."""
    # pandera takes about a second to import: only imports pay for it, not every `priceintel` command
    import pandera.errors as pe
    import pandera.pandas as pa

    keyed = {f"rule{i}": rule for i, rule in enumerate(rules) if rule.column in df.columns}
    checks: dict[str, list] = defaultdict(list)
    for key, rule in keyed.items():
        checks[rule.column].append(pa.Check(rule.ok, name=key, ignore_na=False))
    schema = pa.DataFrameSchema(
        {col: pa.Column(None, cs, nullable=True) for col, cs in checks.items()}, strict=False, coerce=False
    )
    try:
        schema.validate(df, lazy=True, inplace=True)
    except pe.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return []
    order = {key: i for i, key in enumerate(keyed)}
    out = []
    for check, row in sorted(
        zip(cases["check"].astype(str), cases["index"]), key=lambda t: (int(t[1]), order.get(t[0], 0))
    ):
        rule = keyed[check]
        value = plain(df.at[row, rule.column])
        out.append(Issue(int(row), rule.column, value, rule.message(value, int(row)), rule.level))
    return out


def split(df: pd.DataFrame, issues: list[Issue]) -> tuple[pd.DataFrame, list[Issue], list[Issue]]:
    """(rows without errors, errors, warnings of the kept rows)."""
    errors = [i for i in issues if i.level == "error"]
    bad = {i.row for i in errors}
    warnings = [i for i in issues if i.level != "error" and i.row not in bad]
    return df.loc[~df.index.isin(list(bad))], errors, warnings
