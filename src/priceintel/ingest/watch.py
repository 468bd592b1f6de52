"""The competitor watch list: product pages of other shops we fetch and compare with our products.

`import_watches` reads a file with columns url (or link), retailer (optional: derived from the host,
www.walmart.com -> walmart) and sku (optional: our product the page is compared with). Rejected rows: a
malformed URL (not an absolute http(s) URL with a host), an sku not in dim_product, every copy of a repeated
URL. With `known_retailers` (the shops of shops.yaml), a retailer outside it is a warning: the row is imported
and fetched with the generic adapter. Watches are upserted on url; a removed (inactive) watch comes back.
`add_watch`, `list_watches` and `remove_watch` manage single watches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from priceintel.db import usage
from priceintel.db.staging import cols, prepare, stage
from priceintel.ingest.fields import by_unique, clean_url, pick, retailer_from_url
from priceintel.ingest.lineage import Checked, run_import
from priceintel.ingest.result import ImportResult, IngestError, Issue
from priceintel.ingest.validate import Rule, check_rows, duplicate_rule, required_rule, split
from priceintel.scrape.adapters import adapter_for_url

__all__ = ["WATCH_COLUMNS", "import_watches", "add_watch", "list_watches", "remove_watch", "unknown_retailer_message"]

#: columns of `list_watches`
WATCH_COLUMNS = [
    "watch_id",
    "retailer",
    "url",
    "sku",
    "active",
    "status",
    "status_reason",
    "status_since",
    "created_at",
    "updated_at",
]
_ALIASES = {"url": ("url", "link", "product_url"), "retailer": ("retailer", "shop", "store"), "sku": ("sku",)}
_COLS = cols("url! retailer! sku")


def unknown_retailer_message(retailer: str, url: str | None = None) -> str:
    """The warning for a retailer that shops.yaml does not describe: fetched with the adapter a run will pick for
    its URL (`scrape.shops.shop_for`: the site's own adapter, else the generic one) and default politeness."""
    adapter = adapter_for_url(url).name if url else "generic"
    return (
        f"retailer '{retailer}' is not in shops.yaml: it will be fetched with the {adapter} adapter "
        "and default politeness"
    )


def _retailer_warnings(column: str, retailers: pd.Series, urls: pd.Series, known: set[str]) -> list[Issue]:
    """One warning per retailer outside `known`, at the first row that names it."""
    unknown = retailers[retailers.notna() & ~retailers.isin(known)]
    first = unknown[~unknown.duplicated()]
    return [
        Issue(int(row), column, name, unknown_retailer_message(name, urls.get(row)), "warning")
        for row, name in first.items()
    ]


def check_watches(conn: Connection, path: Path, df: pd.DataFrame, known_retailers: set[str] | None = None) -> Checked:
    """Check a watch-list frame (as read): the watch rows to load [url, retailer, sku?], rejects and warnings."""
    found = {t: c for t, aliases in _ALIASES.items() if (c := pick(df, aliases))}
    if "url" not in found:
        raise IngestError(f"{path.name}: no url column (url or link); its columns: {list(df.columns)}")
    url_col = found["url"]
    urls = by_unique(df[url_col], clean_url)
    given = df[found["retailer"]].str.lower() if "retailer" in found else pd.Series(None, index=df.index, dtype=object)
    retailers = given.where(given.notna(), by_unique(urls, retailer_from_url)).rename("retailer")
    keys = pd.DataFrame({url_col: urls}, index=df.index)
    rules = [
        required_rule(url_col, url_col),
        Rule(url_col, lambda s: s.isna() | urls.notna(), "malformed URL '{value}' (need an absolute http(s) URL)"),
        duplicate_rule(keys, [url_col], "URL"),
    ]
    if "sku" in found:
        known = set(conn.execute(sa.text("SELECT sku FROM dim_product")).scalars())
        ok = df[found["sku"]].isna() | df[found["sku"]].isin(known)
        rules.append(Rule(found["sku"], lambda s: ok, "unknown sku '{value}' (not in the catalogue)"))
    kept, rejects, warnings = split(df, check_rows(df, rules))
    out = pd.DataFrame({"url": urls[kept.index], "retailer": retailers[kept.index]}, index=kept.index)
    if "sku" in found:
        out["sku"] = kept[found["sku"]]
    if known_retailers is not None:
        column = found.get("retailer", url_col)
        warnings += _retailer_warnings(column, out["retailer"], out["url"], known_retailers)
    return Checked(out, rejects, sorted(warnings, key=lambda i: i.row or 0))


def _upsert(conn: Connection, frame: pd.DataFrame, run_id: int | None) -> dict:
    """Upsert watches on url: changed (or removed) watches are updated, reactivated and stamped with the run;
    new ones inserted. Unchanged rows touch nothing, not even the id sequence (ids stay dense for users)."""
    present, conv = prepare(frame, "watch", _COLS, ["url"])
    n = stage(conn, "stg_watch", present, conv)
    attrs = [c.name for c in present if c.name != "url"]
    old = ", ".join([*(f"t.{c}" for c in attrs), "t.active"])
    new = ", ".join([*(f"s.{c}" for c in attrs), "true"])
    sets = ", ".join([*(f"{c} = s.{c}" for c in attrs), "active = true", "updated_at = now()", "import_run_id = :run"])
    updated = conn.execute(
        sa.text(
            f"""UPDATE watch t SET {sets} FROM stg_watch s
                WHERE t.url = s.url AND ROW({old}) IS DISTINCT FROM ROW({new})"""
        ),
        {"run": run_id},
    ).rowcount
    names = ", ".join(["url", *attrs])
    inserted = conn.execute(
        sa.text(
            f"""INSERT INTO watch ({names}, import_run_id)
                SELECT {", ".join(f"s.{c}" for c in ["url", *attrs])}, CAST(:run AS integer) FROM stg_watch s
                WHERE NOT EXISTS (SELECT 1 FROM watch t WHERE t.url = s.url) ORDER BY s.url
                ON CONFLICT (tenant_id, url) DO NOTHING"""
        ),
        {"run": run_id},
    ).rowcount
    usage.check_watches(conn)  # over the plan's watched URLs: the whole import (or addition) rolls back
    return {"staged": n, "inserted": int(inserted), "updated": int(updated)}


def import_watches(
    engine: Engine,
    path: str | Path,
    *,
    strict: bool = False,
    encoding: str | None = None,
    known_retailers: set[str] | None = None,
    archive_root: str | Path | None = None,
    by: str | None = None,
) -> ImportResult:
    """Import a watch-list file (see the module docstring) into `watch`, with lineage and rejects."""
    opts: dict[str, Any] = {"strict": strict, "encoding": encoding, "archive_root": archive_root, "by": by}
    return run_import(engine, "watch", path, lambda c, p, df: check_watches(c, p, df, known_retailers), _upsert, **opts)


def add_watch(
    engine: Engine,
    url: str,
    retailer: str | None = None,
    sku: str | None = None,
    *,
    known_retailers: set[str] | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Watch one page: {watch_id, url, retailer, sku, action (added|updated|unchanged), warnings}; `by` names who
    (watch.changed_by, when the watch was added or changed)."""
    clean = clean_url(url)
    if clean is None:
        raise IngestError(f"malformed URL {url!r}: need an absolute http(s) URL with a host")
    name = (retailer or "").strip().lower() or retailer_from_url(clean)
    if not name:
        raise IngestError(f"cannot tell the retailer of {url!r}: give --retailer")
    frame = pd.DataFrame({"url": [clean], "retailer": [name]})
    with engine.begin() as conn:
        if sku is not None:
            found = conn.execute(sa.text("SELECT 1 FROM dim_product WHERE sku = :s"), {"s": sku}).first()
            if found is None:
                raise IngestError(f"unknown sku {sku!r}: it is not in the catalogue (import the catalogue first)")
            frame["sku"] = [sku]
        counts = _upsert(conn, frame, None)
        watch_id = conn.execute(sa.text("SELECT watch_id FROM watch WHERE url = :u"), {"u": clean}).scalar_one()
        if by is not None and (counts["inserted"] or counts["updated"]):
            conn.execute(sa.text("UPDATE watch SET changed_by = :by WHERE watch_id = :w"), {"by": by, "w": watch_id})
    action = "added" if counts["inserted"] else "updated" if counts["updated"] else "unchanged"
    unknown = known_retailers is not None and name not in known_retailers
    warnings = [unknown_retailer_message(name, clean)] if unknown else []
    out = {"watch_id": int(watch_id), "url": clean, "retailer": name, "sku": sku, "action": action}
    return {**out, "warnings": warnings}


def list_watches(engine: Engine, *, include_inactive: bool = False, retailer: str | None = None) -> pd.DataFrame:
    """The watch list (WATCH_COLUMNS), active watches only unless include_inactive, by retailer and url."""
    where = ["(:all OR active)", "(CAST(:r AS text) IS NULL OR retailer = :r)"]
    sql = f"SELECT {', '.join(WATCH_COLUMNS)} FROM watch WHERE {' AND '.join(where)} ORDER BY retailer, url"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"all": include_inactive, "r": retailer}).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=WATCH_COLUMNS)


def _target(url_or_id: str | int) -> tuple[str, dict]:
    """SQL condition and params selecting a watch by id (digits) or url."""
    text = str(url_or_id).strip()
    if text.isdigit():
        return "watch_id = :v", {"v": int(text)}
    return "url = :v", {"v": clean_url(text) or text}


def remove_watch(engine: Engine, url_or_id: str | int, *, purge: bool = False, by: str | None = None) -> int:
    """Stop watching a page (active = false; its history stays), or delete it and its fetches with `purge`;
    returns the number of watches changed. IngestError when no watch has that id or url. `by` names who
    (watch.changed_by)."""
    cond, params = _target(url_or_id)
    params["by"] = by
    with engine.begin() as conn:
        if conn.execute(sa.text(f"SELECT 1 FROM watch WHERE {cond}"), params).first() is None:
            raise IngestError(f"no watch with id or url {str(url_or_id)!r} (see `priceintel watch list --all`)")
        if purge:
            return conn.execute(sa.text(f"DELETE FROM watch WHERE {cond}"), params).rowcount
        sql = f"UPDATE watch SET active = false, updated_at = now(), changed_by = :by WHERE {cond} AND active"
        return conn.execute(sa.text(sql), params).rowcount
