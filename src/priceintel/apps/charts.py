"""The plotly chart of each dashboard view (from `queries.chart_frame`): phone-friendly layout, whole-day axes."""

from __future__ import annotations

import pandas as pd

SERIES_COLORS = {
    "ours": "#111111",
    "amazon": "#ff9900",
    "walmart": "#0071ce",
    "target": "#cc0000",
    "critical": "#cc0000",
    "warning": "#e6a100",
    "info": "#0071ce",
}


def _layout(fig, title: str, y_title: str) -> None:
    """Compact, phone-friendly layout: legend below, small margins, width follows the box."""
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=340,
        autosize=True,
        margin={"l": 45, "r": 10, "t": 40, "b": 30},
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.15},
        template="plotly_white",
    )


def detail_layout(fig, title: str) -> None:
    """The layout of an app's detail chart (one product's prices, one listing's forecast): 380 px, legend below."""
    fig.update_layout(
        title=title,
        height=380,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
        yaxis_title="price",
        xaxis_type="date",
        legend={"orientation": "h"},
        autosize=True,
    )


def responsive(fig):
    """A plotly FigureWidget that fills its box and follows window resizes (phone <-> desktop)."""
    fig._config = {**(fig._config or {}), "responsive": True, "displaylogo": False}
    return fig


#: one day on a Plotly date axis (milliseconds)
DAY_MS = 86_400_000


def _day_axis(fig, days: pd.Series) -> None:
    """A date x axis of whole days. With a single day Plotly would zoom to milliseconds ("23:59:59.9996"): show
    that day between its neighbours instead. Every setting is explicit, so a chart updated in place (see
    DashboardPanel._draw) drops the single-day range when the next filters span more days."""
    distinct = pd.to_datetime(pd.Series(days)).dropna().dt.normalize().unique()
    if len(distinct) == 1:
        day = pd.Timestamp(distinct[0])
        fig.update_xaxes(
            type="date",
            autorange=False,
            tickmode="linear",
            tick0=day.strftime("%Y-%m-%d"),
            dtick=DAY_MS,
            tickformat="%b %d, %Y",
            range=[
                (day - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                (day + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
            ],
        )
    else:
        fig.update_xaxes(type="date", autorange=True, tickmode="auto", tickformat="")


def view_figure(view: str, df: pd.DataFrame):
    """The plotly chart of a dashboard view from dashboard.chart_frame (None when there is nothing to draw)."""
    import plotly.graph_objects as go

    if df is None or df.empty:
        return None
    fig = responsive(go.FigureWidget())
    if view in ("prices", "forecasts"):
        ycol = "mean_price" if view == "prices" else "value"
        per_listing = view == "forecasts" and not df["series"].isin(list(SERIES_COLORS)).all()
        for series, part in df.groupby("series", sort=True):
            x = pd.to_datetime(part["ds"]).dt.strftime("%Y-%m-%d").tolist()
            color = SERIES_COLORS.get(series)
            if view == "forecasts":
                fig.add_scatter(
                    x=x + x[::-1],
                    y=part["hi-80"].tolist() + part["lo-80"].tolist()[::-1],
                    fill="toself",
                    mode="lines",
                    line={"width": 0},
                    opacity=0.2,
                    showlegend=False,
                    hoverinfo="skip",
                    fillcolor=color,
                    name=f"{series} 80%",
                )
            fig.add_scatter(
                x=x,
                y=part[ycol],
                name=str(series),
                mode="lines" if len(x) > 1 else "lines+markers",
                line={
                    "color": color,
                    "width": 3 if series == "ours" else 1.5,
                    "shape": "hv" if view == "prices" else "linear",
                },
            )
        if view == "prices":
            _layout(fig, "Mean price per day (ours in black)", "price")
        else:
            _layout(
                fig,
                "Forecast per listing (80% band)"
                if per_listing
                else "Mean forecast change vs last price, per retailer (80% band)",
                "price" if per_listing else "change %",
            )
        _day_axis(fig, df["ds"])
    elif view == "elasticity":
        fig.add_bar(
            x=df["category"],
            y=df["mean_elasticity"],
            name="mean elasticity",
            marker_color="#1f6feb",
            customdata=df[["n_products", "mean_change_pct"]].to_numpy(),
            hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} products, "
            "recommended change %{customdata[1]:.1f}%)<extra></extra>",
        )
        _layout(fig, "Mean own-price elasticity per category", "elasticity")
    else:
        for series, part in df.groupby("series", sort=True):
            fig.add_bar(
                x=pd.to_datetime(part["ds"]).dt.strftime("%Y-%m-%d").tolist(),
                y=part["n"],
                name=str(series),
                marker_color=SERIES_COLORS.get(series),
                width=0.8 * DAY_MS,
            )  # a day wide, even alone
        _layout(fig, "Alerts per day by severity", "alerts")
        fig.update_layout(barmode="stack")
        _day_axis(fig, df["ds"])
    return fig
