"""The elasticity app (notebooks/apps/elasticity.ipynb): per-product estimates with intervals,
the price-response curve, a what-if price and the recommended price with its reason.

A widget panel plus one callback (`ElasticityExplorer.update`) into `elasticity` and `pricing`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from priceintel.apps.widgets import PREVIEW_DONE
from priceintel.db import queries
from priceintel.pricing import elasticity
from priceintel.pricing import recommend as pricing
from priceintel.pricing.demand_model import DemandModel

APP_CSS = """<style>
table.elasticity-table { border-collapse: collapse; width: 100%; max-width: 900px; font-size: 13px; }
table.elasticity-table th, table.elasticity-table td { padding: 3px 6px; border-bottom: 1px solid #ddd; }
table.elasticity-table tr.selected { background: #fff3c4; font-weight: 600; }
.whatif, .recommendation { font-size: 14px; max-width: 900px; }
.recommendation p.reason { line-height: 1.4; }
</style>"""


def load_panel(engine) -> pd.DataFrame:
    """Our daily sales from the database with each competitor's matched price and product facts."""
    sales = pd.read_sql(
        """
        select p.sku, p.name, p.brand, p.category, p.unit_cost::float as unit_cost,
               p.map_price::float as map_price, d.date as ds, s.units, s.price::float as price, s.promo
        from fact_sales s
        join dim_product p using (product_id)
        join dim_date d using (date_key)
        order by 1, 7
    """,
        engine,
    )
    comp = queries.competitor_prices(engine)
    sales["ds"] = pd.to_datetime(sales["ds"])
    comp["ds"] = pd.to_datetime(comp["ds"])
    panel, _ = elasticity.with_competitor_prices(sales, comp)
    return panel


def fit_panel(panel: pd.DataFrame) -> DemandModel:
    """The app's demand model: log-log with the lowest competitor price, day of week, category pooling."""
    logc = ["comp_min"] if "comp_min" in panel and panel["comp_min"].notna().all() else []
    return elasticity.fit_demand(
        panel,
        entity="sku",
        price="price",
        quantity="units",
        period="ds",
        log_controls=logc,
        calendar=["dow"],
        category="category",
    )


def estimates_table(model: DemandModel, selected: str | None = None) -> str:
    """HTML table of every product's own and pooled elasticity with 95% intervals and notes."""
    est = model.estimates
    head = ["sku", "category", "elasticity (95% CI)", "pooled (95% CI)", "n", "note"]
    rows = []
    for r in est.itertuples(index=False):
        r = r._asdict()
        own = f"{r['elasticity']:.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]" if r["identified"] else "—"
        pooled = (
            f"{r['elasticity_pooled']:.2f} [{r['ci_lo_pooled']:.2f}, {r['ci_hi_pooled']:.2f}]"
            if np.isfinite(r.get("elasticity_pooled", np.nan))
            else "—"
        )
        note = "; ".join(x for x in (r.get("note", ""), r.get("pool_note", "")) if x)
        cls = ' class="selected"' if r["sku"] == selected else ""
        cells = [r["sku"], r.get("category", ""), own, pooled, r["n"], note]
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return (
        f'<table class="elasticity-table"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def product_state(panel: pd.DataFrame, sku: str) -> dict:
    """Current price, cost, MAP and latest competitor prices of one product."""
    g = panel[panel["sku"] == sku].sort_values("ds")
    last = g.iloc[-1]
    comps = {
        c[len("comp_") :]: float(last[c])
        for c in g.columns
        if c.startswith("comp_") and c != "comp_min" and pd.notna(last[c])
    }
    return dict(
        current_price=float(pricing.current_regular_price(g).loc[sku]),
        unit_cost=float(last["unit_cost"]),
        map_price=float(last["map_price"]) if pd.notna(last["map_price"]) else None,
        competitors=comps,
        name=f"{last.get('brand', '')} {last.get('name', '')}".strip(),
    )


def recommendation_for(
    model, panel, sku: str, objective: str = "profit", use_rule: bool = False, max_change: float = pricing.MAX_CHANGE
) -> pricing.Recommendation:
    """The recommended price for one product under `pricing.constraints_for` (cost, MAP, a max change, the
    competitor band; competitor prices as on our last sales day) and an optional rule."""
    st = product_state(panel, sku)
    c = pricing.constraints_for(
        st["unit_cost"], st["current_price"], st["map_price"], st["competitors"], max_change=max_change
    )
    rule = pricing.MatchLowest(undercut=0.0, floor_margin=0.10) if use_rule else None
    return pricing.recommend_for_model(model, sku, c, objective=objective, rule=rule)


def curve_inputs(model, panel, sku: str, rec: pricing.Recommendation) -> dict:
    """Elasticity (pooled when available), its se, the reference point and the unit cost of one product."""
    est = model.estimates.set_index("sku").loc[sku]
    pooled = np.isfinite(est.get("elasticity_pooled", np.nan))
    e = float(est["elasticity_pooled"] if pooled else est["elasticity"])
    se = float(est["se_pooled"] if pooled else est["se"])
    fit = model.fits[sku]
    ref = rec.current_price or fit.ref_price
    return dict(
        elasticity=e,
        se=se,
        ref_price=ref,
        ref_units=fit.ref_units * (ref / fit.ref_price) ** e,
        unit_cost=product_state(panel, sku)["unit_cost"],
        level_se=float(np.std(fit.residuals) / np.sqrt(max(fit.n, 1))),
    )


def curve_figure(
    rec: pricing.Recommendation, inputs: dict, whatif: float, title: str, objective: str, span: tuple[float, float]
):
    """Plotly figure: expected units and profit (or revenue) against price with 90% bands, the
    allowed band shaded, and the current, recommended and what-if prices marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    c = pricing.price_curve(np.linspace(span[0], span[1], 121), **inputs)
    fig = go.FigureWidget(make_subplots(specs=[[{"secondary_y": True}]]))
    fig._config = {"responsive": True, "displaylogo": False}  # fills its box on a phone too
    x = c["price"].round(2).tolist()
    fig.add_scatter(
        x=x + x[::-1],
        y=c["units_hi"].tolist() + c["units_lo"].tolist()[::-1],
        fill="toself",
        line={"width": 0},
        fillcolor="rgba(0,113,206,0.15)",
        name="units 90%",
        hoverinfo="skip",
    )
    fig.add_scatter(x=x, y=c["units"].tolist(), name="expected units", line={"color": "#0071ce"})
    ob = objective
    fig.add_scatter(
        x=x + x[::-1],
        y=c[f"{ob}_hi"].tolist() + c[f"{ob}_lo"].tolist()[::-1],
        fill="toself",
        line={"width": 0},
        fillcolor="rgba(204,0,0,0.12)",
        name=f"{ob} 90%",
        hoverinfo="skip",
        secondary_y=True,
    )
    fig.add_scatter(x=x, y=c[ob].tolist(), name=f"expected {ob}", line={"color": "#cc0000"}, secondary_y=True)
    fig.add_vrect(
        x0=rec.band[0],
        x1=max(rec.band[1], rec.band[0] + 0.01),
        fillcolor="#2a9d2a",
        opacity=0.08,
        line_width=0,
        annotation_text="allowed",
        annotation_position="bottom left",
    )
    for px, label, color in (
        (rec.current_price, "current", "#888"),
        (rec.price, "recommended", "#2a9d2a"),
        (whatif, "what-if", "#111"),
    ):
        if px:
            fig.add_vline(x=px, line={"color": color, "dash": "dot"}, annotation_text=label)
    fig.update_layout(
        title=title,
        height=400,
        margin={"l": 40, "r": 40, "t": 50, "b": 30},
        legend={"orientation": "h", "y": -0.2},
        autosize=True,
    )
    fig.update_xaxes(title_text="price ($)")
    fig.update_yaxes(title_text="units / day", secondary_y=False)
    fig.update_yaxes(title_text=f"{ob} / day ($)", secondary_y=True)
    return fig


def whatif_html(inputs: dict, price: float) -> str:
    """Predicted units / revenue / profit at a what-if price (constant elasticity, 90% interval)."""
    row = pricing.price_curve([price], **inputs).iloc[0]
    return (
        f'<div class="whatif"><b>What if the price were ${price:.2f}?</b> '
        f'<span class="units">{row["units"]:.1f}</span> units/day '
        f"[{row['units_lo']:.1f}, {row['units_hi']:.1f}], revenue ${row['revenue']:,.2f}, "
        f"profit ${row['profit']:,.2f} [{row['profit_lo']:,.2f}, {row['profit_hi']:,.2f}] per day.</div>"
    )


class ElasticityExplorer:
    """Widgets + one callback: product, objective, rule toggle and a what-if price."""

    def __init__(self, panel: pd.DataFrame, model: DemandModel):
        import ipywidgets as w

        self.panel, self.model = panel, model
        skus = [s for s in model.estimates["sku"] if s in model.fits]
        names = panel.drop_duplicates("sku").set_index("sku")
        opts = [(f"{s} · {names.loc[s, 'brand']} {names.loc[s, 'name']}" if "name" in names else s, s) for s in skus]
        lay = w.Layout(width="95%", max_width="640px")
        self.picker = w.Dropdown(options=opts, description="Product", layout=lay)
        self.objective = w.ToggleButtons(options=["profit", "revenue"], description="Maximise")
        self.rule = w.Checkbox(
            value=False, description="Rule: match lowest competitor, floor cost + 10%", layout=w.Layout(width="auto")
        )
        self.slider = w.FloatSlider(description="What-if $", step=0.01, continuous_update=False, layout=lay)
        self.price_box = w.BoundedFloatText(description="Price $", step=0.01, layout=w.Layout(width="220px"))
        w.jslink((self.slider, "value"), (self.price_box, "value"))
        self.chart = w.Output()
        self.whatif = w.HTML()
        self.reco = w.HTML()
        self.table = w.HTML()
        self._busy = False
        self.picker.observe(lambda ch: self.update(reset_price=True), names="value")
        for wid in (self.objective, self.rule):
            wid.observe(lambda ch: self.update(), names="value")
        self.price_box.observe(lambda ch: self.update(), names="value")
        self.update(reset_price=True)
        self.widget = w.VBox(
            [
                w.HTML(APP_CSS),
                self.picker,
                w.HBox([self.objective]),
                self.rule,
                self.reco,
                w.HBox([self.slider, self.price_box], layout=w.Layout(flex_flow="row wrap")),
                self.whatif,
                self.chart,
                w.HTML("<h3>Elasticity by product (own estimate and category-pooled)</h3>"),
                self.table,
            ],
            layout=w.Layout(width="100%"),
        )

    def update(self, reset_price: bool = False) -> None:
        """The one callback: recompute the recommendation, what-if and chart for the current inputs."""
        if self._busy:
            return
        self._busy = True
        try:
            sku = self.picker.value
            rec = recommendation_for(self.model, self.panel, sku, self.objective.value, self.rule.value)
            cur = rec.current_price
            assert cur is not None  # recommendation_for's max-change constraint needs (and checks) a current price
            if reset_price:
                lo, hi = float(rec.curve["price"].min()), float(rec.curve["price"].max())
                lo, hi = min(lo, cur * 0.7), max(hi, cur * 1.3)
                for wid in (self.slider, self.price_box):
                    wid.min, wid.max = 0.01, 1e9
                    wid.max, wid.min = round(hi, 2), round(lo, 2)
                    wid.value = round(cur, 2)
            price = float(self.price_box.value or cur)
            self.reco.value = (
                f'<div class="recommendation"><h3>Recommended price: '
                f'<span class="price">${rec.price:.2f}</span></h3>'
                f'<p class="reason">{html.escape(rec.reason)}</p></div>'
            )
            inputs = curve_inputs(self.model, self.panel, sku, rec)
            self.whatif.value = whatif_html(inputs, price)
            self.table.value = estimates_table(self.model, sku)
            fig = curve_figure(
                rec,
                inputs,
                price,
                dict((v, k) for k, v in self.picker.options)[sku],
                self.objective.value,
                (self.slider.min, self.slider.max),
            )
            self.chart.clear_output(wait=True)
            with self.chart:
                from IPython.display import display

                display(fig)
        finally:
            self._busy = False


def elasticity_app(engine=None):
    """The elasticity app panel (data from the database)."""
    import ipywidgets as w

    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    panel = load_panel(engine)
    if panel.empty:
        return w.HTML(PREVIEW_DONE + "<p class='empty'>No sales in the database yet: run <code>make demo</code>.</p>")
    model = fit_panel(panel)
    if not model.fits:
        return w.HTML(
            PREVIEW_DONE + "<p class='empty'>No product has enough price variation to estimate an elasticity."
            "</p>" + estimates_table(model)
        )
    from priceintel.apps.widgets import app_page

    explorer = ElasticityExplorer(panel, model).widget.add_class("el-detail")
    return app_page(
        engine,
        "elasticity",
        "Price elasticity",
        [w.HTML("<h2>One product: demand, what-if and recommendation</h2>"), explorer],
        css=APP_CSS,
    )
