"""Where a stored price came from: the extraction method the pipeline's load stores with each observation
(`with_methods`), one price's lineage with its raw page looked up in the archive (`trace`), and the
`priceintel lineage PRICE_ID [--json]` command (`add_parsers`).

A scraped price names its scrape run (started, finished, code version; the pipeline run that loaded it and the
run id of its logs), the raw page it was read from (the SHA-256 under which `scrape.archive.RawArchive` keeps the
body, on disk or in the object store, and the archive index's URL, HTTP status and fetch time) and the method
the extractor read it with. An imported price names its import run (the file, its SHA-256 and archived copy, who
imported it, when). Prices loaded before lineage was kept (migration 0016) say so for what they lack.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from priceintel import config
from priceintel.db import engine as db_engine
from priceintel.db import lineage, migrate
from priceintel.db.load import IMPORT_METHOD
from priceintel.ingest.lineage import archived_path
from priceintel.items import jsonable
from priceintel.scrape.archive import ArchiveError, RawArchive

__all__ = ["LAYERS", "NOT_RECORDED", "add_parsers", "price_method", "render", "trace", "with_methods"]

NOT_RECORDED = "not recorded (loaded before lineage was kept)"
#: the layer of each extraction method (`Offer.methods`: `jsonld`, `json:<path>`, `css:<selector>`, …), by prefix
LAYERS = {
    "jsonld": "JSON-LD",
    "json": "embedded JSON",
    "css": "adapter selector",
    "xpath": "adapter selector",
    "microdata": "microdata",
    "opengraph": "OpenGraph",
    "heuristic": "heuristics",
    IMPORT_METHOD: "imported from a file",
}
#: index partitions (days) searched for a page's fetch, nearest the observation first
SEARCH_DAYS = 7


# --- capture: the method of each observation ------------------------------------------------------------------


def price_method(methods: Any) -> str | None:
    """The extractor's method of the price in an offer's `methods` (JSON text or dict); of the stock status when
    the page shows no price; None when it names neither."""
    if isinstance(methods, str):
        try:
            methods = json.loads(methods)
        except ValueError:
            return None
    if not isinstance(methods, dict):
        return None
    return methods.get("price") or methods.get("availability") or None


def with_methods(obs: pd.DataFrame, offers_path: str | Path | None) -> pd.DataFrame:
    """Observations with `extraction_method`, from the scrape task's offers (their `methods`) by page hash: the
    same body is the same extraction; and with the `seller` the page named, when the offers have one (the
    listing's history, `db.history`). Unchanged when the offers or their methods are not there."""
    path = Path(str(offers_path)) if offers_path is not None else None
    if path is None or not path.is_file() or "page_sha256" not in obs.columns:
        return obs
    names = set(pq.read_schema(path).names)
    if not {"page_sha256", "methods"} <= names:
        return obs
    seller = ["seller"] if "seller" in names and "seller" not in obs.columns else []
    offers = pd.read_parquet(path, columns=["page_sha256", "methods", *seller]).dropna(subset=["page_sha256"])
    offers = offers.drop_duplicates("page_sha256")
    parsed = {m: price_method(m) for m in offers["methods"].dropna().unique()}  # few distinct method sets
    by_sha = pd.Series(offers["methods"].map(parsed).to_numpy(), index=offers["page_sha256"].to_numpy())
    obs = obs.assign(extraction_method=obs["page_sha256"].map(by_sha).astype(object))
    if seller:
        sellers = pd.Series(offers["seller"].to_numpy(), index=offers["page_sha256"].to_numpy())
        obs = obs.assign(seller=obs["page_sha256"].map(sellers).astype(object))
    return obs


# --- report: one price's lineage ----------------------------------------------------------------------------


def layer(method: str | None) -> str | None:
    """The extraction layer of a method (`css:.price` -> adapter selector); None when unknown."""
    if not method:
        return None
    return LAYERS.get(method.split(":", 1)[0])


def _near(when: datetime | None) -> Any:
    """A sort key of index records: how far their fetch is from `when`."""
    return lambda r: abs(pd.Timestamp(r.get("fetched_at")) - pd.Timestamp(when)) if when else 0


def _fetches(archive: RawArchive, sha: str, observed: datetime | None) -> tuple[dict | None, dict | None]:
    """(the archive index record of the fetch that observed the price: fetched at `observed`; the record of the
    fetch that brought body `sha` nearest `observed`), from the SEARCH_DAYS partitions nearest its day. They
    differ when the observing fetch was a conditional request answered 304 (not modified) from the archive."""
    day = (observed or datetime.now(UTC)).date()
    stamp = observed.astimezone(UTC).isoformat().encode() if observed else None

    def distance(part: str) -> int:
        try:
            return abs((date.fromisoformat(part) - day).days)
        except ValueError:
            return 1 << 30

    fetch = body = None
    for part in sorted(archive.partitions(), key=distance)[:SEARCH_DAYS]:
        lines = [ln for ln in archive.index_lines(part) if sha.encode() in ln or (stamp and stamp in ln)]
        records = [json.loads(ln) for ln in lines]
        seen = [r for r in records if stamp and str(r.get("fetched_at", "")).encode() == stamp]
        fetch = fetch or (seen[0] if seen else None)
        bodies = [r for r in records if r.get("sha256") == sha and (r.get("status") or 0) < 300]
        if bodies and body is None:
            body = min(bodies, key=_near(observed))
        if fetch is not None and body is not None:
            break
    return fetch, body


def _record(r: dict | None) -> dict | None:
    """The parts of an index record lineage shows: url, HTTP status, fetch time, the URL it ended at."""
    if r is None:
        return None
    out = {k: r.get(k) for k in ("url", "status", "fetched_at")}
    return {**out, "final_url": (r.get("meta") or {}).get("final_url")}


def _page(archive: RawArchive, sha: str, observed_at: datetime | None) -> dict[str, Any]:
    """What the archive holds of a page: whether its body is there (and intact), where, and its fetches."""
    out: dict[str, Any] = {"sha256": sha, "archive": archive.location, "held": None, "where": None}
    try:
        out["held"] = archive.has(sha)
        if out["held"]:
            out["where"] = archive.where(sha)
            archive.get(sha)  # verified against its address
        fetch, body = _fetches(archive, sha, observed_at)
    except ArchiveError as exc:
        out["error"] = str(exc)
        return out
    out["fetch"], out["body_fetch"] = _record(fetch), _record(body)
    return out


def _scrape_run(row: dict, old: bool) -> dict[str, Any] | None:
    if row["scrape_run_id"] is None:
        return None
    if not row["scrape_run_found"]:
        return {"scrape_run_id": row["scrape_run_id"], "missing": True}
    return {
        "scrape_run_id": row["scrape_run_id"],
        "started_at": row["scrape_started_at"],
        "finished_at": row["scrape_finished_at"],
        "code_version": row["scrape_code_version"],
        "pipeline_run_id": row["pipeline_run_id"],
        "pipeline_task": row["pipeline_task"],
        "pipeline_status": row["pipeline_status"],
        "run_key": row["run_key"] or (NOT_RECORDED if old else "none (loaded outside a pipeline run)"),
    }


def _import_run(row: dict, data_dir: Path | None) -> dict[str, Any] | None:
    if row["import_run_id"] is None:
        return None
    if not row["import_run_found"]:
        return {"import_run_id": row["import_run_id"], "missing": True}
    copy = archived_path(row["import_path"], row["import_kind"], row["import_sha256"], data_dir)
    return {
        "import_run_id": row["import_run_id"],
        "kind": row["import_kind"],
        "file": row["import_path"],
        "file_sha256": row["import_sha256"],
        "archived_copy": str(copy) if copy.is_file() else None,
        "imported_by": row["imported_by"] or "the command line",
        "started_at": row["import_started_at"],
        "finished_at": row["import_finished_at"],
        "status": row["import_status"],
        "code_version": row["import_code_version"],
    }


def trace(engine: Engine, text_id: str, archive: RawArchive | None = None, data_dir: Path | None = None) -> dict:
    """The lineage of the price a PRICE ID names (`db.lineage.price_lineage`) with its raw page looked up in
    `archive` (default: the raw archive of the data dir, or the object store of $PRICEINTEL_ARCHIVE_URL) and an
    imported file's archived copy under `data_dir`; a JSON-ready dict. LineageError for a bad or unknown id."""
    row = lineage.price_lineage(engine, text_id)
    # every load since 0016 names a method, an import run or the pipeline run of its scrape run
    old = row["extraction_method"] is None and row["import_run_id"] is None and row["pipeline_run_id"] is None
    price = {k: row[k] for k in ("listing_id", "retailer", "item_id", "title", "listing_url", "sku", "product_name")}
    price.update({k: row[k] for k in ("ds", "price", "list_price", "currency", "in_stock", "promo", "observed_at")})
    page = None
    if row["page_sha256"]:
        archive = archive or RawArchive(Path(data_dir) / "raw" if data_dir else config.raw_dir())
        page = _page(archive, row["page_sha256"], row["observed_at"])
    method = row["extraction_method"]
    out = {
        "price_id": row["price_id"],
        "price": price,
        "source": "import" if row["import_run_id"] is not None else "scrape" if row["scrape_run_id"] else None,
        "scrape_run": _scrape_run(row, old),
        "page": page,
        "extraction": {"method": method, "layer": layer(method)} if method else None,
        "import_run": _import_run(row, data_dir),
        "lineage_recorded": not old,
    }
    return jsonable(out)


# --- text ------------------------------------------------------------------------------------------------------


def _price_lines(p: dict) -> list[str]:
    item = f"{p['retailer']} {p['item_id']}" + (f" {p['title']!r}" if p["title"] else "")
    product = f"our sku {p['sku']} ({p['product_name']})" if p["sku"] else "not matched to our catalogue"
    amount = "no price shown" if p["price"] is None else f"{p['price']:.2f} {p['currency']}"
    if p["list_price"] is not None:
        amount += f" (list {p['list_price']:.2f})"
    stock = {True: "in stock", False: "out of stock", None: "stock unknown"}[p["in_stock"]]
    promo = {True: ", promo", False: "", None: ", promo unknown"}[p["promo"]]
    return [
        f"  listing {p['listing_id']}: {item}; {product}",
        f"  day {p['ds']}: {amount}, {stock}{promo}; observed at {p['observed_at']}",
        *([f"  page {p['listing_url']}"] if p["listing_url"] else []),
    ]


def _run_lines(run: dict | None, unknown: str) -> list[str]:
    if run is None:
        return [f"  run: {unknown}"]
    if run.get("missing"):
        return [f"  scrape run {run['scrape_run_id']}: no longer in scrape_run"]
    pipeline = "none"
    if run["pipeline_run_id"] is not None:
        pipeline = f"{run['pipeline_run_id']} ({run['pipeline_task']}, {run['pipeline_status']})"
    return [
        f"  scrape run {run['scrape_run_id']}: started {run['started_at']}, finished {run['finished_at'] or '-'}, "
        f"code version {run['code_version'] or 'not recorded'}",
        f"  pipeline run: {pipeline}; run id {run['run_key']}",
    ]


def _page_lines(page: dict | None, unknown: str) -> list[str]:
    if page is None:
        return [f"  raw page: {unknown}"]
    lines = [f"  raw page: sha256 {page['sha256']}"]
    if page.get("error"):
        return [*lines, f"    archive {page['archive']}: {page['error']}"]
    if page["held"]:
        lines.append(f"    archived: {page['where']} (content hash verified)")
    else:
        lines.append(f"    not in the archive at {page['archive']}")
    fetch, body = page.get("fetch"), page.get("body_fetch")
    for what, r in (("fetched", fetch), ("its body fetched", body if body != fetch else None)):
        if r is not None:
            moved = f" -> {r['final_url']}" if r.get("final_url") else ""
            note = " (not modified: the archived body)" if r["status"] == 304 else ""
            lines.append(f"    {what} {r['url']}{moved}: HTTP {r['status']}{note} at {r['fetched_at']}")
    if fetch is None and body is None:
        lines.append(f"    no fetch of it in the archive index (the {SEARCH_DAYS} days nearest the observation)")
    return lines


def _import_lines(run: dict) -> list[str]:
    if run.get("missing"):
        return [f"  import run {run['import_run_id']}: no longer in import_run"]
    copy = run["archived_copy"] or "not found in this data dir"
    return [
        f"  import run {run['import_run_id']} ({run['kind']}, {run['status']}): {run['file']}",
        f"    file sha256 {run['file_sha256']}; archived copy: {copy}",
        f"    imported by {run['imported_by']} at {run['started_at']} (finished {run['finished_at'] or '-'}), "
        f"code version {run['code_version'] or 'not recorded'}",
    ]


def render(out: dict) -> str:
    """The lineage of `trace` as lines for a person."""
    unknown = "not recorded" if out["lineage_recorded"] else NOT_RECORDED
    lines = [f"price {out['price_id']}", *_price_lines(out["price"]), "where it came from:"]
    ext = out["extraction"]
    method = f"{ext['method']} ({ext['layer'] or 'unknown layer'})" if ext else unknown
    if out["import_run"] is not None:
        lines += [*_import_lines(out["import_run"]), f"  extraction method: {method}"]
        return "\n".join(lines)
    lines += _run_lines(out["scrape_run"], unknown)
    lines += _page_lines(out["page"], unknown)
    lines.append(f"  extraction method: {method}")
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------------------------


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print where a stored price came from."""
    migrate.upgrade()
    archive = RawArchive(args.archive) if args.archive else None
    out = trace(db_engine.get_engine(), args.price_id, archive=archive)
    print(json.dumps(out, indent=1) if args.json else render(out), flush=True)
    return 0


def add_parsers(sub: Any) -> None:
    """Add `lineage PRICE_ID [--json] [--archive DIR]` to a subparsers object."""
    p = sub.add_parser("lineage", help="where a stored price came from: run, raw page, extraction method or import")
    p.add_argument("price_id", metavar="PRICE_ID", help=f"<listing_id>-<YYYYMMDD>, e.g. {lineage.EXAMPLE_ID}")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--archive", default=None, help="the raw archive's folder (default: data/raw or the object store)")
    p.set_defaults(func=cmd_lineage)
