"""Readable stage reports: goals beside figures, tables without reprs, one chart per stage."""

import pandas as pd

from priceintel.pipeline import report

SUMMARY = {
    "scrape": {"pages": 165, "errors": 2, "errors_by_kind": {"no_price": 2}},
    "clean": {"observations": 1000, "rejected": 3},
    "match": {"precision": 1.0, "recall": 0.85, "f1": 0.92, "review_queue": 4},
    "forecast": {
        "overall": pd.DataFrame({"scope": ["all series"] * 3, "model": ["chosen", "naive", "combo"],
                                 "mae": [0.7, 0.9, 0.72]}),
        "best_baseline_mae": 0.9, "best_model_mae": 0.7, "ratio_to_best_baseline": 0.7 / 0.9,
        "coverage_80": 0.88, "coverage_95": 0.97,
    },
    "elasticity": {"products": 50, "identified": 48, "mae_vs_truth": 0.07, "ci95_coverage": 0.92},
}


def test_goals_say_met_or_missed_beside_each_figure():
    f = report.goal_frame(SUMMARY, "forecast").set_index("figure")
    assert f.loc["chosen MAE ÷ better naive MAE", "met"] == "yes"
    assert f.loc["80% interval coverage", "met"] == "NO"  # 0.88 is outside 0.75-0.85
    assert f.loc["better naive baseline: MAE", "met"] == ""  # context, not judged
    m = report.goal_frame(SUMMARY, "match").set_index("figure")
    assert m.loc["recall", "met"] == "NO" and m.loc["precision", "met"] == "yes"
    s = report.goal_frame(SUMMARY, "scrape").set_index("figure")
    assert s.loc["pages with an error", "met"] == "NO" and s.loc["pages extracted", "value"] == "165"
    # a figure the summary lacks is left out, not shown as nan
    assert "cross-price MAE vs truth" not in set(report.goal_frame(SUMMARY, "elasticity")["figure"])


def test_tables_render_as_html_without_an_index_and_misses_in_red():
    html = report.goals(SUMMARY, "match").to_html()
    assert "<table" in html and "recall" in html and "font-weight: bold" in html
    assert ">0<" not in html  # no index column
    t = report.table({"fact_price": 12000, "dim_product": 50}, key="table", value="rows").to_html()
    assert "12,000" in t and "fact_price" in t


def test_one_chart_per_stage_and_none_when_there_is_nothing_to_draw():
    fig = report.chart(SUMMARY, "forecast")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["combo", "naive", "chosen"]
    assert report.chart(SUMMARY, "match") is not None and report.chart(SUMMARY, "elasticity") is not None
    assert report.chart({"scrape": {"errors_by_kind": {}}}, "scrape") is None
