"""What an import reports: row issues (rejections and warnings), the rejects file, and `ImportResult`."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from priceintel import PriceIntelError
from priceintel.items import plain, safe_cell

#: columns of a `<name>.rejects.csv` file
REJECT_COLUMNS = ("row", "column", "value", "reason")
#: how many issues `ImportResult.lines` and error messages show before "… and N more"
SHOW_ISSUES = 20


class IngestError(PriceIntelError):
    """A file cannot be imported (unreadable, wrong columns, refused by --strict): the message names the file."""


@dataclass(frozen=True)
class Issue:
    """One problem in one row: `row` as a spreadsheet user counts it (header = 1), the column, the value as
    written and the reason (a full phrase naming the value). An `error` rejects the row; a `warning` does not."""

    row: int | None
    column: str
    value: Any
    reason: str
    level: str = "error"

    def line(self, name: str) -> str:
        """'catalog.csv row 7, column gtin: bad check digit '4006…' (row loaded without gtin)'."""
        where = f"{name} row {self.row}" if self.row is not None else name
        return f"{where}, column {self.column}: {self.reason}"


@dataclass
class ImportResult:
    """Outcome of one import: its import_run row, status (success|partial|failed), counts and issues."""

    kind: str
    path: Path
    import_run_id: int | None
    status: str
    counts: dict[str, int]
    warnings: list[Issue] = field(default_factory=list)
    rejects: list[Issue] = field(default_factory=list)
    rejects_path: Path | None = None
    archive_path: Path | None = None

    def summary(self) -> str:
        """One line: file, rows, what happened to them, status."""
        c = self.counts
        text = (
            f"{self.path.name}: {c.get('total', 0)} row(s): {c.get('inserted', 0)} inserted, "
            f"{c.get('updated', 0)} updated, {c.get('unchanged', 0)} unchanged, {c.get('rejected', 0)} rejected "
            f"({self.status}; {self.kind} import run {self.import_run_id})"
        )
        if self.rejects_path is not None:
            text += f"; rejected rows in {self.rejects_path}"
        return text

    def lines(self, limit: int = SHOW_ISSUES) -> list[str]:
        """Human one-line messages: the summary, then each warning and rejection (at most `limit` of each)."""
        out = [self.summary()]
        for issues in (self.warnings, self.rejects):
            out += [i.line(self.path.name) for i in issues[:limit]]
            if len(issues) > limit:
                out.append(f"… and {len(issues) - limit} more")
        return out


def rejects_path_for(path: Path) -> Path:
    """Where the rejected rows of `path` go: beside it, `<stem>.rejects.csv`."""
    return path.with_name(f"{path.stem}.rejects.csv")


def _cell(value: Any) -> str:
    """A value as written in the rejects file ('' when missing)."""
    value = plain(value)
    return "" if value is None else str(value)


def write_rejects(path: Path, rejects: list[Issue]) -> Path | None:
    """Write the rejections beside `path` (row, column, value, reason); remove a stale file when there are none."""
    target = rejects_path_for(path)
    if not rejects:
        target.unlink(missing_ok=True)
        return None
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(REJECT_COLUMNS)
        for issue in rejects:
            cells = ["" if issue.row is None else issue.row, issue.column, _cell(issue.value), issue.reason]
            writer.writerow([safe_cell(c) for c in cells])  # a rejected value never runs as a spreadsheet formula
    return target


def refusal(path: Path, rejects: list[Issue], rejects_path: Path | None) -> IngestError:
    """IngestError for a --strict import refused because of rejected rows, naming the first ones."""
    rows = len({i.row for i in rejects})
    first = "; ".join(f"row {i.row}, column {i.column}: {i.reason}" for i in rejects[:5])
    more = f"; … {len(rejects) - 5} more" if len(rejects) > 5 else ""
    where = f" (all in {rejects_path})" if rejects_path else ""
    return IngestError(f"{path.name}: refused (strict): {rows} row(s) rejected, nothing imported; {first}{more}{where}")
