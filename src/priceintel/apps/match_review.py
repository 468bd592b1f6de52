"""The match review app (notebooks/apps/match_review.ipynb): queued pairs side by side, confirm or reject.

`ReviewSession` holds the queue and writes each verdict with `labels.record_label`; `match_review()`
is the widget panel (one callback: a button click → record the label → show the next pair).
"""

from __future__ import annotations

import html

import pandas as pd

from priceintel import PriceIntelError
from priceintel.apps import session as app_session
from priceintel.match import labels

REVIEW_CSS = """<style>
table.match-pair { border-collapse: collapse; width: 100%; max-width: 900px; font-size: 14px; table-layout: fixed; }
table.match-pair th, table.match-pair td { padding: 6px 8px; border-bottom: 1px solid #ddd; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
table.match-pair th:first-child { width: 18%; color: #555; }
.review-status { font-size: 14px; color: #333; }
</style>"""

#: rows of the side-by-side table: (label, listing column, product column)
_ROWS = [
    ("title / name", "title", "name"),
    ("brand", "listing_brand", "brand"),
    ("size", "listing_size", "size"),
    ("GTIN", "listing_gtin", "gtin"),
    ("MPN", "listing_mpn", "mpn"),
    ("id", "item_id", "sku"),
]


def _cell(v: object) -> str:
    """Escaped cell text ('—' for missing)."""
    if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
        return "—"
    return html.escape(str(v))


def pair_html(row: pd.Series) -> str:
    """Side-by-side HTML of one queued pair (listing left, our product right), all text escaped."""
    from priceintel.match.normalize import extract_size

    size = extract_size(row.get("title"))
    row = row.copy()
    row["listing_size"] = f"{size[0]:.4g} {size[1]} (read from the title)" if size else None
    psize = extract_size(row.get("size"))
    if psize and psize[1] != "ct":
        row["size"] = f"{row.get('size')} = {psize[0]:.4g} {psize[1]}"
    head = f"<tr><th></th><th>{_cell(row['retailer'])} listing</th><th>our product</th></tr>"
    body = "".join(
        f"<tr><th>{label}</th><td>{_cell(row.get(lc)) if lc else '—'}</td><td>{_cell(row.get(pc))}</td></tr>"
        for label, lc, pc in _ROWS
    )
    score = row.get("score")
    foot = (
        f"<tr><th>score</th><td colspan='2'>{float(score):.3f} ({_cell(row.get('method'))})</td></tr>"
        if score is not None and not pd.isna(score)
        else ""
    )
    return f"<table class='match-pair'>{head}{body}{foot}</table>"


class ReviewSession:
    """The review queue of one app session; `decide` stores a verdict and moves on."""

    def __init__(self, engine, limit: int = 200, retailer: str | None = None):
        self.engine = engine
        self.limit = limit
        self.retailer = retailer
        self.done = 0
        self.reload()

    def reload(self) -> None:
        """Read the queue again from the database."""
        self.queue = labels.review_queue(self.engine, self.limit, self.retailer)
        self.pos = 0

    @property
    def current(self) -> pd.Series | None:
        """The pair on screen (None when the queue is empty)."""
        return self.queue.iloc[self.pos] if self.pos < len(self.queue) else None

    def decide(self, label: bool | None) -> dict | None:
        """True confirm / False reject (stored) / None skip; then advance."""
        row = self.current
        if row is None:
            return None
        res = None
        if label is not None:
            app_session.require_change(self.engine)
            res = labels.record_label(
                self.engine, row["retailer"], row["item_id"], row["sku"], bool(label), by=app_session.label()
            )
            self.done += 1
        self.pos += 1
        return res

    def status(self) -> str:
        """One line: where we are in the queue."""
        left = max(len(self.queue) - self.pos, 0)
        if self.current is None:
            return f"Review queue is empty ({self.done} decided in this session)."
        return f"Pair {self.pos + 1} of {len(self.queue)} · {left} left · {self.done} decided in this session"


def match_review(engine=None, limit: int = 200):
    """Widget panel: the current queued pair, Confirm / Reject / Skip buttons and a retailer filter."""
    import ipywidgets as w
    from IPython.display import HTML, display

    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    session = ReviewSession(engine, limit)
    retailers = sorted(set(session.queue["retailer"])) if len(session.queue) else []
    pick = w.Dropdown(options=[("all retailers", "")] + [(r, r) for r in retailers], description="Retailer")
    status = w.HTML()
    pane = w.HTML()
    last = w.HTML()
    confirm = w.Button(description="Confirm", button_style="success", icon="check")
    reject = w.Button(description="Reject", button_style="danger", icon="times")
    skip = w.Button(description="Skip")

    def show() -> None:
        row = session.current
        pane.value = pair_html(row) if row is not None else "<p class='review-empty'>Nothing to review.</p>"
        status.value = f"<span class='review-status'>{html.escape(session.status())}</span>"
        for b in (confirm, reject, skip):
            b.disabled = row is None

    def on_click(label: bool | None):
        def handler(_):
            try:
                res = session.decide(label)
            except PriceIntelError as err:  # a viewer: the verdict is refused, the pair stays
                last.value = f"<span class='review-last pi-msg-err'>{html.escape(str(err))}</span>"
                return
            if res is not None:
                last.value = (
                    f"<span class='review-last'>{'confirmed' if res['label'] else 'rejected'}: "
                    f"{html.escape(res['retailer'])} {html.escape(res['item_id'])} → "
                    f"{html.escape(res['sku'])}</span>"
                )
            show()

        return handler

    def on_pick(change) -> None:
        session.retailer = change["new"] or None
        session.reload()
        show()

    confirm.on_click(on_click(True))
    reject.on_click(on_click(False))
    skip.on_click(on_click(None))
    pick.observe(on_pick, names="value")
    display(HTML(REVIEW_CSS))
    show()
    return w.VBox([pick, status, pane, w.HBox([confirm, reject, skip]), last])
