"""Stage reports a person reads: small tables with each goal beside its figure and whether it is met, and one
chart per stage, instead of printed dicts and folded DataFrame reprs.

    from priceintel.pipeline import report
    report.goals(summary, "forecast")      # figure | value | goal | met
    report.table({"pages": 165, ...})      # a two-column table of a flat dict
    report.chart(summary, "match")         # one matplotlib figure (None when there is nothing to draw)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from priceintel.items import plain


@dataclass(frozen=True)
class Goal:
    """One figure of a stage's summary, the goal it is held to (None: shown, not judged) and how to read it."""

    label: str
    path: tuple[str, ...]
    goal: str | None = None
    met: Callable[[Any], bool] | None = None
    fmt: str = "{:,.3f}"


def _between(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: lo <= v <= hi


#: the goals of every stage on the demo world (its generator's truth is known); figures without a goal are context
GOALS: dict[str, list[Goal]] = {
    "scrape": [
        Goal("pages extracted", ("scrape", "pages"), fmt="{:,.0f}"),
        Goal("pages with an error", ("scrape", "errors"), "0 on the demo shops", lambda v: v == 0, "{:,.0f}"),
    ],
    "clean": [
        Goal("observations", ("clean", "observations"), fmt="{:,.0f}"),
        Goal("rows rejected", ("clean", "rejected"), fmt="{:,.0f}"),
    ],
    "match": [
        Goal("precision", ("match", "precision"), "≥ 0.95", lambda v: v >= 0.95),
        Goal("recall", ("match", "recall"), "≥ 0.90", lambda v: v >= 0.90),
        Goal("F1 vs the generator's truth", ("match", "f1"), "≥ 0.95", lambda v: v >= 0.95),
        Goal("pairs waiting for review", ("match", "review_queue"), fmt="{:,.0f}"),
    ],
    "forecast": [
        Goal("better naive baseline: MAE", ("forecast", "best_baseline_mae")),
        Goal("chosen model: MAE", ("forecast", "best_model_mae")),
        Goal("chosen MAE ÷ better naive MAE", ("forecast", "ratio_to_best_baseline"), "≤ 0.95", lambda v: v <= 0.95),
        Goal("80% interval coverage", ("forecast", "coverage_80"), "0.75 – 0.85", _between(0.75, 0.85)),
        Goal("95% interval coverage", ("forecast", "coverage_95"), "0.90 – 1.00", _between(0.90, 1.0)),
    ],
    "elasticity": [
        Goal("products", ("elasticity", "products"), fmt="{:,.0f}"),
        Goal("identified", ("elasticity", "identified"), fmt="{:,.0f}"),
        Goal("own-price MAE vs truth", ("elasticity", "mae_vs_truth"), "≤ 0.10", lambda v: v <= 0.10),
        Goal("95% CI coverage of the truth", ("elasticity", "ci95_coverage"), "0.90 – 0.99", _between(0.90, 0.99)),
        Goal("cross-price MAE vs truth", ("elasticity", "cross_mae_vs_truth")),
    ],
}


def _get(summary: dict, path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return plain(value)


def goal_frame(summary: dict, stage: str) -> pd.DataFrame:
    """figure, value, goal, met (yes / NO / blank) for one stage; figures the summary lacks are left out."""
    rows = []
    for g in GOALS[stage]:
        value = _get(summary, g.path)
        if value is None:
            continue
        met = "" if g.met is None else ("yes" if g.met(value) else "NO")
        rows.append({"figure": g.label, "value": g.fmt.format(value), "goal": g.goal or "", "met": met})
    return pd.DataFrame(rows, columns=["figure", "value", "goal", "met"])


def _style(df: pd.DataFrame, caption: str | None = None):
    """A compact, index-free HTML rendering (pandas Styler) with misses in red."""
    styler = df.style.hide(axis="index").set_table_styles(
        [
            {"selector": "th", "props": "text-align: left; padding: 2px 10px;"},
            {"selector": "td", "props": "padding: 2px 10px;"},
        ]
    )
    if "met" in df:
        styler = styler.map(lambda v: "color: #b00; font-weight: bold" if v == "NO" else "", subset=["met"])
    return styler.set_caption(caption) if caption else styler


def goals(summary: dict, stage: str):
    """The stage's goal table, ready to display in a notebook."""
    return _style(goal_frame(summary, stage))


def table(values: dict, key: str = "what", value: str = "value"):
    """A flat dict as a two-column table (nested values as text), ready to display."""
    rows = [{key: k, value: f"{v:,}" if isinstance(v, int) else v} for k, v in (values or {}).items()]
    return _style(pd.DataFrame(rows, columns=[key, value]).astype({value: str}))


def frame(df: pd.DataFrame, digits: int = 3):
    """A DataFrame without its index, numbers rounded, ready to display."""
    return _style(df.round(digits))


def chart(summary: dict, stage: str):
    """One small chart per stage (a matplotlib Figure), or None when the summary has nothing to draw."""
    import matplotlib.pyplot as plt

    data: dict[str, float] = {}
    title, xlabel = "", ""
    if stage == "scrape":
        data = {str(k): float(v) for k, v in (summary.get("scrape", {}).get("errors_by_kind") or {}).items()}
        title, xlabel = "Scrape errors by kind", "pages"
    elif stage == "match":
        m = summary.get("match") or {}
        data = {k: float(m[k]) for k in ("precision", "recall", "f1") if m.get(k) is not None}
        title, xlabel = "Automatic matches vs truth", "score"
    elif stage == "forecast":
        overall = summary.get("forecast", {}).get("overall")
        if isinstance(overall, pd.DataFrame) and len(overall):
            everything = overall[overall["scope"] == overall["scope"].iloc[0]]
            data = dict(zip(everything["model"].astype(str), everything["mae"].astype(float), strict=True))
        title, xlabel = "Held-out MAE by model (lower is better)", "MAE"
    elif stage == "elasticity":
        e = summary.get("elasticity") or {}
        data = {k: float(e[k]) for k in ("mae_vs_truth", "pooled_mae_vs_truth", "cross_mae_vs_truth") if e.get(k)}
        title, xlabel = "Elasticity error vs truth", "MAE"
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1))
    names = list(data)[::-1]
    ax.barh(names, [data[n] for n in names], color="#4c72b0")
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    plt.close(fig)  # returned, displayed once by the notebook
    return fig


def plot_forecast_example(result: dict):
    """Plot one held-out window: actuals, the best model and its 80% band."""
    import matplotlib.pyplot as plt

    from priceintel.forecast.columns import bound, column
    from priceintel.forecast.models import PROPHET

    cv = result["forecasts"]
    if cv.empty:
        return None
    uid = cv["unique_id"].iloc[0]
    one = cv[cv["unique_id"] == uid]
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(one["ds"], one["y"], "k.-", label="actual")
    for model in ("seasonal_naive", "auto_ets", PROPHET):
        if model in one and one[model].notna().any():
            ax.plot(one["ds"], one[model], label=model)
    lo, hi = column("auto_ets", bound("lo", 80)), column("auto_ets", bound("hi", 80))
    if lo in one:
        ax.fill_between(one["ds"], one[lo], one[hi], alpha=0.2, label="auto_ets 80%")
    ax.set_title(f"Held-out forecast for {uid}")
    ax.legend()
    return fig
