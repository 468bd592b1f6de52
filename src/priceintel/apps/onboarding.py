"""The onboarding app (notebooks/apps/onboarding.ipynb): a retailer's team gets its own data in.

Each part is a plain function the widgets call, testable without a browser:

* `run_import`: an uploaded catalogue / sales / watch-list file (its original name and bytes) written to a
  temporary folder under that name and imported with `priceintel.ingest`; a dict with the status, counts,
  warnings, row errors and the rejects CSV. A `PriceIntelError` becomes a one-line message.
* `preview_url`: one product page fetched and extracted exactly as a watch fetch is (`scrape.page.fetch_page`
  with the shop of shops.yaml): what would be stored and how each field was found; `add_watch` then watches it.
* `watch_health`: the watch list with each watch's latest fetch (last fetched, outcome, price).

`onboarding_app()` is the page: upload, preview (+ add to the watch list), watch health.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from priceintel import PriceIntelError, config
from priceintel.apps import session
from priceintel.apps.widgets import APP_CSS, download_link, frame_html, nav_html, summary_html
from priceintel.ingest import ImportResult, IngestError, add_watch, import_catalog, import_sales, import_watches
from priceintel.ingest.fields import clean_url
from priceintel.ingest.watch import list_watches
from priceintel.scrape.outbound import OutboundPolicy
from priceintel.scrape.page import fetch_page
from priceintel.scrape.shops import Shop, default_shops_path, load_shops, shop_for

__all__ = ["KINDS", "HEALTH_COLUMNS", "OnboardingApp", "onboarding_app", "preview_url", "run_import", "watch_health"]
__all__ += ["health_html", "import_html", "preview_html", "safe_filename", "status_counts"]

#: upload kinds: value -> label
KINDS = {"catalog": "Catalogue", "sales": "Sales", "watch": "Watch list"}
#: file types the ingest readers accept (the file chooser's filter)
ACCEPT = ".csv,.tsv,.txt,.xlsx,.xlsm,.parquet,.pq,.xml,.rss,.atom"
#: (label, encoding) of a text file; "" = UTF-8 / UTF-16 by its BOM
ENCODINGS = [("auto (UTF-8 / UTF-16)", ""), ("Windows-1252", "cp1252"), ("Latin-1", "latin-1")]
#: statuses of a watch (the watch table's CHECK constraint)
WATCH_STATUSES = ("new", "ok", "failing", "blocked", "moved", "gone")
#: offer fields of a preview, in the order shown
PREVIEW_FIELDS = ("title", "price", "list_price", "currency", "availability", "gtin", "mpn", "item_id", "brand")
#: columns of `watch_health`
HEALTH_COLUMNS = (
    "watch_id retailer url sku status status_reason last_fetched last_outcome last_price last_currency".split()
)
#: row errors shown in the page (all of them are in the rejects CSV)
MAX_ERROR_ROWS = 200

ONBOARDING_CSS = """<style>
.pi-onboarding .pi-section { margin: 6px 0 18px; }
.pi-onboarding .pi-help { color: #3e4c59; margin: 0 0 6px; line-height: 1.45; }
.pi-onboarding .pi-msg-ok { color: #1e6b34; } .pi-onboarding .pi-msg-warn { color: #8a5a00; }
.pi-onboarding .pi-summary-line { margin: 6px 0; overflow-wrap: anywhere; }
.pi-onboarding .status-success, .pi-onboarding .outcome-ok { color: #1e6b34; font-weight: 600; }
.pi-onboarding .status-partial, .pi-onboarding .outcome-no_price, .pi-onboarding .outcome-redirected {
  color: #8a5a00; font-weight: 600; }
.pi-onboarding .status-failed, .pi-onboarding .outcome-not_found, .pi-onboarding .outcome-blocked,
.pi-onboarding .outcome-error { color: #9b1c1c; font-weight: 600; }
.pi-onboarding ul.pi-import-warnings { margin: 4px 0; padding-left: 20px; overflow-wrap: anywhere; }
.pi-onboarding .pi-details { color: #616e7c; font-size: 12px; overflow-wrap: anywhere; margin: 4px 0; }
.pi-onboarding .pi-url-box input { min-width: 0; }
.pi-onboarding table.pi-preview-fields td { white-space: normal; overflow-wrap: anywhere; }
@media (max-width: 600px) { .pi-onboarding .pi-filters input[type="checkbox"] { width: auto !important; } }
</style>"""


# --- import ----------------------------------------------------------------------------------------


def safe_filename(name: str) -> str:
    """The uploaded file's own name without any folder part or control characters (IngestError when empty)."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    if base in ("", ".", ".."):
        raise IngestError("the upload has no file name")
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 190 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else base[:200]
    return base


def known_retailers() -> set[str] | None:
    """Retailers of shops.yaml (None when there is no shops file: no unknown-retailer warning then)."""
    return set(load_shops()) if default_shops_path().is_file() else None


def _one_line(message: str, tmp: str | None = None) -> str:
    """A message on one line, without the folder the upload was written to."""
    if tmp:
        for folder in {tmp, str(Path(tmp).resolve())}:
            message = message.replace(folder + "/", "").replace(folder, "")
    message = message.replace("give its encoding (e.g. --encoding cp1252)", "pick its encoding (e.g. Windows-1252)")
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def _failure(message: str) -> dict[str, Any]:
    return {"ok": False, "message": message}


def _import(engine: Engine, kind: str, path: Path, strict: bool, options: dict) -> ImportResult:
    """The ingest function of `kind` on `path` (recorded as made by this kernel's user)."""
    enc, root, by = options.get("encoding") or None, options.get("archive_root"), session.label()
    if kind == "catalog":
        currency = (options.get("currency") or "").strip().upper() or None
        return import_catalog(engine, path, strict=strict, encoding=enc, currency=currency, archive_root=root, by=by)
    if kind == "sales":
        return import_sales(engine, path, strict=strict, encoding=enc, archive_root=root, by=by)
    return import_watches(
        engine, path, strict=strict, encoding=enc, known_retailers=known_retailers(), archive_root=root, by=by
    )


def _errors_frame(result: ImportResult) -> pd.DataFrame:
    """The rejected rows' issues: row, column, value (as written), reason."""
    rows = [
        ("" if i.row is None else i.row, i.column, "" if i.value is None else str(i.value), i.reason)
        for i in result.rejects
    ]
    return pd.DataFrame(rows, columns=["row", "column", "value", "reason"])


def _result_dict(result: ImportResult) -> dict[str, Any]:
    """What the page shows of an ImportResult (read while the upload's folder still exists)."""
    name, c = result.path.name, result.counts
    summary = (
        f"{name}: {c.get('total', 0)} row(s): {c.get('inserted', 0)} inserted, {c.get('updated', 0)} updated, "
        f"{c.get('unchanged', 0)} unchanged, {c.get('rejected', 0)} rejected "
        f"({result.status}; {result.kind} import run #{result.import_run_id})"
    )
    lines = [i.line(name) for i in result.warnings]
    rejects = result.rejects_path
    return {
        "ok": True,
        "kind": result.kind,
        "filename": name,
        "status": result.status,
        "counts": {k: int(c.get(k, 0)) for k in ("total", "inserted", "updated", "unchanged", "rejected")},
        "import_run_id": result.import_run_id,
        "summary": summary,
        "warnings": lines,
        "errors": _errors_frame(result),
        "rejects_csv": rejects.read_bytes() if rejects is not None and rejects.is_file() else None,
        "rejects_name": rejects.name if rejects is not None else None,
        "archive_path": str(result.archive_path) if result.archive_path else None,
    }


def run_import(
    engine: Engine,
    kind: str,
    filename: str,
    content: bytes,
    strict: bool = False,
    *,
    encoding: str | None = None,
    currency: str | None = None,
    archive_root: str | Path | None = None,
) -> dict[str, Any]:
    """Import an uploaded file of `kind` (catalog | sales | watch): kept under its own name in
    `<archive_root or data dir>/uploads/<kind>/<UTC time>/` (the import_run row points there, the rejects file
    lands beside it and the archived copy is named after it), then imported.

    Returns {"ok": True, status, counts, summary, warnings (lines), errors (row, column, value, reason frame),
    rejects_csv (bytes or None), rejects_name, ...} or {"ok": False, "message": one line} for a file that
    cannot be imported (unreadable, not UTF-8, wrong columns, refused by `strict`).
    """
    if kind not in KINDS:
        return _failure(f"unknown kind {kind!r}: {', '.join(KINDS)}")
    try:
        name = safe_filename(filename)
    except PriceIntelError as err:
        return _failure(_one_line(str(err)))
    if not content:
        return _failure(f"{name}: the file is empty")
    refused = session.may_change(engine)
    if refused:
        return _failure(refused)
    options = {"encoding": encoding, "currency": currency, "archive_root": archive_root}
    folder = Path(archive_root or config.data_dir()) / "uploads" / kind / _upload_stamp()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(bytes(content))
    try:
        return _result_dict(_import(engine, kind, path, strict, options))
    except PriceIntelError as err:
        return _failure(_one_line(str(err), str(folder)))


def _upload_stamp() -> str:
    """A folder name per upload: UTC time to the microsecond (uploads of one name never overwrite each other)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def import_html(res: dict[str, Any]) -> str:
    """The import's result: summary line, count cards, warnings, row errors and the rejects download (escaped)."""
    if not res.get("ok"):
        return f'<div class="pi-msg-err pi-import-message">{html.escape(str(res.get("message")))}</div>'
    status = html.escape(res["status"])
    parts = [
        f'<div class="pi-summary-line"><span class="status-{status}">{status}</span> · '
        f"{html.escape(res['summary'])}</div>",
        summary_html({k: v for k, v in res["counts"].items() if k != "total"}),
    ]
    if res["warnings"]:
        shown = res["warnings"][:MAX_ERROR_ROWS]
        items = "".join(f"<li>{html.escape(w)}</li>" for w in shown)
        more = len(res["warnings"]) - len(shown)
        items += f"<li>… and {more} more</li>" if more > 0 else ""
        parts.append(f'<h3>Warnings (rows loaded)</h3><ul class="pi-import-warnings">{items}</ul>')
    errors: pd.DataFrame = res["errors"]
    if len(errors):
        note = f" (first {MAX_ERROR_ROWS} of {len(errors)})" if len(errors) > MAX_ERROR_ROWS else ""
        parts.append(
            f"<h3>Rejected rows{note}</h3>" + frame_html(errors.head(MAX_ERROR_ROWS), "pi-table pi-import-errors")
        )
    if res.get("rejects_csv"):
        link = download_link(res["rejects_csv"], res["rejects_name"] or "rejects.csv", "text/csv")
        parts.append(f'<div class="pi-downloads">{link}</div>')
    return '<div class="pi-import-result">' + "".join(parts) + "</div>"


# --- preview ---------------------------------------------------------------------------------------


def _shops() -> dict[str, Shop]:
    """The shops of shops.yaml ({} when there is no shops file)."""
    return load_shops() if default_shops_path().is_file() else {}


def preview_url(
    url: str,
    shops: dict[str, Shop] | None = None,
    fetcher: Any = None,
    *,
    render: bool = False,
    archive_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fetch one product page as a watch fetch would (the shop of shops.yaml, its adapter and politeness) and
    say what would be stored: {"ok": True, url, shop, warning (unlisted shop), record (PageRecord dict),
    fields (field, value, method frame)}, or {"ok": False, "message"} for a malformed URL or a bad shops file.
    Network and HTTP failures are the record's outcome (not_found, blocked, error, …), never an exception."""
    text = (url or "").strip()
    if not text:
        return _failure("type the URL of a product page (https://…)")
    clean = clean_url(text)
    if clean is None:
        return _failure(f"malformed URL {text!r}: need an absolute http(s) URL with a host")
    try:
        shop, warning = shop_for(_shops() if shops is None else shops, clean)
        # a URL typed into a served app never reaches the server's own loopback or private network: only a shop
        # configured in shops.yaml may live there
        allow = None if shop.listed else OutboundPolicy(scoped=False)
        record = fetch_page(
            clean, shop, fetcher=fetcher, render=True if render else None, archive_dir=archive_dir, allow=allow
        )
    except PriceIntelError as err:
        return _failure(_one_line(str(err)))
    rec = record.to_dict()
    fields = pd.DataFrame(
        [(f, rec.get(f), rec["methods"].get(f)) for f in PREVIEW_FIELDS], columns=["field", "value", "method"]
    )
    return {"ok": True, "url": clean, "shop": shop.name, "warning": warning, "record": rec, "fields": fields}


def _when(ts: Any) -> str | None:
    """A fetch time as '2026-12-04 18:48:20 UTC' (None for none)."""
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    return (t.tz_convert("UTC") if t.tzinfo else t).strftime("%Y-%m-%d %H:%M:%S UTC")


def preview_html(res: dict[str, Any]) -> str:
    """The preview: shop warning, outcome and message, the fields with their extraction methods, fetch details."""
    if not res.get("ok"):
        return f'<div class="pi-msg-err pi-preview-message">{html.escape(str(res.get("message")))}</div>'
    rec = res["record"]
    outcome = html.escape(rec["outcome"])
    parts = []
    if res.get("warning"):
        parts.append(f'<div class="pi-msg-warn pi-preview-warning">{html.escape(res["warning"])}</div>')
    parts.append(
        f'<div class="pi-summary-line pi-preview-outcome">outcome <span class="outcome-{outcome}">{outcome}</span>'
        f" · {html.escape(rec['message'] or '')}</div>"
    )
    fields = res["fields"].astype(object).where(res["fields"].notna(), "—")
    parts.append(frame_html(fields, "pi-table pi-preview-fields"))
    details = [
        ("shop", res["shop"]),
        ("HTTP", rec.get("http_status")),
        ("final URL", rec.get("final_url")),
        ("fetched", _when(rec.get("fetched_at"))),
        ("rendered", "yes" if rec.get("rendered") else "no"),
        ("page sha256", (rec.get("page_sha256") or "")[:12] or None),
    ]
    text = " · ".join(f"{k} {html.escape(str(v))}" for k, v in details if v is not None)
    parts.append(f'<div class="pi-details">{text}</div>')
    return '<div class="pi-preview">' + "".join(parts) + "</div>"


# --- watch health ----------------------------------------------------------------------------------


def _latest_fetches(engine: Engine, ids: list[int]) -> pd.DataFrame:
    """The latest watch_fetch of each watch in `ids`: watch_id, last_fetched, last_outcome, last_price, …"""
    cols = ["watch_id", "last_fetched", "last_outcome", "last_price", "last_currency"]
    if not ids:
        return pd.DataFrame(columns=cols)
    sql = sa.text(
        """SELECT DISTINCT ON (watch_id) watch_id, fetched_at, outcome, price, currency FROM watch_fetch
           WHERE watch_id = ANY(:ids) ORDER BY watch_id, fetched_at DESC"""
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"ids": [int(i) for i in ids]}).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    df["last_price"] = pd.to_numeric(df["last_price"], errors="coerce").astype(float)
    df["last_currency"] = df["last_currency"].map(lambda c: c.strip() if isinstance(c, str) else c)
    return df


def watch_health(engine: Engine, retailer: str | None = None, status: str | None = None) -> pd.DataFrame:
    """The active watch list (HEALTH_COLUMNS), optionally of one retailer and one status, with each watch's
    latest fetch (last_fetched, last_outcome, last_price, last_currency; empty before its first fetch)."""
    watches = list_watches(engine, retailer=retailer or None)
    if status:
        watches = watches[watches["status"] == status]
    latest = _latest_fetches(engine, watches["watch_id"].tolist())
    df = watches.merge(latest, on="watch_id", how="left") if len(watches) else watches.reindex(columns=HEALTH_COLUMNS)
    for col in ("last_fetched", "status_since"):
        if col in df and len(df):
            df[col] = pd.to_datetime(df[col], utc=True).dt.tz_convert("UTC").dt.tz_localize(None)
    return df[HEALTH_COLUMNS].reset_index(drop=True)


def status_counts(df: pd.DataFrame) -> dict[str, int]:
    """Number of watches per status (in WATCH_STATUSES order, statuses present only) and their total."""
    counts = df["status"].value_counts()
    out = {s: int(counts[s]) for s in WATCH_STATUSES if s in counts}
    return {"watches": len(df), **out}


def health_html(df: pd.DataFrame, counts: dict[str, int]) -> str:
    """Count cards per status, then the watch table (escaped)."""
    return summary_html(counts) + frame_html(
        df.rename(columns={"last_currency": "currency"}), "pi-table pi-health-table"
    )


# --- the page --------------------------------------------------------------------------------------


class OnboardingApp:
    """The onboarding page: upload + import, preview one URL + add it to the watch list, watch health.

    `shops`, `fetcher` and `archive_dir` go to `preview_url`; `archive_root` to the imports (tests)."""

    def __init__(self, engine: Engine, shops: dict[str, Shop] | None = None, fetcher: Any = None, **dirs: Any):
        import ipywidgets as w

        self.engine, self.shops, self.fetcher = engine, shops, fetcher
        self.archive_dir, self.archive_root = dirs.get("archive_dir"), dirs.get("archive_root")
        self.last_preview: dict[str, Any] | None = None
        self._hold = False
        self._shown = pd.DataFrame(columns=HEALTH_COLUMNS)
        self._upload_widgets(w)
        self._preview_widgets(w)
        self._health_widgets(w)
        self._connect()
        self.widget = self._layout(w)
        self.refresh_health()

    def _upload_widgets(self, w) -> None:
        """Kind, file chooser, strict, encoding, currency (catalogue), Import, the chosen file and the result."""
        lab = {"description_width": "initial"}
        auto = w.Layout(width="auto")
        options = [(label, kind) for kind, label in KINDS.items()]
        self.kind = w.Dropdown(options=options, value="catalog", description="Kind", style=lab, layout=auto)
        self.upload = w.FileUpload(accept=ACCEPT, multiple=False, description="Choose file", layout=auto)
        self.strict = w.Checkbox(description="strict (refuse the file if any row is rejected)", indent=False)
        self.strict.layout = auto
        self.encoding = w.Dropdown(options=ENCODINGS, value="", description="Encoding", style=lab, layout=auto)
        self.currency = w.Text(placeholder="e.g. USD", description="Default currency", style=lab, layout=auto)
        self.import_btn = w.Button(description="Import", button_style="primary", icon="upload", disabled=True)
        self.chosen = w.HTML('<span class="pi-empty">no file chosen</span>').add_class("pi-upload-chosen")
        self.result = w.HTML().add_class("pi-import-box")

    def _preview_widgets(self, w) -> None:
        """URL, render JavaScript, Preview, the preview, then sku + Add to watch list and its message."""
        lab = {"description_width": "initial"}
        self.url = w.Text(
            placeholder="https://www.example.com/product/123",
            description="Product page",
            style=lab,
            layout=w.Layout(width="auto", flex="1 1 360px", min_width="0"),
        ).add_class("pi-preview-url")
        self.render = w.Checkbox(description="render JavaScript", indent=False, layout=w.Layout(width="auto"))
        self.preview_btn = w.Button(description="Preview", icon="search", layout=w.Layout(width="auto"))
        self.preview_out = w.HTML().add_class("pi-preview-box")
        self.sku = w.Text(placeholder="optional: our SKU", description="SKU", style=lab, layout=w.Layout(width="auto"))
        self.sku.add_class("pi-add-sku")
        self.add_btn = w.Button(description="Add to watch list", icon="plus", disabled=True)
        self.add_btn.layout = w.Layout(width="auto")
        self.add_msg = w.HTML().add_class("pi-add-msg")

    def _health_widgets(self, w) -> None:
        """Retailer and status filters, Refresh, the counts and the watch table."""
        lab = {"description_width": "initial"}
        auto = w.Layout(width="auto")
        self.h_retailer = w.Dropdown(options=[("all", "")], value="", description="Retailer", style=lab, layout=auto)
        statuses = [("all", "")] + [(s, s) for s in WATCH_STATUSES]
        self.h_status = w.Dropdown(options=statuses, value="", description="Status", style=lab, layout=auto)
        self.h_retailer.add_class("pi-health-retailer")
        self.h_status.add_class("pi-health-status")
        self.h_refresh = w.Button(description="Refresh", icon="refresh", layout=auto)
        self.h_table = w.HTML().add_class("pi-health")

    def _connect(self) -> None:
        """Every control's handler."""
        self.upload.observe(self.on_file, names="value")
        self.kind.observe(self.on_kind, names="value")
        self.import_btn.on_click(lambda _: self.do_import())
        self.preview_btn.on_click(lambda _: self.do_preview())
        self.url.observe(self.on_url, names="value")
        self.add_btn.on_click(lambda _: self.do_add())
        self.h_retailer.observe(lambda _: self.refresh_health(), names="value")
        self.h_status.observe(lambda _: self.refresh_health(), names="value")
        self.h_refresh.on_click(lambda _: self.refresh_health())

    def _layout(self, w):
        """Navigation, then the three sections."""

        def row(*children):
            return w.Box(list(children)).add_class("pi-filters")

        def help_(text: str):
            return w.HTML(f'<p class="pi-help">{text}</p>')

        upload = [
            w.HTML("<h2>Import our data</h2>"),
            help_(
                "A catalogue, daily sales or a watch list as CSV / TSV, Excel (.xlsx), Parquet or a Merchant "
                "Center feed (XML / TSV). Valid rows are loaded; rejected rows are listed below and offered as a "
                "CSV to fix and upload again."
            ),
            row(self.kind, self.upload, self.encoding, self.currency),
            row(self.strict, self.import_btn),
            self.chosen,
            self.result,
        ]
        preview = [
            w.HTML("<h2>Preview a competitor page</h2>"),
            help_("Fetch one product page as the watch run would and see exactly what would be stored."),
            row(self.url, self.render, self.preview_btn).add_class("pi-url-box"),
            self.preview_out,
            row(self.sku, self.add_btn),
            self.add_msg,
        ]
        health = [w.HTML("<h2>Watch health</h2>"), row(self.h_retailer, self.h_status, self.h_refresh), self.h_table]
        sections = [w.VBox(part).add_class("pi-section") for part in (upload, preview, health)]
        sections[0].add_class("pi-upload")
        sections[1].add_class("pi-preview-section")
        sections[2].add_class("pi-health-section")
        top = w.HTML(APP_CSS + ONBOARDING_CSS + nav_html("Onboarding"))
        return w.VBox([top, *sections], layout=w.Layout(width="100%")).add_class("pi-app").add_class("pi-onboarding")

    # upload ------------------------------------------------------------------------------------

    def _file(self) -> tuple[str, bytes] | None:
        """(name, bytes) of the chosen file, None when none is chosen."""
        files = self.upload.value
        if not files:
            return None
        first = files[0]
        return str(first["name"]), bytes(first["content"])

    def on_file(self, _=None) -> None:
        """A file was chosen: name it, enable Import."""
        chosen = self._file()
        self.import_btn.disabled = chosen is None
        if chosen is None:
            self.chosen.value = '<span class="pi-empty">no file chosen</span>'
            return
        name, data = chosen
        size = f"{len(data) / 1024:,.0f} kB" if len(data) >= 1024 else f"{len(data)} B"
        self.chosen.value = f"chosen: <b>{html.escape(name)}</b> ({size}) — pick its kind, then Import"

    def on_kind(self, change: dict) -> None:
        """The default currency only applies to a catalogue."""
        self.currency.layout.display = "" if change["new"] == "catalog" else "none"

    def do_import(self) -> dict[str, Any] | None:
        """Import the chosen file; show the result; refresh the watch health."""
        chosen = self._file()
        if chosen is None:
            self.result.value = '<div class="pi-msg-err pi-import-message">choose a file first</div>'
            return None
        self.import_btn.disabled = True
        self.result.value = '<div class="pi-empty">importing…</div>'
        try:
            res = run_import(
                self.engine,
                self.kind.value,
                *chosen,
                strict=self.strict.value,
                encoding=self.encoding.value or None,
                currency=self.currency.value,
                archive_root=self.archive_root,
            )
        except Exception as exc:  # noqa: BLE001 - the page says what broke, never a traceback
            res = _failure(f"import failed: {type(exc).__name__}: {_one_line(str(exc))}")
        finally:
            self.import_btn.disabled = False
        self.result.value = import_html(res)
        self.refresh_health()
        return res

    # preview -----------------------------------------------------------------------------------

    def on_url(self, _=None) -> None:
        """Another URL: the last preview no longer applies."""
        if self.last_preview is not None and self.url.value.strip() != self.last_preview.get("typed"):
            self.add_btn.disabled = True

    def do_preview(self) -> dict[str, Any]:
        """Preview the typed URL; Add to watch list follows a successful fetch."""
        self.preview_btn.disabled, self.add_btn.disabled = True, True
        self.add_msg.value = ""
        self.preview_out.value = '<div class="pi-empty">fetching…</div>'
        typed = self.url.value.strip()
        try:
            res = preview_url(typed, self.shops, self.fetcher, render=self.render.value, archive_dir=self.archive_dir)
        except Exception as exc:  # noqa: BLE001 - the page says what broke, never a traceback
            res = _failure(f"preview failed: {type(exc).__name__}: {_one_line(str(exc))}")
        finally:
            self.preview_btn.disabled = False
        self.preview_out.value = preview_html(res)
        self.last_preview = {**res, "typed": typed}
        self.add_btn.disabled = not res.get("ok")
        return res

    def do_add(self) -> dict[str, Any] | None:
        """Watch the previewed page (its shop as retailer, the optional sku); refresh the watch health."""
        res = self.last_preview
        if not res or not res.get("ok"):
            return None
        sku = self.sku.value.strip() or None
        try:
            session.require_change(self.engine)
            known = known_retailers()
            added = add_watch(
                self.engine, res["url"], retailer=res["shop"], sku=sku, known_retailers=known, by=session.label()
            )
        except PriceIntelError as err:
            self.add_msg.value = f'<div class="pi-msg-err">{html.escape(_one_line(str(err)))}</div>'
            return None
        line = f"watch {added['watch_id']} {added['action']}: {added['url']} (retailer {added['retailer']}"
        line += f", sku {added['sku']})" if added["sku"] else ")"
        warn = "".join(f'<div class="pi-msg-warn">{html.escape(x)}</div>' for x in added["warnings"])
        self.add_msg.value = f'<div class="pi-msg-ok">{html.escape(line)}</div>{warn}'
        self.refresh_health()
        return added

    # health ------------------------------------------------------------------------------------

    def refresh_health(self) -> pd.DataFrame:
        """Retailer choices, status counts and the watch table under the current filters."""
        if self._hold:
            return self._shown
        retailers = sorted(set(list_watches(self.engine)["retailer"]))
        options = [("all", "")] + [(r, r) for r in retailers]
        if list(self.h_retailer.options) != options:
            keep = self.h_retailer.value if self.h_retailer.value in retailers else ""
            self._hold = True
            try:
                self.h_retailer.options = options
                self.h_retailer.value = keep
            finally:
                self._hold = False
        retailer = self.h_retailer.value or None
        whole = watch_health(self.engine, retailer)
        shown = whole[whole["status"] == self.h_status.value] if self.h_status.value else whole
        self._shown = shown.reset_index(drop=True)
        self.h_table.value = health_html(self._shown, status_counts(whole))
        return self._shown


def onboarding_app(engine: Engine | None = None, **options: Any):
    """The onboarding page widget (notebooks/apps/onboarding.ipynb); `options` go to OnboardingApp."""
    from priceintel.db.engine import get_engine

    return OnboardingApp(engine or get_engine(), **options).widget
