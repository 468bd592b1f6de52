"""The stakeholder apps' data layer: filters, keyset pages, charts, summaries, exports and refresh.

from priceintel.apps import views as dashboard
f = dashboard.Filters(start=date(2026, 7, 1), retailers=("amazon",))
p = dashboard.page(engine, "prices", f)            # first page; p.next_cursor → after= for the next
dashboard.to_excel(dashboard.export_frames(engine, "prices", f))
"""

from priceintel.apps.cache import CACHE, AppCache
from priceintel.apps.export import (
    MAX_EXPORT_ROWS,
    export_frames,
    report_html,
    to_csv,
    to_excel,
    to_pdf,
)
from priceintel.apps.filters import Filters
from priceintel.apps.queries import (
    MAX_LIMIT,
    Page,
    chart_frame,
    check_filters,
    count_rows,
    filter_options,
    iter_rows,
    load_key,
    page,
    refresh,
    summary,
)
from priceintel.apps.specs import SPECS, VIEWS
from priceintel.apps.svg import svg_chart
from priceintel.db.views import APP_VIEWS
from priceintel.pricing.store import save_elasticity, store_model_elasticity

__all__ = [
    "CACHE",
    "APP_VIEWS",
    "MAX_EXPORT_ROWS",
    "MAX_LIMIT",
    "SPECS",
    "VIEWS",
    "AppCache",
    "Filters",
    "Page",
    "chart_frame",
    "check_filters",
    "count_rows",
    "export_frames",
    "filter_options",
    "iter_rows",
    "load_key",
    "page",
    "refresh",
    "report_html",
    "save_elasticity",
    "store_model_elasticity",
    "summary",
    "svg_chart",
    "to_csv",
    "to_excel",
    "to_pdf",
]
