"""Voila apps in a real headless Chromium (Debian /usr/bin/chromium driven by Playwright)."""

import os
import subprocess
import sys

import pytest

from _browser import check_on_phone
from priceintel import config
from priceintel.apps import prices as apps

pytestmark = pytest.mark.slow


def test_price_monitor_detail_desktop_then_phone(apps_voila, browser):
    """One page load: the product detail at 1440x900 (chart, latest prices, switching product), then the same
    page at 390x844 (the app's own layout tests and screenshots are in test_dashboard_apps.py)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{apps_voila}/voila/render/price_monitor.ipynb", timeout=120_000)
    page.wait_for_selector("table.latest-prices tbody tr", timeout=120_000)
    page.wait_for_selector(".pm-detail .js-plotly-plot .scatterlayer .trace", timeout=60_000)
    rows = page.locator("table.latest-prices tbody tr").count()
    assert rows >= 2  # ours plus at least one competitor
    assert "ours" in page.locator("table.latest-prices").inner_text()
    traces = page.locator(".pm-detail .js-plotly-plot .scatterlayer .trace").count()
    assert traces >= 2
    first = page.locator("table.latest-prices").inner_text()
    select = page.locator(".pm-detail select").first
    options = select.locator("option")
    select.select_option(index=options.count() - 1)
    page.wait_for_function(
        "(before) => document.querySelector('table.latest-prices').innerText !== before", arg=first,
        timeout=60_000)
    assert page.locator("table.latest-prices").inner_text() != first
    check_on_phone(page, "table.latest-prices tbody tr", ".pm-detail", min_rows=2, timeout=15_000)


_RUN_APP_NOTEBOOKS = """
import sys
from pathlib import Path

from ploomber_engine import execute_notebook

apps, out = Path(sys.argv[1]), Path(sys.argv[2])
failed = []
for path in sorted(apps.glob("*.ipynb")):
    try:
        execute_notebook(path, out / path.name, progress_bar=False, cwd=str(apps))
        print("ran", path.name)
    except Exception as err:  # every notebook's failure, not only the first
        failed.append(f"{path.name}: {type(err).__name__}: {err}")
print("\\n".join(failed), file=sys.stderr)
sys.exit(1 if failed else 0)
"""


def test_app_notebooks_run_top_to_bottom_without_voila(pipeline_env, pipeline_db, tmp_path):
    """Every app notebook runs top to bottom on the pipeline's database as a data scientist runs it in JupyterLab,
    with no Voila and no viewer around it: each in an IPython shell of its own, in one fresh process
    (ploomber-engine: the imports are paid once, not in a kernel per notebook; nbval took 76-100 s for the nine).
    The notebooks share that process's environment and module caches, in alphabetical order; Voila renders each
    of them in a kernel of its own, in Chromium, in the other app tests."""
    env = dict(os.environ, DATABASE_URL=pipeline_db)
    apps_dir = config.PROJ_ROOT / "notebooks" / "apps"
    res = subprocess.run([sys.executable, "-c", _RUN_APP_NOTEBOOKS, str(apps_dir), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    notebooks = sorted(p.name for p in apps_dir.glob("*.ipynb"))
    assert len(notebooks) >= 9 and [line.split()[-1] for line in res.stdout.split("\n") if line.startswith("ran ")] \
        == notebooks


def test_latest_table_and_html_escape():
    import pandas as pd

    hist = pd.DataFrame({"retailer": ["ours", "amazon", "amazon"],
                         "ds": pd.to_datetime(["2026-07-02", "2026-07-01", "2026-07-02"]),
                         "price": [10.0, 9.0, 8.0], "in_stock": [True, True, True], "promo": [False, False, True]})
    t = apps.latest_table(hist)
    assert list(t["retailer"]) == ["amazon", "ours"]
    assert t.loc[0, "vs_ours_pct"] == -20.0
    html = apps.table_html(pd.DataFrame({"a": ["<b>"], "b": [1.5]}), "x")
    assert "&lt;b&gt;" in html and "1.50" in html and 'class="x"' in html
    assert apps.latest_table(hist.iloc[0:0]).empty
