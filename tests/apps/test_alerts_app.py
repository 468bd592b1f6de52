"""The alert-manager Voila app in real headless Chromium, on the session pipeline's database."""

import shutil

import pytest
import sqlalchemy as sa

from _browser import TEST_USER, serve_voila
from priceintel import PriceIntelError, config
from priceintel.alerts.rules import load_rules
from priceintel.apps import alerts as alerts_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "alert_rules.yaml"
    shutil.copy(config.PROJ_ROOT / "config" / "alert_rules.yaml", path)
    return path


@pytest.fixture(scope="module")
def tenant_rules(rules_file):
    """The demo tenant's own rule file, which the app makes from the shared one (data/tenants/demo/)."""
    return rules_file.parent / "data" / "tenants" / "demo" / "alert_rules.yaml"


@pytest.fixture(scope="module")
def alerts_voila(pipeline_env, pipeline_db, rules_file):
    with serve_voila(DATABASE_URL=pipeline_db, PRICEINTEL_ALERT_RULES=str(rules_file),
                     PRICEINTEL_DATA_DIR=str(rules_file.parent / "data")) as base:
        yield base


def _state(url, alert_id, column="state"):
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(sa.text(f"SELECT {column} FROM alert WHERE alert_id = :i"), {"i": alert_id}).scalar()
    finally:
        eng.dispose()


def test_alert_manager_filters_acknowledges_and_edits_rules(alerts_voila, browser, pipeline_db, rules_file,
                                                            tenant_rules):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{alerts_voila}/voila/render/alerts.ipynb", timeout=120_000)
    page.wait_for_selector("table.alerts-table tbody tr", timeout=120_000)
    page.wait_for_selector("table.rules-table tbody tr", timeout=60_000)
    assert page.locator("table.rules-table tbody tr").count() == len(load_rules(rules_file).rules)

    # filter: only undercuts
    page.locator(".alerts-manager select").nth(1).select_option(label="undercut")
    page.wait_for_function("() => [...document.querySelectorAll('table.alerts-table tbody tr')]"
                           ".every(r => r.innerText.includes('undercut'))", timeout=60_000)
    first = page.locator("table.alerts-table tbody tr").first.locator("td").first.inner_text()
    alert_id = int(first.replace(",", "").split(".")[0])

    # acknowledge it: it leaves the 'new' list and the database says acknowledged
    page.fill(".alert-ids input", str(alert_id))
    page.click(".ack-button")
    page.wait_for_selector(".alert-msg .msg-ok", timeout=60_000)
    assert "1 alert(s) acknowledged" in page.locator(".alert-msg").inner_text()
    assert _state(pipeline_db, alert_id) == "acknowledged"
    assert _state(pipeline_db, alert_id, "state_by") == f"user:{TEST_USER}"  # the signed-in user, by name
    page.fill(".alert-ids input", "12x")
    page.click(".resolve-button")
    page.wait_for_selector(".alert-msg .msg-err", timeout=60_000)
    assert "'12x' is not a number" in page.locator(".alert-msg").inner_text()

    # the user's tenant (demo) edits its own copy of the shared rules, which no other tenant sees
    shared = rules_file.read_text()
    before = tenant_rules.read_text()
    assert before == shared
    # an invalid rule edit is refused with the file, rule and field named; the file is untouched
    page.fill(".rules-editor textarea", before.replace("threshold: 0.15", "threshold: -3", 1))
    page.click(".save-button")
    page.wait_for_selector(".rules-msg .msg-err", timeout=60_000)
    msg = page.locator(".rules-msg").inner_text()
    assert "rule 'big-drop'" in msg and "field threshold" in msg and str(tenant_rules) in msg
    assert tenant_rules.read_text() == before
    # a valid edit is saved, to the tenant's file only
    page.fill(".rules-editor textarea", before.replace("threshold: 0.15", "threshold: 0.2", 1))
    page.click(".save-button")
    page.wait_for_selector(".rules-msg .msg-ok", timeout=60_000)
    assert load_rules(tenant_rules).rule("big-drop").threshold == 0.2
    assert rules_file.read_text() == shared
    shots = config.reports_dir() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "alerts_1440x1000.png"), full_page=True)
    page.close()


def test_panel_helpers(rules_file):
    assert alerts_app.parse_ids("3, 5 7") == [3, 5, 7]
    with pytest.raises(PriceIntelError, match="enter one or more"):
        alerts_app.parse_ids(" ")
    df = alerts_app.rules_frame(load_rules(rules_file))
    row = df[df["name"] == "electronics-drop"].iloc[0]
    assert not row["enabled"] and row["scope"] == "categories: electronics; retailers: amazon"
